"""The paper's inpainting generator: DeepFill-v2-style gated convolutions, coarse + two refine branches.

Faithful to the reference code (`model/inpaint_model.py::RefineModel`, see
shared/research/paper_impl.md section 1):

- a gated conv with `cnum` filters outputs cnum/2 channels: ELU(features) * sigmoid(gate);
  the last conv of each head (3 filters) is ungated;
- TensorFlow "SAME" padding, which for stride 2 pads only bottom/right;
- nearest x2 upsampling, glorot-uniform weights, zero biases, no normalisation;
- coarse input: masked RGB and the mask (4 channels); refine input: the coarse result pasted
  into the hole (3 channels, the mask is not fed again);
- both outputs pass through tanh and both are supervised.

At the default width (cnum = 48) it has 4,051,278 parameters, as the reference.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

Activation = Callable[[torch.Tensor], torch.Tensor]


class GatedConv(nn.Module):
    """Conv2d(cin -> cnum) whose output halves: act(first half) * sigmoid(second half).

    With `gated=False` (the 3-channel output layers) the raw convolution is returned.
    Shapes: (B, cin, H, W) -> (B, cnum // 2, H / stride, W / stride), or cnum channels ungated.
    """

    def __init__(self, cin: int, cnum: int, k: int = 3, stride: int = 1, rate: int = 1,
                 act: Activation = F.elu, gated: bool = True) -> None:
        super().__init__()
        eff = (k - 1) * rate + 1
        # TF "SAME" at stride 1 pads (eff - 1) / 2 zeros on every side: the convolution's own padding
        # does that without copying the input (an explicit F.pad costs a copy of every activation,
        # forward and backward, and drops channels_last). Stride 2 pads asymmetrically: _same_pad.
        self.inner_pad = stride == 1 and eff % 2 == 1
        self.conv = nn.Conv2d(cin, cnum, k, stride=stride, dilation=rate,
                              padding=(eff - 1) // 2 if self.inner_pad else 0)
        self.k, self.stride, self.rate, self.act, self.gated = k, stride, rate, act, gated
        nn.init.xavier_uniform_(self.conv.weight)  # Keras glorot_uniform
        assert self.conv.bias is not None  # built with bias=True (the default)
        nn.init.zeros_(self.conv.bias)

    @property
    def out_channels(self) -> int:
        return self.conv.out_channels // 2 if self.gated else self.conv.out_channels

    def _same_pad(self, x: torch.Tensor) -> torch.Tensor:
        # TF "SAME": total padding so that out = ceil(in / stride); the odd pixel goes bottom/right.
        eff = (self.k - 1) * self.rate + 1
        pads = []
        for size in (x.shape[-1], x.shape[-2]):  # F.pad order: W then H
            total = max((-(-size // self.stride) - 1) * self.stride + eff - size, 0)
            pads += [total // 2, total - total // 2]
        return F.pad(x, pads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x if self.inner_pad else self._same_pad(x))
        if not self.gated:
            return y
        feat, gate = y.chunk(2, dim=1)
        return self.act(feat) * torch.sigmoid(gate)


class GatedUp(nn.Module):
    """Nearest x2 upsampling, then a gated 3x3 conv."""

    def __init__(self, cin: int, cnum: int) -> None:
        super().__init__()
        self.conv = GatedConv(cin, cnum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


def _chain(cin: int, specs: list[tuple]) -> nn.Sequential:
    """Build a sequence of gated layers from (kind, cnum, k, stride, rate[, act]) tuples, tracking widths."""
    layers: list[nn.Module] = []
    for kind, cnum, *rest in specs:
        layer: nn.Module
        if kind == "up":
            layer = GatedUp(cin, cnum)
            cin = layer.conv.out_channels
        else:
            k, stride, rate, *act = rest
            layer = GatedConv(cin, cnum, k, stride, rate, act=act[0] if act else F.elu, gated=cnum != 3)
            cin = layer.out_channels
        layers.append(layer)
    return nn.Sequential(*layers)


def _dilated(c: int) -> list[tuple]:
    return [("conv", c, 3, 1, r) for r in (2, 4, 8, 16)]


class Generator(nn.Module):
    """The reference `RefineModel`: coarse network, hallucination and plain refine branches, output head.

    Args:
        cnum: base width; 48 is the paper's. Must be a multiple of 4.

    Forward:
        image: (B, 3, H, W) in [-1, 1] (network domain); H and W multiples of 4.
        hole: (B, 1, H, W) {0, 1}, 1 = fill.
        Returns (coarse, refined), each (B, 3, H, W) in [-1, 1].
    """

    def __init__(self, cnum: int = 48) -> None:
        super().__init__()
        if cnum % 4:
            raise ValueError(f"generator width cnum={cnum} must be a multiple of 4")
        c = cnum
        self.cnum = cnum
        self.source: dict[str, object] = {}
        """Where the weights came from, set by train.load_model: the checkpoint's path, its job folder,
        sha256 and step (written into every output frame, provenance.py); empty for a fresh network."""
        self.coarse = _chain(4, [
            ("conv", c, 5, 1, 1), ("conv", 2 * c, 3, 2, 1), ("conv", 2 * c, 3, 1, 1),
            ("conv", 4 * c, 3, 2, 1), ("conv", 4 * c, 3, 1, 1), ("conv", 4 * c, 3, 1, 1),
            *_dilated(4 * c), ("conv", 4 * c, 3, 1, 1), ("conv", 4 * c, 3, 1, 1),
            ("up", 2 * c), ("conv", 2 * c, 3, 1, 1), ("up", c), ("conv", c // 2, 3, 1, 1),
            ("conv", 3, 3, 1, 1),
        ])
        self.hallucinate = _chain(3, [
            ("conv", c, 5, 1, 1), ("conv", c, 3, 2, 1), ("conv", 2 * c, 3, 1, 1),
            ("conv", 2 * c, 3, 2, 1), ("conv", 4 * c, 3, 1, 1), ("conv", 4 * c, 3, 1, 1),
            *_dilated(4 * c),
        ])
        # The slot where DeepFill has contextual attention: the reference keeps a ReLU-gated conv there.
        self.plain = _chain(3, [
            ("conv", c, 5, 1, 1), ("conv", c, 3, 2, 1), ("conv", 2 * c, 3, 1, 1),
            ("conv", 4 * c, 3, 2, 1), ("conv", 4 * c, 3, 1, 1), ("conv", 4 * c, 3, 1, 1, F.relu),
            ("conv", 4 * c, 3, 1, 1), ("conv", 4 * c, 3, 1, 1),
        ])
        self.head = _chain(4 * c, [
            ("conv", 4 * c, 3, 1, 1), ("conv", 4 * c, 3, 1, 1), ("up", 2 * c), ("conv", 2 * c, 3, 1, 1),
            ("up", c), ("conv", c // 2, 3, 1, 1), ("conv", 3, 3, 1, 1),
        ])

    def forward(self, image: torch.Tensor, hole: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # nan_to_num: a NaN or inf under the hole would survive the product (NaN * 0 is NaN) and spread
        # through every convolution; for finite pixels it changes no bit.
        masked = torch.nan_to_num(image, nan=0.0, posinf=0.0, neginf=0.0) * (1.0 - hole)
        coarse = torch.tanh(self.coarse(torch.cat([masked, hole], dim=1)))
        pasted = coarse * hole + masked
        feats = torch.cat([self.hallucinate(pasted), self.plain(pasted)], dim=1)
        refined = torch.tanh(self.head(feats))
        return coarse, refined


def build_generator(cnum: int = 48) -> Generator:
    """The generator at width `cnum` (48: the paper's 4,051,278 parameters)."""
    return Generator(cnum)
