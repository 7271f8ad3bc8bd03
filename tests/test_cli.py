"""The installed `ivi-render` command, run as a farm or Nuke would run it: a real subprocess."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import OpenEXR
import pytest

from conftest import TinyShot, make_tiny_shot
from exr_helpers import write_test_exr

FAST = ["--no-carry", "--steps", "3", "--preset", "quick", "--work-size", "32", "--device", "cpu"]


def ivi(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("ivi-render")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([str(exe), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def test_inpaint_writes_every_frame_with_progress_lines(tiny_shot: TinyShot, tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = ivi("inpaint", "--plate", tiny_shot.plate, "--mask", tiny_shot.mask, "--out", str(out / "clean.%04d.exr"),
            *FAST)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.glob("clean.*.exr")) == [f"clean.{f}.exr" for f in tiny_shot.frames]
    percents = [int(line.split()[1].rstrip("%")) for line in r.stdout.splitlines() if line.startswith("Progress:")]
    assert percents[-1] == 100 and percents == sorted(percents)
    assert "step 3/3" in r.stderr  # the per-interval log line
    # The last step validates on held-out known pixels: the user gets a quality estimate, no truth needed.
    estimate = [line for line in r.stderr.splitlines() if line.startswith("wrote 5 frames, quality estimate ")]
    assert len(estimate) == 1 and estimate[0].split()[6] == "dB", r.stderr
    alpha = OpenEXR.File(str(out / "clean.1003.exr"), separate_channels=True).channels()["A"].pixels
    assert np.array_equal(alpha.astype(np.float32), tiny_shot.mattes[2])


def test_frames_option_and_quiet(tiny_shot: TinyShot, tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = ivi("-q", "inpaint", "--plate", tiny_shot.plate, "--mask", tiny_shot.mask, "--out", str(out / "c.####.exr"),
            "--frames", "1002-1004", *FAST)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.glob("c.*.exr")) == ["c.1002.exr", "c.1003.exr", "c.1004.exr"]
    assert "step" not in r.stderr


def test_budget_ends_training_early_and_still_renders(tiny_shot: TinyShot, tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = ivi("inpaint", "--plate", tiny_shot.plate, "--mask", tiny_shot.mask, "--out", str(out / "c.####.exr"),
            "--preset", "quick", "--work-size", "32", "--device", "cpu", "--steps", "100000", "--budget", "0.00001",
            "--no-carry")
    assert r.returncode == 0, r.stderr
    assert "budget of 1e-05 min is spent at step 1 of 100000" in r.stderr
    assert len(list(out.glob("c.*.exr"))) == len(tiny_shot.frames)


def _bad_truncated(shot: TinyShot) -> None:
    p = shot.folder / "plate.1003.exr"
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _bad_not_exr(shot: TinyShot) -> None:
    (shot.folder / "plate.1002.exr").write_text("this is not an image\n")


def _bad_missing(shot: TinyShot) -> None:
    (shot.folder / "mask.1004.exr").unlink()


def _bad_size(shot: TinyShot) -> None:
    write_test_exr(shot.folder / "mask.1002.exr", np.zeros((10, 12, 1), np.float32), channels=("A",))


def _bad_channel(shot: TinyShot) -> None:
    write_test_exr(shot.folder / "mask.1001.exr", np.zeros((24, 32, 2), np.float32), channels=("R", "G"))


CASES = {
    # case: (damage to the shot, extra args, words the message must hold)
    "no frames match": (None, ["--plate", "{folder}/nothing.####.exr"], ["nothing.####.exr"]),
    "frames missing in range": (None, ["--frames", "1001-1009"], ["1006-1009", "--frames"]),
    "mask frame missing": (_bad_missing, [], ["mask.####.exr", "1004"]),
    "truncated frame": (_bad_truncated, [], ["plate.1003.exr"]),
    "not an exr": (_bad_not_exr, [], ["plate.1002.exr"]),
    "sizes differ": (_bad_size, [], ["mask.1002.exr", "12x10", "32x24"]),
    "no such mask channel": (None, ["--mask-channel", "Z"], ["mask.1001.exr", "Z", "--mask-channel"]),
    "no A and several channels": (_bad_channel, [], ["mask.1001.exr", "--mask-channel"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_named_and_nothing_is_written(case: str, tmp_path: Path) -> None:
    shot = make_tiny_shot(tmp_path / "shot")
    damage, extra, words = CASES[case]
    if damage:
        damage(shot)
    before = shot.digest()
    args = {"--plate": shot.plate, "--mask": shot.mask, "--out": str(tmp_path / "out/clean.####.exr")}
    extra = [a.format(folder=shot.folder) for a in extra]
    for key in list(args):
        if key in extra:
            args.pop(key)
    flat = [x for kv in args.items() for x in kv]
    r = ivi("inpaint", *flat, *extra, *FAST)
    assert r.returncode == 1, (r.stdout, r.stderr)
    message = r.stderr.strip().splitlines()[-1]
    assert message.startswith("ivi-render: error:") and "Traceback" not in r.stderr
    for word in words:
        assert word in message, message
    assert not list((tmp_path / "out").glob("*.exr")) if (tmp_path / "out").exists() else True
    assert shot.digest() == before


def test_existing_output_needs_overwrite(tiny_shot: TinyShot, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    existing = out / "clean.1002.exr"
    existing.write_bytes(b"an older render")
    args = ["inpaint", "--plate", tiny_shot.plate, "--mask", tiny_shot.mask, "--out", str(out / "clean.####.exr"),
            *FAST]
    r = ivi(*args)
    assert r.returncode == 1 and "clean.1002.exr" in r.stderr and "--overwrite" in r.stderr
    assert existing.read_bytes() == b"an older render" and len(list(out.glob("*.exr"))) == 1
    r = ivi(*args, "--overwrite")
    assert r.returncode == 0, r.stderr
    assert len(list(out.glob("clean.*.exr"))) == 5 and existing.read_bytes() != b"an older render"


def test_output_folder_that_cannot_be_written(tiny_shot: TinyShot, tmp_path: Path) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("a file where a folder should be")
    r = ivi("inpaint", "--plate", tiny_shot.plate, "--mask", tiny_shot.mask,
            "--out", str(blocker / "sub" / "clean.####.exr"), *FAST)
    assert r.returncode == 1 and "afile" in r.stderr and "Traceback" not in r.stderr


def test_demo_writes_exrs_and_a_picture(tmp_path: Path) -> None:
    r = ivi("demo", "--out", str(tmp_path / "demo"), "--steps", "2", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert len(list((tmp_path / "demo/clean").glob("clean.*.exr"))) == 16
    png = tmp_path / "demo" / "before_after.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(png) in r.stdout and "hole PSNR" in r.stdout
