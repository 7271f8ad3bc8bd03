"""The mask-propagation network: the reference's segmentation U-Net (`UnetModel`, after zhixuhao's Keras U-Net).

Levels of width w, 2w, 4w, 8w, 16w, each two 3x3 conv + ReLU; 2x2 max-pool down; up by nearest
x2 then a 2x2 conv + ReLU ("same" padding, as Keras pads: bottom/right), concatenated with the
skip. He-normal weights, zero biases. The reference's dropout after the 8w and 16w levels is
inactive in its training loop and is left out.

The head is one 3x3 conv to the logit, not the reference's conv(2, 3x3) + ReLU then conv(1, 1x1).
That 1x1 conv has two weights, drawn at init with a standard deviation of 1, and Adam at the
reference's lr 1e-4 moves each by at most about 1e-4 a step, so in the few hundred steps of a CPU
run they stay as drawn. Whether the logit can rise, fall or both then depends on the seed: of 26
networks trained with that head here, 19 had weights near [0.03, -0.24] (probabilities stuck near
0.5, the threshold: grey mattes), 4 had both positive (never below 0.49) and 3 were sound; a run
with two keys never passed 0.5, so its mattes were empty. Users of zhixuhao's U-Net report the
same grey or black output (issue #148 there, fixed by dropping that layer). Here the width channels
of the last level feed the logit directly, with weights of both signs from the start.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

LEVELS = 5
MODULO = 2 ** (LEVELS - 1)
HEAD = "conv3x3"
"""The head's name in a checkpoint's architecture: one written with the reference's two-channel head
(before this one) does not load into this network."""


def _double(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1), nn.ReLU(), nn.Conv2d(cout, cout, 3, 1, 1), nn.ReLU())


class _Up(nn.Module):
    """Nearest x2, then a 2x2 conv padded bottom/right (Keras 'same' for an even kernel), then ReLU."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        return F.relu(self.conv(F.pad(x, (0, 1, 0, 1))))


class UNet(nn.Module):
    """(B, 3, H, W) network-domain frame in [-1, 1] -> (B, 1, H, W) object logits.

    Args:
        width: the first level's width; 64 is the reference's (about 31M parameters).
    """

    def __init__(self, width: int = 64) -> None:
        super().__init__()
        widths = [width * 2 ** k for k in range(LEVELS)]
        self.down = nn.ModuleList([_double(cin, cout) for cin, cout in zip([3, *widths[:-1]], widths)])
        self.up = nn.ModuleList([_Up(widths[k + 1], widths[k]) for k in reversed(range(LEVELS - 1))])
        self.merge = nn.ModuleList([_double(2 * widths[k], widths[k]) for k in reversed(range(LEVELS - 1))])
        self.head = nn.Conv2d(width, 1, 3, 1, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                assert m.bias is not None  # every conv here is built with bias=True (the default)
                nn.init.zeros_(m.bias)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2:]
        pad_h, pad_w = -height % MODULO, -width % MODULO
        x = F.pad(image, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else image
        skips = []
        for k, block in enumerate(self.down):
            x = block(x if k == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips[:-1])):
            x = merge(torch.cat([skip, up(x)], dim=1))
        return self.head(x)[..., :height, :width]

    @torch.no_grad()
    def probability(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, 1, H, W) object probability in [0, 1]."""
        return torch.sigmoid(self(image))


def build_unet(width: int = 64) -> UNet:
    """The propagation U-Net at base width `width`."""
    return UNet(width)
