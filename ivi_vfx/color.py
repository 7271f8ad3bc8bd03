"""Scene-linear <-> network domain: an invertible signed-log shaper.

Scene-linear plates span many stops, hold negatives (grain, gamut conversion) and may hold
NaN or inf. An L1 loss on linear values would be ruled by the highlights, so the network
works on a log-shaped copy mapped into [-1, 1] (the range of its tanh outputs):

    f(x) = sign(x) * log1p(|x| / toe)                  (odd, monotone, invertible on all reals)
    n    = 2 * (f(x) - f(lo)) / (f(hi) - f(lo)) - 1     (lo -> -1, hi -> +1)

`lo` is a small negative floor (grain below black still has somewhere to go) and `hi` is the
shot's brightest finite known value (at least 1), so nothing the shot holds is clipped.
Non-finite pixels never reach the shaper or the network: shot.py leaves them out (with the
matte's pixels) when it scales the plate to working resolution, and gives a working pixel with
nothing finite under it the values around it. `encode` still maps non-finite input to the ends
of the range, as a guard. Outside the matte the composite takes every pixel from the original
buffer, NaN and inf included (see render.py).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Shaper:
    """The log shaper of one shot.

    Attributes:
        toe: linear value where the curve turns from linear to logarithmic.
        lo: linear value mapped to -1 (negative: a floor for grain below black).
        hi: linear value mapped to +1 (the shot's brightest finite value, at least 1).
    """

    toe: float = 0.01
    lo: float = -0.01
    hi: float = 1.0

    @classmethod
    def for_plate(cls, linear: np.ndarray, toe: float = 0.01) -> Shaper:
        """A shaper whose range holds every finite value of `linear` (any shape), in linear units."""
        finite = linear[np.isfinite(linear)]
        hi = float(finite.max()) if finite.size else 1.0
        # A plate's brightest finite pixel sets the top, never below 1 (half floats top out at 65504).
        return cls(toe=toe, lo=-toe, hi=max(1.0, min(hi, 65504.0)))

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    def _f(self, x: torch.Tensor | float) -> torch.Tensor:
        x = torch.as_tensor(x, dtype=torch.float32)
        return torch.sign(x) * torch.log1p(x.abs() / self.toe)

    def encode(self, linear: torch.Tensor) -> torch.Tensor:
        """Scene-linear (any shape, float32) -> network domain, clamped to [-1, 1], non-finite -> 0."""
        x = torch.nan_to_num(linear.float(), nan=0.0, posinf=self.hi, neginf=self.lo)
        f_lo, f_hi = self._f(self.lo), self._f(self.hi)
        n = 2.0 * (self._f(x) - f_lo) / (f_hi - f_lo) - 1.0
        return n.clamp(-1.0, 1.0)

    def decode(self, net: torch.Tensor) -> torch.Tensor:
        """Network domain (any shape) -> scene-linear float32; the exact inverse of encode inside [lo, hi]."""
        f_lo, f_hi = self._f(self.lo), self._f(self.hi)
        f = (net.float() + 1.0) * 0.5 * (f_hi - f_lo) + f_lo
        return torch.sign(f) * self.toe * torch.expm1(f.abs())
