"""A run an artist can judge (ivi_vfx/report.py): metrics.csv, plot.png and previews written by a real small
training, resumed runs continuing the CSV, and `ivi-render preview`'s contact sheet of the finished job, with
and without a confidence.Y channel."""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import TinyShot, make_tiny_shot
from ivi_vfx import report
from ivi_vfx import sheet as contact
from ivi_vfx.carry import CONFIDENCE
from ivi_vfx.config import TrainConfig
from ivi_vfx.errors import ConfigError, MissingFramesError
from ivi_vfx.io.exr import output_spec, read_exr, write_exr
from ivi_vfx.jobs import JobSpec
from ivi_vfx.pipeline import run_job
from ivi_vfx.train import StepInfo

TINY = TrainConfig(preset="quick", cnum=8, steps=4, batch_size=2, work_size=32, log_every=1, validate_every=1)


def png(path: Path) -> np.ndarray:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    image = cv2.imread(str(path))
    assert image is not None
    return image


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[TinyShot, JobSpec]:
    """A tiny shot trained 4 steps and rendered, previews at every step (IVI_PREVIEW_MINUTES=0)."""
    root = tmp_path_factory.mktemp("run")
    shot = make_tiny_shot(root / "shot", count=4)
    spec = JobSpec(plate=shot.plate, mask=shot.mask, out=str(root / "out" / "clean.####.exr"))
    old = os.environ.get(report.PREVIEW_MINUTES_ENV)
    os.environ[report.PREVIEW_MINUTES_ENV] = "0"
    try:
        run_job(spec, device="cpu", existing="refuse", cfg=TINY)
    finally:
        if old is None:
            os.environ.pop(report.PREVIEW_MINUTES_ENV)
        else:
            os.environ[report.PREVIEW_MINUTES_ENV] = old
    return shot, spec


