"""The network's fill meets the plate at the matte's edge: its own error there is taken off the fill."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from exr_helpers import write_test_exr
from ivi_vfx.io.exr import read_exr
from ivi_vfx.io.sequence import find_sequence, output_sequence
from ivi_vfx.render import match_boundary, render
from ivi_vfx.shot import load_shot


class _Biased(torch.nn.Module):
    """A generator that reconstructs its input a shade too bright, and fills its hole with the mean of
    what it was given, as bright."""

    def __init__(self, offset: float) -> None:
        super().__init__()
        self.offset = offset
        self.weight = torch.nn.Parameter(torch.zeros(1))  # a parameter, as a real model has

    def forward(self, image: torch.Tensor, hole: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        known = 1 - hole
        mean = (image * known).sum((2, 3), keepdim=True) / known.sum((2, 3), keepdim=True)
        out = torch.where(hole > 0, mean, image) + self.offset
        return out, out


def test_the_fill_is_offset_by_its_error_just_outside_the_hole() -> None:
    h, w = 40, 60
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    image = torch.stack([xx / w, yy / h, 0.5 + 0 * xx]).float()[None] * 0.8 - 0.4  # a smooth ramp
    hole = torch.zeros(1, 1, h, w)
    hole[..., 12:28, 20:44] = 1
    fill = image + 0.2  # the network's bias, inside and out
    matched = match_boundary(fill, image, hole, torch.ones(1, 1, h, w))
    inside = hole[0, 0] > 0
    assert torch.equal(matched[..., ~inside], fill[..., ~inside])  # outside: untouched
    assert float((matched - image)[..., inside].abs().max()) < 0.02  # inside: the bias is gone
    assert float((fill - image)[..., inside].abs().min()) > 0.19


def test_a_rendered_fill_meets_the_plate_without_a_step(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    h, w = 32, 48
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    truth = np.stack([0.25 + 0 * xx, 0.3 + 0 * xx, 0.2 + 0 * yy], -1)  # a flat wall, with grain
    for t in range(2):
        plate = truth.copy()
        plate += rng.normal(0, 0.002, plate.shape).astype(np.float32)
        matte = np.zeros((h, w, 1), np.float32)
        matte[10:22, 14:34] = 1
        write_test_exr(tmp_path / f"plate.{1001 + t}.exr", np.concatenate([plate, np.ones_like(matte)], -1))
        write_test_exr(tmp_path / f"mask.{1001 + t}.exr", matte, channels=("A",))
    plate_seq = find_sequence(str(tmp_path / "plate.####.exr"))
    shot = load_shot(plate_seq, find_sequence(str(tmp_path / "mask.####.exr")), work_size=48)
    out = output_sequence(str(tmp_path / "out" / "clean.####.exr"), list(plate_seq.frames))
    render(_Biased(0.3), shot, out)  # type: ignore[arg-type]  # any module with the generator's call
    image = read_exr(out.path(1001))
    rgb = np.stack([image.channel(c) for c in "RGB"], -1)
    inside = image.channel("A") > 0
    # Without the match, a bias of 0.3 in the network's log domain is a step of more than half the wall's value.
    assert np.abs(rgb - truth)[inside].mean() < 0.01
