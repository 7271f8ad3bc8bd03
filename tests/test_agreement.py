"""The fill's low frequencies made to agree with the neighbouring frames' (carry.agreement), on real EXR files."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from exr_helpers import write_test_exr
from ivi_vfx.carry.agreement import RADIUS, Agreement, neighbours
from ivi_vfx.io.sequence import find_sequence
from ivi_vfx.shot import load_shot


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
    count, height, width = 6, 40, 64
    rng = np.random.default_rng(0)
    wall = rng.uniform(0.1, 0.8, (height, width, 3)).astype(np.float32)
    matte = np.zeros((height, width), np.float32)
    matte[14:28, 24:38] = 1
    for t in range(count):
        write_test_exr(tmp_path / f"plate.{1001 + t}.exr", np.concatenate([wall, np.ones_like(wall[..., :1])], -1))
        write_test_exr(tmp_path / f"mask.{1001 + t}.exr", matte[..., None], channels=("A",))
    plate = find_sequence(str(tmp_path / "plate.####.exr"))
    shot = load_shot(plate, find_sequence(str(tmp_path / "mask.####.exr")), work_size=64)
    level = [0.0, 0.0, 0.5, 0.0, 0.0, 0.0]  # the fill of each frame, network domain: frame 1003 stands out
    ph, pw = shot.images.shape[-2:]
    agreement = Agreement(shot, lambda index: torch.full((1, 3, ph, pw), level[index]))
    centre = (21, 31)
    for t, want in [(2, 0.1 - 0.5), (0, 0.5 / 3), (3, 0.5 / 5), (5, 0.0)]:
        correction = agreement.correction(1001 + t)
        assert correction.shape == (height, width, 3)
        np.testing.assert_allclose(correction[centre], want, atol=0.01)
        assert np.abs(correction[:6]).max() == 0.0  # beyond the matte's reach
