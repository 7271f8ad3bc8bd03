"""Progressive high resolution on small plates: the same path as 2K/4K, scaled down."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from exr_helpers import read_with_openexr, write_test_exr
from ivi_vfx import progressive
from ivi_vfx.config import TrainConfig
from ivi_vfx.errors import ConfigError
from ivi_vfx.hires import HiresConfig
from ivi_vfx.io.exr import read_exr
from ivi_vfx.io.sequence import find_sequence
from ivi_vfx.jobs import JobSpec
from ivi_vfx.nets.detail import DetailNet
from ivi_vfx.pipeline import render_job, run_job, train_job
from ivi_vfx.progressive.fill import progressive_fill
from ivi_vfx.progressive.scales import Level, level_size, plan_scales, resample
from ivi_vfx.shot import load_shot

TINY = TrainConfig(preset="test", cnum=8, steps=2, batch_size=2, work_size=16, log_every=1)
FAST = HiresConfig(scales="2", patch_size=16, tile_size=24, overlap=6, scale_steps=3, batch_size=2, width=4)
OBJECT = (0.9, 0.05, 0.05)


def _wall(height: int, width: int, seed: int = 0) -> np.ndarray:
    """(height, width, 3) float32 fine texture in half precision: stripes plus noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:height, :width].astype(np.float32)
    stripes = 0.3 + 0.15 * np.sin(x * 1.3 + y * 0.4)
    wall = stripes[..., None] + rng.uniform(-0.05, 0.05, (height, width, 3))
    return wall.astype(np.float16).astype(np.float32)


def _write_shot(folder: Path, count: int, height: int, width: int, box: tuple[int, int, int, int],
                data_window: tuple[int, int] | None = None,
                display_window: tuple[int, int, int, int] | None = None) -> tuple[str, str, np.ndarray]:
    """Plates (RGBA half) with a red object over `box` (data-window pixels) and its matte; returns the walls."""
    walls = []
    for t in range(count):
        wall = _wall(height, width, seed=t)
        walls.append(wall.copy())
        matte = np.zeros((height, width), np.float32)
        y0, y1, x0, x1 = box
        matte[y0:y1, x0 + t:x1 + t] = 1
        wall[matte > 0] = OBJECT
        rgba = np.concatenate([wall, np.ones((height, width, 1), np.float32)], -1)
        frame = 1001 + t
        write_test_exr(folder / f"plate.{frame}.exr", rgba, data_window=data_window, display_window=display_window)
        write_test_exr(folder / f"mask.{frame}.exr", matte[..., None], channels=("A",), data_window=data_window,
                       display_window=display_window)
    return str(folder / "plate.####.exr"), str(folder / "mask.####.exr"), np.stack(walls)


def test_scales_are_planned_from_the_plate_and_the_working_size() -> None:
    auto = HiresConfig()
    assert plan_scales((24, 32), (24, 32), auto) == []  # the existing small-plate path
    assert plan_scales((480, 640), (192, 256), auto) == []  # not much larger than working
    scales = plan_scales((2160, 3840), (144, 256), auto)
    assert len(scales) == 2 and scales[-1] == 1.0 and 0.2 < scales[0] < 0.3  # 256 -> ~990 -> 3840
    assert plan_scales((2160, 3840), (144, 256), HiresConfig(scales="off")) == []
    assert plan_scales((2160, 3840), (144, 256), HiresConfig(scales="0.5,1")) == [0.5, 1.0]
    assert len(plan_scales((2160, 3840), (144, 256), HiresConfig(scales="3"))) == 3


def test_resample_over_the_same_box_is_bilinear_interpolation() -> None:
    src = torch.rand(1, 3, 7, 9)
    box = (10, 80, -20, 70)
    up = resample(src, box, box, (28, 36))
    np.testing.assert_allclose(up.numpy(), F.interpolate(src, size=(28, 36), mode="bilinear",
                                                         align_corners=False).numpy(), atol=1e-5)
    part = resample(src, box, box, (28, 36), region=(3, 11, 20, 30))
    np.testing.assert_allclose(part.numpy(), up[..., 3:11, 20:30].numpy(), atol=1e-6)


