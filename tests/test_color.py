"""The log shaper: invertible, range-preserving, finite for any input."""
from __future__ import annotations

import numpy as np
import torch

from ivi_vfx.color import Shaper


def test_round_trip_is_exact_to_float32_over_the_range() -> None:
    shaper = Shaper(toe=0.01, lo=-0.01, hi=40.0)
    x = torch.cat([torch.linspace(-0.01, 40.0, 20001), torch.tensor([0.0, 1e-6, -1e-6, 0.18, 1.0, 39.9])])
    back = shaper.decode(shaper.encode(x))
    assert torch.allclose(back, x, rtol=2e-5, atol=1e-7)


def test_ends_of_the_range_map_to_the_tanh_range() -> None:
    shaper = Shaper(toe=0.01, lo=-0.01, hi=12.0)
    n = shaper.encode(torch.tensor([-0.01, 12.0, -5.0, 500.0]))
    assert torch.allclose(n, torch.tensor([-1.0, 1.0, -1.0, 1.0]), atol=1e-6)


def test_monotone_and_finite_for_nonfinite_input() -> None:
    shaper = Shaper(hi=8.0)
    x = torch.tensor([float("nan"), float("inf"), float("-inf"), -0.005, 0.0, 0.5, 8.0])
    n = shaper.encode(x)
    assert torch.isfinite(n).all()
    assert (n.abs() <= 1).all()
    assert (torch.diff(n[3:]) > 0).all()


def test_for_plate_takes_the_brightest_finite_value_and_never_less_than_one() -> None:
    # A raw inf here is a guard only: the loaded shot holds none (test_reliability_inputs.py checks that one
    # +inf plate pixel leaves the shaper of a loaded shot as it was).
    plate = np.array([0.1, 7.5, np.inf, np.nan, -0.3], np.float32)
    assert Shaper.for_plate(plate).hi == 7.5
    assert Shaper.for_plate(np.array([0.2, 0.4], np.float32)).hi == 1.0
