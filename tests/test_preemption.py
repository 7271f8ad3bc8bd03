"""Pre-emption on a farm: SIGTERM in training checkpoints and resumes exactly; a killed render leaves whole frames."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from conftest import TinyShot, make_tiny_shot
from ivi_vfx.io.exr import read_exr
from test_jobs import FAST, ivi, ivi_env, pixels, shot_args

EXE = str(Path(sys.executable).with_name("ivi-render"))
LONG = ["--no-carry", "--preset", "quick", "--steps", "120", "--budget", "0", "--work-size", "32", "--device", "cpu"]


def test_sigterm_in_training_checkpoints_and_the_same_command_resumes_to_the_same_weights(tiny_shot: TinyShot,
                                                                                          tmp_path: Path) -> None:
    args = ["train", *shot_args(tiny_shot, tmp_path / "out"), "--checkpoint-dir", str(tmp_path / "ck"), *LONG]
    proc = subprocess.Popen([EXE, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ivi_env())
    assert proc.stdout is not None
    for line in proc.stdout:  # wait until training is well under way
        if line.startswith("Progress:") and int(line.split()[1].rstrip("%")) >= 20:
            break
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "run the same command again to resume" in err and "Traceback" not in err
    stopped_at = torch.load(tmp_path / "ck/model.ckpt", weights_only=True)["step"]
    assert 20 <= stopped_at < 120

    r = ivi(*args)  # the farm retries the same task
    assert r.returncode == 0, r.stderr
    assert f"at step {stopped_at}" in r.stderr
    resumed = torch.load(tmp_path / "ck/model.ckpt", weights_only=True)
    r = ivi("train", *shot_args(tiny_shot, tmp_path / "out"), "--checkpoint-dir", str(tmp_path / "straight"), *LONG)
    assert r.returncode == 0, r.stderr
    straight = torch.load(tmp_path / "straight/model.ckpt", weights_only=True)
    assert resumed["step"] == straight["step"] == 120
    assert all(torch.equal(resumed["model"][k], straight["model"][k]) for k in straight["model"])


def test_a_render_killed_with_sigkill_leaves_only_whole_frames_and_a_rerun_finishes(tmp_path: Path) -> None:
    shot = make_tiny_shot(tmp_path / "shot", count=8, height=96, width=128)
    out, folder = tmp_path / "out", tmp_path / "ck"
    r = ivi("train", *shot_args(shot, out), "--checkpoint-dir", str(folder), *FAST)
    assert r.returncode == 0, r.stderr
    proc = subprocess.Popen([EXE, "render", "--checkpoint-dir", str(folder), "--device", "cpu"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ivi_env())
    deadline = time.monotonic() + 120
    while not list(out.glob("clean.*.exr")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.kill()  # SIGKILL: no handler runs, whatever the render was doing
    proc.wait(timeout=30)
    survivors = sorted(out.glob("clean.*.exr"))
    assert survivors, "the render never wrote a frame"
    print(f"killed with {len(survivors)} of 8 frames written")  # how far the kill came (pytest -s)
    for path in survivors:
        read_exr(path)  # whole: OpenImageIO reads every pixel (a truncated file raises)
    missing = [f for f in shot.frames if not (out / f"clean.{f}.exr").exists()]
    stale = out / f"clean.{shot.frames[-1]}.exr"
    if missing:  # what a kill inside a write leaves: a hidden temporary, never a frame
        (out / f".{stale.name}.4242-deadbeef.tmp").write_bytes(b"half a frame")

    r = ivi("render", "--checkpoint-dir", str(folder), "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert f"wrote {len(missing)} frames, {8 - len(missing)} already complete" in r.stderr
    assert sorted(p.name for p in out.iterdir()) == [f"clean.{f}.exr" for f in shot.frames]  # no temporaries
    r = ivi("inpaint", *shot_args(shot, tmp_path / "one"), *FAST)
    assert r.returncode == 0, r.stderr
    for a, b in zip(pixels(str(out / "clean.####.exr"), shot.frames),
                    pixels(str(tmp_path / "one/clean.####.exr"), shot.frames)):
        assert np.array_equal(a, b)
