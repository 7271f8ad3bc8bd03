"""Several processes on one shot: torchrun with two CPU (gloo) processes trains data-parallel, one checkpoint."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from conftest import TinyShot
from test_jobs import ivi, ivi_env, shot_args

SETTINGS = ["--preset", "quick", "--steps", "4", "--budget", "0", "--work-size", "32", "--device", "cpu"]


def test_torchrun_two_gloo_processes_train_one_checkpoint(tiny_shot: TinyShot, tmp_path: Path) -> None:
    exe = str(Path(sys.executable).with_name("ivi-render"))
    folder = tmp_path / "ck"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "--no-python",
           exe, "train", *shot_args(tiny_shot, tmp_path / "out"), "--checkpoint-dir", str(folder), *SETTINGS]
    r = subprocess.run(cmd, capture_output=True, text=True, env=ivi_env(), timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "rank 0 of 2" in r.stderr and "rank 1 of 2" in r.stderr
    assert r.stdout.count("Progress: 100%") == 1  # rank 0 alone reports
    assert sorted(p.name for p in folder.iterdir()) == ["job.json", "model.ckpt"]  # one checkpoint, no leftovers
    data = torch.load(folder / "model.ckpt", weights_only=True)
    assert data["step"] == 4 and data["world_size"] == 2
    assert len(data["rng_ranks"]) == 2 and not torch.equal(*data["rng_ranks"])  # each rank drew its own

    # One process alone takes other steps: the two ranks' gradients were averaged.
    r = ivi("train", *shot_args(tiny_shot, tmp_path / "out"), "--checkpoint-dir", str(tmp_path / "one"), *SETTINGS)
    assert r.returncode == 0, r.stderr
    alone = torch.load(tmp_path / "one/model.ckpt", weights_only=True)
    assert any(not torch.equal(alone["model"][k], data["model"][k]) for k in alone["model"])

    r = ivi("render", "--checkpoint-dir", str(folder), "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert len(list((tmp_path / "out").glob("clean.*.exr"))) == len(tiny_shot.frames)
