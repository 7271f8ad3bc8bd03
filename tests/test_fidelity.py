"""Plate fidelity: outside the matte every half bit survives; alpha is the matte; the header is kept.

The input plate is written with the OpenEXR package and the output is read back with it, so
OpenImageIO (which the tool uses) is checked by an independent implementation on both sides.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import OpenEXR
import pytest

from conftest import make_tiny_shot
from exr_helpers import write_test_exr
from ivi_vfx.config import TrainConfig
from ivi_vfx.jobs import JobSpec
from ivi_vfx.pipeline import run_job

TINY = TrainConfig(preset="test", cnum=8, steps=3, batch_size=2, work_size=64, log_every=1)
H, W, COUNT = 24, 32, 4


def inpaint(plate: str, mask: str, out: str) -> None:
    """The one job path, as `ivi-render inpaint` runs it, with a tiny network."""
    run_job(JobSpec(plate=plate, mask=mask, out=out), device="cpu", existing="refuse", cfg=TINY)


def _timecode(frame: int) -> OpenEXR.TimeCode:
    tc = OpenEXR.TimeCode()
    tc.hours, tc.minutes, tc.seconds, tc.frame = 1, 2, 3, frame % 24
    return tc


def _hostile_shot(folder: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """RGBA half PIZ plates with >1, negatives, NaN and inf outside the matte, a timecode and custom attributes."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(5)
    plates, mattes = [], []
    for t in range(COUNT):
        rgb = rng.uniform(-0.05, 3.0, (H, W, 3)).astype(np.float16)
        rgb[2, 3] = (np.nan, np.inf, -np.inf)   # non-finite pixels outside the matte
        rgb[5, 30] = (65504.0, -2.0, 12.5)       # half max, a negative, a highlight
        matte = np.zeros((H, W), np.float32)
        matte[8:16, 6 + 4 * t:16 + 4 * t] = 1
        matte[8, 6 + 4 * t] = 0.25               # a soft edge still counts as hole
        rgb[matte > 0] = (np.nan, 50.0, -1.0)    # garbage under the object must not matter
        alpha = np.full((H, W), 0.5, np.float16)
        header = {"compression": OpenEXR.PIZ_COMPRESSION, "type": OpenEXR.scanlineimage,
                  "timeCode": _timecode(t), "studio/shot": "sh010", "studio/focus_mm": 35.5}
        channels = {"R": rgb[..., 0].copy(), "G": rgb[..., 1].copy(), "B": rgb[..., 2].copy(), "A": alpha}
        OpenEXR.File(header, channels).write(str(folder / f"plate.{1001 + t:04d}.exr"))
        write_test_exr(folder / f"mask.{1001 + t:04d}.exr", matte[..., None], channels=("A",))
        plates.append(rgb)
        mattes.append(matte)
    return plates, mattes


def test_outside_the_matte_every_half_bit_is_kept(tmp_path: Path) -> None:
    plates, mattes = _hostile_shot(tmp_path / "in")
    out = tmp_path / "out" / "clean.####.exr"
    inpaint(str(tmp_path / "in/plate.####.exr"), str(tmp_path / "in/mask.####.exr"), str(out))
    for t in range(COUNT):
        f = OpenEXR.File(str(tmp_path / f"out/clean.{1001 + t:04d}.exr"), separate_channels=True)
        header, channels = f.header(), f.channels()
        assert sorted(channels) == ["A", "B", "G", "R", "confidence.Y"]
        assert all(c.pixels.dtype == np.float16 for c in channels.values())
        # Nothing carried (the tiny config is the paper's method): the whole matte is invented.
        assert np.array_equal(channels["confidence.Y"].pixels, (mattes[t] == 0).astype(np.float16))
        assert header["compression"] == OpenEXR.PIZ_COMPRESSION
        assert header["studio/shot"] == "sh010" and header["studio/focus_mm"] == 35.5
        tc = header["timeCode"]
        assert (tc.hours, tc.minutes, tc.seconds, tc.frame) == (1, 2, 3, t)
        outside = mattes[t] == 0
        for k, name in enumerate("RGB"):
            got = channels[name].pixels
            assert np.array_equal(got.view(np.uint16)[outside], plates[t][..., k].view(np.uint16)[outside])
            assert np.isfinite(got[~outside]).all()  # the fill is finite even where the plate held NaN
        assert np.array_equal(channels["A"].pixels.astype(np.float32), (mattes[t] > 0).astype(np.float32))


def test_data_window_differs_from_display_window_float_tiled(tmp_path: Path) -> None:
    """A Nuke-style bbox (data window inside the format), float32, tiled: all of it kept."""
    shot = make_tiny_shot(tmp_path / "in", count=3, pixel_type="float", tile=(16, 16), compression="zip",
                          data_window=(2, 3), display_window=(0, 0, 36, 30))
    out = tmp_path / "out" / "clean.%04d.exr"
    # Mattes must share the plate's format: write them over the display window.
    for t, f in enumerate(shot.frames):
        matte = np.zeros((30, 36, 1), np.float32)
        matte[3:27, 2:34] = shot.mattes[t][..., None]
        write_test_exr(tmp_path / f"in/mask.{f:04d}.exr", matte, channels=("A",))
    inpaint(shot.plate, shot.mask, str(out))
    for t, f in enumerate(shot.frames):
        o = OpenEXR.File(str(tmp_path / f"out/clean.{f:04d}.exr"), separate_channels=True)
        header = o.header()
        assert [list(v) for v in header["dataWindow"]] == [[2, 3], [33, 26]]
        assert [list(v) for v in header["displayWindow"]] == [[0, 0], [35, 29]]
        assert header["type"] == OpenEXR.tiledimage
        r = o.channels()["R"].pixels
        assert r.dtype == np.float32
        outside = shot.mattes[t] == 0
        assert np.array_equal(r[outside], shot.plates[t][..., 0][outside])
        assert np.array_equal(o.channels()["A"].pixels, shot.mattes[t])


@pytest.mark.parametrize("empty", [(1,), (0, 1, 2)])
def test_frames_with_an_empty_matte_are_copied_through(tmp_path: Path, empty: tuple[int, ...]) -> None:
    shot = make_tiny_shot(tmp_path / "in", count=3, empty_frames=empty)
    out = tmp_path / "out" / "clean.####.exr"
    inpaint(shot.plate, shot.mask, str(out))
    for t in empty:
        o = OpenEXR.File(str(tmp_path / f"out/clean.{shot.frames[t]:04d}.exr"), separate_channels=True).channels()
        for k, name in enumerate("RGB"):
            assert np.array_equal(o[name].pixels.astype(np.float32), shot.plates[t][..., k])
        assert not o["A"].pixels.any()
