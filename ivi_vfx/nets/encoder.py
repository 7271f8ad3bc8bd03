"""Feature encoders for the anti-ambiguity (contextual) loss.

The reference compares frames on ImageNet VGG19 `relu4_2` features. Those weights cannot be
downloaded here nor on most farm nodes, so the encoder is pluggable:

- `RandomPatchEncoder` (the default, "random"): a fixed, seeded, never-trained ReLU conv stack.
  Why it should work: the contextual loss only asks, for each feature vector of the partner
  frame, whether some output position has a close one. A random ReLU conv stack is a random,
  nearly distance-preserving projection of local patches (receptive field 9x9 working pixels
  here), so "close in feature space" means "a similar local patch", which is what the loss is
  meant to reward: texture that exists in another frame rather than the average of several.
  Random-filter networks are known to capture natural texture statistics well (Ustyuzhaninov et
  al., "What does it take to generate natural textures?", ICLR 2017). It costs a few percent of a
  VGG19 forward pass and is the same on every machine (its weights come from a fixed seed).
- `VGG19Encoder` ("vgg19:PATH"): the reference's encoder, VGG19 up to relu4_2, with weights from a
  file the user names (torchvision's `vgg19` state dict, e.g. vgg19-dcbb9e9d.pth), loaded with
  `weights_only=True`.

Every encoder maps (B, 3, H, W) network-domain images in [-1, 1] to (B, C, h, w) features; its
weights are frozen, gradients flow to the input.
"""
from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from ivi_vfx.errors import ConfigError

# VGG19's `features` up to relu4_2 (torchvision indices 0..22): widths, "M" = 2x2 max-pool.
_VGG19_TO_RELU4_2: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512]
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)

_F = TypeVar("_F", bound="_Frozen")


class _Frozen(nn.Module):
    """An encoder whose weights never train (they are not parameters of the generator's optimiser)."""

    def freeze(self: _F) -> _F:
        for p in self.parameters():
            p.requires_grad_(False)
        return self.eval()

    def train(self, mode: bool = True) -> _Frozen:  # always in eval mode: no state changes while training
        return super().train(False)


class RandomPatchEncoder(_Frozen):
    """Three fixed random 3x3 ReLU convs, the last two with stride 2: (B, 3, H, W) -> (B, width, H/4, W/4)."""

    def __init__(self, width: int = 128, seed: int = 1234) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(3, width // 4, 3, 1, 1), nn.ReLU(),
            nn.Conv2d(width // 4, width // 2, 3, 2, 1), nn.ReLU(),
            nn.Conv2d(width // 2, width, 3, 2, 1), nn.ReLU(),
        )
        rng = torch.Generator().manual_seed(seed)
        for conv in self.layers:
            if isinstance(conv, nn.Conv2d):
                fan_in = conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1]
                conv.weight.data = torch.randn(conv.weight.shape, generator=rng) * (2.0 / fan_in) ** 0.5
                assert conv.bias is not None  # built with bias=True (the default)
                conv.bias.data.zero_()
        self.freeze()

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.layers(image)


class VGG19Encoder(_Frozen):
    """VGG19 `features[:23]` (relu4_2), torchvision layout: (B, 3, H, W) -> (B, 512, H/8, W/8)."""

    mean: torch.Tensor  # buffers (register_buffer below)
    std: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for item in _VGG19_TO_RELU4_2:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(channels, int(item), 3, 1, 1), nn.ReLU()]
                channels = int(item)
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.freeze()

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        # [-1, 1] -> [0, 1] -> ImageNet-normalised, as torchvision's VGG weights expect.
        return self.features(((image + 1.0) * 0.5 - self.mean) / self.std)

    @classmethod
    def from_file(cls, path: str | Path) -> VGG19Encoder:
        """Load torchvision VGG19 weights (the whole network's or only `features.*`) from `path`."""
        path = Path(path)
        fix = "give a torchvision vgg19 state dict (for example vgg19-dcbb9e9d.pth) or use the 'random' encoder"
        if not path.is_file():
            raise ConfigError(f"{path}: no such VGG19 weights file; {fix}")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # pickle, zip and torch errors all mean "not a weights file we can read"
            raise ConfigError(f"{path}: cannot be read as torch weights ({exc.__class__.__name__}); {fix}") from exc
        if not isinstance(state, dict):
            raise ConfigError(f"{path}: holds a {type(state).__name__}, not a state dict; {fix}")
        encoder = cls()
        wanted = encoder.features.state_dict()
        found = {k.removeprefix("features."): v for k, v in state.items() if isinstance(v, torch.Tensor)}
        missing = [k for k in wanted if k not in found]
        wrong = [k for k in wanted if k in found and tuple(found[k].shape) != tuple(wanted[k].shape)]
        if missing or wrong:
            names = [f"features.{k}" for k in (missing or wrong)[:3]]
            what = f"{'missing' if missing else 'wrong shape for'} {', '.join(names)}"
            raise ConfigError(f"{path}: does not fit VGG19 up to relu4_2 ({what}); {fix}")
        encoder.features.load_state_dict({k: found[k] for k in wanted})
        return encoder.freeze()


def build_encoder(spec: str) -> nn.Module:
    """The encoder a config names: 'random', or 'vgg19:PATH' for VGG19 weights from a file."""
    if spec == "random":
        return RandomPatchEncoder()
    if spec.startswith("vgg19:"):
        return VGG19Encoder.from_file(spec.removeprefix("vgg19:"))
    raise ConfigError(f"unknown encoder {spec!r}; use 'random' or 'vgg19:/path/to/vgg19.pth'")


def features_for_context(encoder: nn.Module, image: torch.Tensor, max_positions: int) -> torch.Tensor:
    """Encode and, when there are more than `max_positions` feature positions, average-pool them down.

    The contextual loss builds a (positions x positions) matrix per frame; pooling keeps its memory
    bounded at any working resolution (its cost grows with the square of the positions).
    """
    feats = encoder(image)
    h, w = feats.shape[-2:]
    factor = 1
    while (h // factor) * (w // factor) > max_positions:
        factor += 1
    return F.avg_pool2d(feats, factor) if factor > 1 else feats
