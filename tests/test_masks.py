"""Matte operations: binarising, dilation, conservative downsampling, the paper's shifted holes."""
from __future__ import annotations

import torch

from ivi_vfx import masks


def test_binarize_counts_any_coverage_as_hole() -> None:
    m = torch.tensor([0.0, 1e-4, 0.5, 1.0, -0.2])
    assert masks.binarize(m).tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]


def test_dilate_grows_a_pixel_to_a_square() -> None:
    m = torch.zeros(9, 9)
    m[4, 4] = 1
    grown = masks.dilate(m, 2)
    assert grown.sum() == 25
    assert grown[2:7, 2:7].all() and grown.shape == (9, 9)
    assert torch.equal(masks.dilate(m, 0), m)


def test_downsample_keeps_every_hole_pixel_covered() -> None:
    m = torch.zeros(1, 1, 30, 40)
    m[0, 0, 7, 13] = 1  # one full-resolution pixel
    small = masks.downsample(m, (10, 13))
    assert small.sum() >= 1
    up = torch.nn.functional.interpolate(small, size=(30, 40), mode="nearest")
    assert up[0, 0, 7, 13] == 1


def test_shifted_holes_roll_cyclically_and_join_the_own_matte() -> None:
    own = torch.zeros(1, 1, 4, 5)
    own[0, 0, 0, 0] = 1
    other = torch.zeros(1, 1, 4, 5)
    other[0, 0, 3, 4] = 1
    holes = masks.shifted_holes(own, other, (1, 1))  # (3, 4) wraps round to (0, 0)
    assert holes.sum() == 1 and holes[0, 0, 0, 0] == 1
    holes = masks.shifted_holes(own, other, (0, -2))
    assert holes[0, 0, 3, 2] == 1 and holes[0, 0, 0, 0] == 1 and holes.sum() == 2
