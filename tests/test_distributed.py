"""Several processes on one shot: torchrun with two CPU (gloo) processes trains data-parallel, one checkpoint."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from conftest import TinyShot
from test_jobs import ivi, ivi_env, shot_args

SETTINGS = ["--no-carry", "--preset", "quick", "--steps", "4", "--budget", "0", "--work-size", "32", "--device", "cpu"]


def test_torchrun_two_gloo_processes_train_one_checkpoint(tiny_shot: TinyShot, tmp_path: Path) -> None:
    exe = str(Path(sys.executable).with_name("ivi-render"))
    folder = tmp_path / "ck"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "--no-python",
           exe, "train", *shot_args(tiny_shot, tmp_path / "out"), "--checkpoint-dir", str(folder), *SETTINGS]
    r = subprocess.run(cmd, capture_output=True, text=True, env=ivi_env(), timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "rank 0 of 2" in r.stderr and "rank 1 of 2" in r.stderr
    assert r.stdout.count("Progress: 100%") == 1  # rank 0 alone reports
    assert sorted(p.name for p in folder.iterdir()) == ["job.json", "model.ckpt", "report"]  # one checkpoint
    data = torch.load(folder / "model.ckpt", weights_only=True)
    assert data["step"] == 4 and data["world_size"] == 2
    assert len(data["rng_ranks"]) == 2 and not torch.equal(*data["rng_ranks"])  # each rank drew its own

    # One process alone walks the shot in another order (what each rank averages: test below).
    r = ivi("train", *shot_args(tiny_shot, tmp_path / "out"), "--checkpoint-dir", str(tmp_path / "one"), *SETTINGS)
    assert r.returncode == 0, r.stderr
    alone = torch.load(tmp_path / "one/model.ckpt", weights_only=True)
    assert any(not torch.equal(alone["model"][k], data["model"][k]) for k in alone["model"])

    r = ivi("render", "--checkpoint-dir", str(folder), "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert len(list((tmp_path / "out").glob("clean.*.exr"))) == len(tiny_shot.frames)


def _average_on_rank(rank: int, size: int, port: int, folder: str) -> None:
    """One of `size` gloo processes: gradients that differ by rank, averaged, saved for the test to read."""
    import torch.distributed as dist

    from ivi_vfx.distributed import World

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=size)
    try:
        model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2, bias=False))
        for k, p in enumerate(model.parameters()):
            p.grad = torch.full_like(p, float(rank + 1)) * (k + 1) + torch.arange(p.numel()).view_as(p) * rank
        World(rank=rank, size=size).average_gradients(model)
        torch.save([p.grad for p in model.parameters()], Path(folder) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_average_gradients_replaces_each_gradient_by_the_mean_over_the_ranks(tmp_path: Path) -> None:
    """The torchrun test above passes whether or not gradients are averaged (a rank alone draws other
    frames anyway): this is the check that they are."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_average_on_rank, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    grads = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    shapes = [(4, 3), (4,), (2, 4)]
    for k, shape in enumerate(shapes):
        index = torch.arange(torch.Size(shape).numel()).view(shape)
        expected = sum(torch.full(shape, float(r + 1)) * (k + 1) + index * r for r in range(2)) / 2
        for r in range(2):
            assert torch.equal(grads[r][k], expected), (k, r)
