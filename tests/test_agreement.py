"""The fill made to agree with the neighbouring frames' fills (carry.agreement), on real EXR files."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from exr_helpers import write_test_exr
from ivi_vfx.carry.agreement import RADIUS, Agreement, neighbours
from ivi_vfx.io.sequence import find_sequence
from ivi_vfx.shot import Shot, load_shot

SIZE = (40, 64)
"""(height, width) of the test shots."""


def _wall_shot(folder: Path, square: tuple[slice, slice], seed: int, count: int = 6) -> Shot:
    """A locked-off random wall of `count` frames under a fixed square matte, written as EXRs and loaded."""
    height, width = SIZE
    wall = np.random.default_rng(seed).uniform(0.1, 0.8, (height, width, 3)).astype(np.float32)
    matte = np.zeros((height, width), np.float32)
    matte[square] = 1
    for t in range(count):
        write_test_exr(folder / f"plate.{1001 + t}.exr", np.concatenate([wall, np.ones_like(wall[..., :1])], -1))
        write_test_exr(folder / f"mask.{1001 + t}.exr", matte[..., None], channels=("A",))
    plate = find_sequence(str(folder / "plate.####.exr"))
    return load_shot(plate, find_sequence(str(folder / "mask.####.exr")), work_size=64)


def test_a_chunk_loads_the_neighbours_its_frames_agree_with() -> None:
    shot = list(range(1001, 1011))
    assert RADIUS == 2
    assert neighbours([1005, 1006], shot) == list(range(1003, 1009))
    assert neighbours([1001], shot) == [1001, 1002, 1003]  # the shot's ends have fewer
    assert neighbours([1010, 1002], shot) == [1001, 1002, 1003, 1004, 1008, 1009, 1010]


def test_each_frame_moves_towards_the_mean_of_its_neighbours_fills_inside_the_matte_only(tmp_path: Path) -> None:
    """A locked-off wall under a fixed square matte whose fill the network makes brighter in one frame:
    that frame's correction takes it to the mean of the five, its neighbours' towards it, and
    nothing changes away from the matte."""
    height, width = SIZE
    shot = _wall_shot(tmp_path, (slice(14, 28), slice(24, 38)), seed=0)
    level = [0.0, 0.0, 0.5, 0.0, 0.0, 0.0]  # the fill of each frame, network domain: frame 1003 stands out
    ph, pw = shot.images.shape[-2:]
    agreement = Agreement(shot, lambda index: torch.full((1, 3, ph, pw), level[index]))
    centre = (21, 31)
    for t, want in [(2, 0.1 - 0.5), (0, 0.5 / 3), (3, 0.5 / 5), (5, 0.0)]:
        correction = agreement.correction(1001 + t)
        assert correction.shape == (height, width, 3)
        np.testing.assert_allclose(correction[centre], want, atol=0.01)
        assert np.abs(correction[:6]).max() == 0.0  # beyond the matte's reach


def test_an_invented_pixel_takes_its_neighbours_whole_mean_a_carried_one_keeps_its_detail(tmp_path: Path) -> None:
    """One frame's fill carries a fine checker (detail) over the whole square: where the network
    invented the pixels (the shot's hole after the carry) the checker is averaged with the
    neighbours' plain fills down to a fifth; where they were carried along a weaker chain (in
    the matte, not the hole) only the low frequencies move and the checker stays."""
    height, width = SIZE
    shot = _wall_shot(tmp_path, (slice(12, 30), slice(20, 44)), seed=1)
    invented = shot.holes.clone()
    invented[..., 32:] = 0.0  # the square's right half was carried in
    shot = dataclasses.replace(shot, holes=invented, shapes=shot.holes)
    ph, pw = shot.images.shape[-2:]
    yy, xx = torch.meshgrid(torch.arange(ph), torch.arange(pw), indexing="ij")
    checker = 0.2 * ((yy + xx) % 2 * 2 - 1).float()

    def fill(index: int) -> torch.Tensor:
        return (checker if index == 2 else torch.zeros(ph, pw)).expand(1, 3, ph, pw).clone()

    correction = Agreement(shot, fill).correction(1003)[..., 0]
    result = checker[:height, :width].numpy() + correction

    def amplitude(rows: slice, cols: slice) -> float:
        """Half the mean step between horizontal neighbours: the checker's amplitude."""
        part = result[rows, cols]
        return float(np.abs(np.diff(part, axis=1)).mean() / 2)

    assert amplitude(slice(16, 26), slice(22, 30)) == pytest.approx(0.2 / 5, abs=0.01)  # invented
    assert amplitude(slice(16, 26), slice(34, 42)) > 0.15  # carried: the detail stays