def test_training_writes_metrics_plot_and_previews_into_the_job_folder(finished) -> None:
    shot, spec = finished
    folder = spec.folder / report.REPORT_DIR
    with open(folder / report.METRICS_FILE, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert tuple(rows[0]) == report.METRICS_COLUMNS
    seconds = [float(r["seconds"]) for r in rows]
    assert seconds == sorted(seconds) and seconds[0] >= 0
    assert all(float(r["loss"]) > 0 for r in rows)
    # validate_every=1: every row carries the validation estimate of its step, a PSNR in dB.
    assert all(5 < float(r["estimate_db"]) < 80 for r in rows)
    assert float(rows[-1]["fraction"]) == 1.0
    plot = png(folder / report.PLOT_FILE)
    assert plot.shape == (360, 640, 3) and len(np.unique(plot.reshape(-1, 3), axis=0)) > 4
    # A preview every step (interval 0) plus the trained model's at the end; the latest is preview.png.
    previews = sorted((folder / report.PREVIEWS_DIR).glob("step_*.png"))
    assert [p.name for p in previews] == [f"step_{s:06d}.png" for s in (1, 2, 3, 4)]
    latest = png(folder / report.PREVIEW_FILE)
    assert np.array_equal(latest, png(previews[-1]))
    # plate | fill | matte of the 32x24 working frame, scaled up x7 to 168 rows, under an 18-row caption.
    assert latest.shape == (18 + 168, 3 * 224 + 2 * 4, 3)
    matte = latest[18:, 2 * (224 + 4):, 0]
    big = int(shot.mattes.sum(axis=(1, 2)).argmax())
    expect = cv2.resize(shot.mattes[big], (224, 168), interpolation=cv2.INTER_NEAREST) > 0
    assert np.array_equal(matte > 127, expect)  # the matte tile is the largest matte's frame
    plate_tile = latest[18:, :224].astype(int)
    fill_tile = latest[18:, 228:452].astype(int)
    assert np.array_equal(plate_tile[~expect], fill_tile[~expect])  # outside the matte the fill is the plate
    assert np.abs(plate_tile[expect] - fill_tile[expect]).mean() > 1  # inside, the network's (the red square gone)


def test_a_resumed_run_continues_the_csv_and_a_fresh_one_starts_it_again(tmp_path: Path) -> None:
    clock = iter(float(t) for t in range(100))
    first = report.TrainingReport(tmp_path, preview_every=None, clock=lambda: next(clock))
    for step in (1, 2, 3):
        first.step(StepInfo(step, 6, {"total": 0.5 / step}, 0.1, step / 6))
    first.close()
    resumed = report.TrainingReport(tmp_path, preview_every=None, clock=lambda: next(clock))
    for step in (3, 4):  # resumed from the checkpoint of step 2 (the row of step 3 is dropped)
        resumed.step(StepInfo(step, 6, {"total": 0.1}, 0.1, step / 6, estimate_db=21.5))
    resumed.close()
    rows = report.read_metrics(tmp_path / "report" / report.METRICS_FILE)
    assert [r[0] for r in rows] == [1, 2, 3, 4] and rows[-1][3] == 21.5 and rows[0][3] is None
    assert [r[1] for r in rows] == sorted(r[1] for r in rows) and rows[2][1] > rows[1][1]
    fresh = report.TrainingReport(tmp_path, preview_every=None, clock=lambda: next(clock))
    fresh.step(StepInfo(1, 6, {"total": 0.4}, 0.1, 1 / 6))
    fresh.close()
    assert [r[0] for r in report.read_metrics(tmp_path / "report" / report.METRICS_FILE)] == [1]


def test_a_report_that_cannot_be_written_never_stops_training(tmp_path: Path, caplog) -> None:
    (tmp_path / "report").write_text("a file where the report folder goes")
    broken = report.TrainingReport(tmp_path, preview_every=None)
    for step in (1, 2):
        broken.step(StepInfo(step, 2, {"total": 0.1}, 0.1, step / 2))
    broken.close()
    assert sum("training goes on" in r.message for r in caplog.records) == 1


@pytest.mark.parametrize("value, minutes", [("", 3.0), ("0", 0.0), ("0.5", 0.5), ("off", None)])
def test_preview_interval_from_the_environment(value: str, minutes: float | None) -> None:
    assert report.preview_minutes({report.PREVIEW_MINUTES_ENV: value}) == minutes


def test_a_bad_preview_interval_names_the_variable_and_the_fix() -> None:
    with pytest.raises(ConfigError, match="IVI_PREVIEW_MINUTES='-1'.*or off"):
        report.preview_minutes({report.PREVIEW_MINUTES_ENV: "-1"})


def ivi(*args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("ivi-render")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_ivi_render_preview_writes_a_contact_sheet_of_chosen_frames(finished, tmp_path: Path) -> None:
    shot, spec = finished
    out = tmp_path / "sheet.png"
    r = ivi("preview", str(spec.folder), "--frames", "1001,1004", "--out", str(out), "--width", "64")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(out)
    sheet = png(out)
    result = read_exr(spec.out.replace("####", "1001"))
    assert CONFIDENCE in result.channel_names  # the engine writes it: the sheet has a fourth column
    # A title bar, then per frame a caption and four 64x48 tiles: plate | fill | matte | confidence.
    assert sheet.shape == (24 + 2 * (18 + 48 + 4), 4 * 64 + 3 * 4, 3)
    top = sheet[24 + 18:24 + 18 + 48].astype(float)

    def tile(values: np.ndarray) -> np.ndarray:
        return cv2.resize(values, (64, 48), interpolation=cv2.INTER_AREA)

    assert np.abs(top[:, 2 * 68:2 * 68 + 64, 0] - tile(result.display(("A",))[..., 0]) * 255).max() <= 1
    confidence = tile(result.display((CONFIDENCE,))[..., 0]).clip(0, 1)
    assert np.abs(top[:, 3 * 68:, 0] - confidence * 255).max() <= 1
    assert np.abs(top[:, :64] - report.to_display(tile(shot.plates[0]))[..., ::-1]).max() <= 1
    # Without --frames: five spread over the frames on disk (here all four), into the job folder's report/.
    r = ivi("preview", str(spec.folder / "job.json"))
    assert r.returncode == 0, r.stderr
    assert Path(r.stdout.strip()) == spec.folder / "report" / contact.SHEET_FILE
    assert png(Path(r.stdout.strip())).shape[0] == 24 + 4 * (18 + 240 + 4)


def test_the_sheet_shows_confidence_only_when_the_output_has_it_and_names_a_missing_frame(finished,
                                                                                          tmp_path: Path) -> None:
    _, spec = finished
    frame = read_exr(spec.out.replace("####", "1002"))
    names = list(frame.channel_names)
    h, w = frame.pixels.shape[:2]
    ramp = frame.pixels.copy()
    ramp[..., names.index(CONFIDENCE)] = np.tile(np.linspace(0, 1, w, dtype=np.float32), (h, 1))
    ramped = tmp_path / "ramp" / "clean.####.exr"
    write_exr(ramped.parent / "clean.1002.exr", ramp, output_spec(frame.spec, names))
    sheet = png(contact.write_contact_sheet(spec.replace(out=str(ramped)), [1002], tmp_path / "c.png", 64))
    assert sheet.shape[1] == 4 * 64 + 3 * 4
    values = sheet[24 + 18 + 10, 3 * 68:3 * 68 + 64, 0].astype(int)
    assert values[0] < 10 and values[-1] > 245 and np.all(np.diff(values) >= 0)
    # An output without the channel (before "Known pixels first", or a job that carries nothing): three columns.
    keep = [k for k, n in enumerate(names) if n != CONFIDENCE]
    bare = tmp_path / "bare" / "clean.####.exr"
    write_exr(bare.parent / "clean.1002.exr", frame.pixels[..., keep],
              output_spec(frame.spec, [names[k] for k in keep]))
    other = spec.replace(out=str(bare))
    assert png(contact.write_contact_sheet(other, [1002], tmp_path / "d.png", 64)).shape[1] == 3 * 64 + 2 * 4
    with pytest.raises(MissingFramesError, match="1003 are not rendered"):
        contact.write_contact_sheet(other, [1003])


def test_a_sheet_whose_plate_is_gone_says_so(finished, tmp_path: Path) -> None:
    _, spec = finished
    rows = contact.sheet_rows(spec.replace(plate=str(tmp_path / "gone.####.exr")), [1001])
    assert rows[0].plate is None
    sheet = contact.sheet_image(rows)
    assert sheet.shape[1] == 4 * 320 + 3 * 4
    tile = sheet[18:, :320].astype(int)
    assert (tile[..., 0] == tile[..., 2]).all() and (tile == 60).mean() > 0.9  # a grey tile, "not on disk" on it
