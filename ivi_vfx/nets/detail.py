"""The finer scales' network of progressive high resolution (ivi_vfx/progressive/): `DetailNet`.

A small residual network per finer scale: it sees the upsampled coarser fill (the prior), the
plate with the hole cut out, and the hole, and adds the detail the prior lacks. Built of the
generator's gated convolutions (generator.py).
"""
from __future__ import annotations

import torch
from torch import nn

from ivi_vfx.nets.generator import GatedConv


class DetailNet(nn.Module):
    """A finer scale's network: (prior, masked plate, hole) -> prior + detail.

    Gated convolutions (as the generator's) at full resolution of its scale, dilated to see about
    35 pixels around each output. The last layer starts at zero: an untrained DetailNet returns
    the prior, so a finer scale can only add to the scaled-up fill.

    Forward:
        prior: (B, 3, H, W) network domain, the coarser fill scaled up.
        masked: (B, 3, H, W) network domain, the plate with the hole set to 0.
        hole: (B, 1, H, W) {0, 1}, 1 = fill.
        Returns (B, 3, H, W): prior + detail (only its hole pixels are used).
    """

    RATES = (1, 2, 4, 8, 16)

    def __init__(self, width: int = 24) -> None:
        super().__init__()
        layers: list[nn.Module] = [GatedConv(7, 2 * width, k=5)]
        layers += [GatedConv(width, 2 * width, k=3, rate=r) for r in self.RATES]
        head = GatedConv(width, 3, k=3, gated=False)
        layers += [head]
        self.body = nn.Sequential(*layers)
        nn.init.zeros_(head.conv.weight)

    @property
    def radius(self) -> int:
        """Pixels on each side that an output pixel depends on (the halo a tile needs)."""
        return 2 + sum(self.RATES) + 1

    def forward(self, prior: torch.Tensor, masked: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        return prior + self.body(torch.cat([prior, masked, hole], dim=1))