class _Flat(nn.Module):
    """A stand-in working-resolution generator that fills every hole with one value (network domain) and
    gives back the rest as it was given (so that meeting the plate at the hole's edge moves nothing)."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, image: torch.Tensor, hole: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        flat = torch.where(hole > 0, torch.full_like(image, self.value), image)
        return flat, flat


def test_the_coarse_prior_reaches_the_finest_scale(tmp_path: Path) -> None:
    plate, mask, walls = _write_shot(tmp_path, count=2, height=96, width=128, box=(30, 70, 40, 90))
    shot = load_shot(find_sequence(plate), find_sequence(mask), work_size=16)
    cfg = FAST.for_device("cpu")
    scales = plan_scales((96, 128), shot.geometry.work, cfg)
    # Untrained finer scales return their prior: what reaches full resolution is the coarse fill.
    levels = [Level(s, level_size((96, 128), s), DetailNet(4).eval())
              for s in scales]
    original = read_exr(shot.plate.path(1001))
    matte, fill, box = progressive_fill(_Flat(0.25), levels, shot, original, 1001, cfg)
    value = float(shot.shaper.decode(torch.tensor(0.25)))
    y0, y1, x0, x1 = box
    inside = matte[y0:y1, x0:x1]
    assert inside.sum() == matte.sum() == 40 * 50
    # The middle of the hole, far from the plate around it, holds the coarse value through two upsamplings.
    np.testing.assert_allclose(fill[36 - y0:64 - y0, 48 - x0:82 - x0], value, rtol=1e-4)
    assert np.abs(fill[inside] - value).max() < 0.5 * abs(value - OBJECT[0])

    # And trained finer scales improve on it: the prior is their input, not their answer. The wall behind
    # the object is known (the plate was drawn over it), so the fill is measured against the truth.
    trained = progressive.fit_levels(shot, FAST.replace(scale_steps=30), torch.device("cpu"))
    assert [lv.scale for lv in trained] == scales
    _, fill2, _ = progressive_fill(_Flat(0.25), trained, shot, original, 1001, cfg)
    truth = walls[0][y0:y1, x0:x1][inside]
    prior_error, trained_error = np.abs(fill[inside] - truth).mean(), np.abs(fill2[inside] - truth).mean()
    assert trained_error < 0.95 * prior_error, (trained_error, prior_error)


def test_auto_keeps_the_working_resolution_path_on_small_plates(tiny_shot) -> None:
    shot = load_shot(find_sequence(tiny_shot.plate), find_sequence(tiny_shot.mask), work_size=16)
    assert progressive.fit_levels(shot, HiresConfig().for_device("cpu"), torch.device("cpu")) == []
    assert progressive.fit_levels(shot, HiresConfig(scales="off").for_device("cpu"), torch.device("cpu")) == []


def test_overscan_is_filled_and_written_like_the_rest(tmp_path: Path) -> None:
    # Display window 0,0 96x64; data window from (-16, -8), 128x80: 16 and 8 pixels of overscan around it.
    # The object reaches from inside the format into the left overscan.
    display, origin = (0, 0, 96, 64), (-16, -8)
    plate, mask, _ = _write_shot(tmp_path / "in", count=2, height=80, width=128, box=(30, 50, 4, 40),
                                     data_window=origin, display_window=display)
    out = str(tmp_path / "out" / "clean.####.exr")
    result = run_job(JobSpec(plate=plate, mask=mask, out=out, checkpoint_dir=str(tmp_path / "ck")), device="cpu",
                     existing="refuse", cfg=TINY, hires=FAST)
    assert len(result.written) == 2
    for frame in (1001, 1002):
        header, channels = read_with_openexr(tmp_path / "out" / f"clean.{frame}.exr")
        (x0, y0), (x1, y1) = header["dataWindow"]
        assert (x0, y0, x1 + 1 - x0, y1 + 1 - y0) == (-16, -8, 128, 80)
        _, source = read_with_openexr(tmp_path / "in" / f"plate.{frame}.exr")
        _, matte_ch = read_with_openexr(tmp_path / "in" / f"mask.{frame}.exr")
        matte = matte_ch["A"] > 0
        for name in "RGB":
            # Outside the matte, the plate's bits, overscan included.
            assert np.array_equal(channels[name][~matte].view(np.uint16), source[name][~matte].view(np.uint16))
        assert np.array_equal(channels["A"] > 0, matte)  # alpha: the matte, over the data window
        rgb = np.stack([channels[c].astype(np.float32) for c in "RGB"], -1)
        overscan = matte.copy()
        overscan[:, 16:] = False  # the matte's pixels left of the display window
        assert overscan.sum() > 0
        filled = rgb[overscan]
        assert np.isfinite(filled).all()
        # The red object is gone from the overscan too (the grey wall has R close to G and B; the
        # object R - G is 0.85): a 2-step model fills flatly, but from the wall, not the object.
        redness = filled[:, 0] - filled[:, 1:].mean(axis=1)
        assert np.abs(redness).mean() < 0.1 * (OBJECT[0] - OBJECT[1])
        assert not np.allclose(filled, OBJECT, atol=0.1)


def test_the_farm_trains_the_finer_scales_once_and_renders_chunks_with_them(tmp_path: Path) -> None:
    plate, mask, _ = _write_shot(tmp_path / "in", count=3, height=96, width=128, box=(30, 70, 40, 90))
    spec = JobSpec(plate=plate, mask=mask, out=str(tmp_path / "farm" / "clean.####.exr"), preset="quick",
                   steps=2, work_size=16, scales="2", patch_size=16, scale_steps=3, tile_size=48)
    train_job(spec, device="cpu")
    levels, data = progressive.load_levels(spec.scales_path)
    assert [lv.size for lv in levels][-1] == (96, 128) and len(levels) == 2 and data["full"] == [96, 128]
    made = spec.scales_path.stat().st_mtime_ns
    train_job(spec, device="cpu")  # a retried Train task: the finer scales are current, not trained again
    assert spec.scales_path.stat().st_mtime_ns == made

    render_job(spec, [1002, 1003], device="cpu")  # chunks, in any order
    render_job(spec, [1001], device="cpu")
    one = tmp_path / "one" / "clean.####.exr"
    run_job(spec.replace(out=str(one)), device="cpu", existing="refuse")  # the one-shot job: its own folder
    plain = spec.replace(out=str(tmp_path / "plain" / "clean.####.exr"), checkpoint_dir=str(spec.folder))
    spec.scales_path.rename(tmp_path / "kept.ckpt")
    render_job(plain, [1001], device="cpu")  # without the finer scales: the working fill scaled up
    for frame in (1001, 1002, 1003):
        farm = read_exr(spec.out.replace("####", str(frame))).pixels
        assert np.array_equal(farm, read_exr(str(one).replace("####", str(frame))).pixels)  # as one-shot
    matte = read_exr(mask.replace("####", "1001")).pixels[..., 0] > 0
    farm = read_exr(spec.out.replace("####", "1001")).pixels
    assert not np.allclose(farm[matte], read_exr(plain.out.replace("####", "1001")).pixels[matte])


def test_finer_scales_of_another_model_are_refused_and_retrained(tmp_path: Path) -> None:
    plate, mask, _ = _write_shot(tmp_path / "in", count=2, height=96, width=128, box=(30, 70, 40, 90))
    spec = JobSpec(plate=plate, mask=mask, out=str(tmp_path / "out" / "clean.####.exr"), preset="quick",
                   steps=2, work_size=16, scales="1", patch_size=16, scale_steps=2, tile_size=48)
    train_job(spec, device="cpu")
    stale = tmp_path / "stale.ckpt"
    spec.scales_path.rename(stale)
    longer = spec.replace(steps=3)
    train_job(longer, device="cpu")  # resumes to step 3; the finer scales are trained for that model
    assert progressive.levels_current(spec.scales_path, spec.hires_config(), 3)
    stale.replace(spec.scales_path)  # a folder holding the scales of the step-2 model
    with pytest.raises(ConfigError, match="step 2.*step 3.*ivi-render train"):
        render_job(longer, [1001], device="cpu")
    assert not list((tmp_path / "out").glob("*.exr"))
    train_job(longer, device="cpu")  # brings them up to date
    assert progressive.levels_current(spec.scales_path, spec.hires_config(), 3)
    render_job(longer, [1001], device="cpu")
