"""What only a GPU can check: mixed precision with its scaler, an exact fp16 resume, a GPU render of a
CPU-trained checkpoint, nccl, and a CUDA out-of-memory as a clear error.

Every test here is marked `cuda` and skipped without a GPU (conftest.py); `bench/gpu_check.py`
runs them (`pytest -m cuda`). The one-process distributed run is also run on the CPU with gloo, so
that the machinery of that test is proven here too.
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

# cuBLAS is deterministic only with a fixed workspace, set before its first use (the collection of
# this module comes before any test runs).
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

from conftest import make_tiny_shot
from ivi_vfx import distributed
from ivi_vfx.config import TrainConfig, preset_config
from ivi_vfx.distributed import World
from ivi_vfx.errors import IviError
from ivi_vfx.io.exr import read_exr
from ivi_vfx.io.sequence import find_sequence, output_sequence
from ivi_vfx.render import render
from ivi_vfx.shot import Shot, load_shot
from ivi_vfx.train import fit, load_model
from test_cpu_precision import STEP, check_gradient_precision, check_training_precision, precision_shot

cuda = pytest.mark.cuda

FILL_TOLERANCE = 4e-3
"""Most |GPU - CPU| of a rendered fill pixel (scene-linear, plate values 0.02-0.9), with torch's default
TF32 convolutions on the GPU. Rounding a checkpoint's convolutions to TF32 on the CPU moved the fill of
this test's shot by at most 2e-4; the outputs are half, whose step at 0.5 is 4.9e-4. Outside the matte
every bit is the plate's on either device."""


@pytest.fixture
def deterministic():
    """cuDNN's deterministic algorithms, for runs that must agree bit for bit."""
    saved = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    yield
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved


# --- mixed precision ---------------------------------------------------------------------------------

@cuda
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_a_mixed_precision_training_run_stays_finite_lowers_the_loss_and_follows_fp32(
        tmp_path: Path, precision: str) -> None:
    shot = precision_shot(tmp_path / "shot")
    check_training_precision(shot, precision, "cuda")
    check_gradient_precision(shot, precision, "cuda")


@cuda
def test_the_gpu_final_preset_trains_a_step_at_its_own_sizes(tmp_path: Path) -> None:
    tiny = make_tiny_shot(tmp_path / "shot", count=5, height=320, width=600)
    cfg = preset_config("final", "cuda")
    shot = load_shot(find_sequence(tiny.plate), find_sequence(tiny.mask), work_size=cfg.work_size)
    assert shot.geometry.padded == (320, 600)
    seen: list[dict[str, float]] = []
    # Three steps with the schedule's shares: the last is in the fine-tune stage, with both regularizers.
    run = cfg.rescheduled(3).replace(budget=0.0)
    assert run.finetune_steps == 1
    result = fit(shot, run, device="cuda", on_step=lambda info: seen.append(info.losses))
    assert result.step == 3 and all(np.isfinite(v) for step in seen for v in step.values())
    assert {"ambiguity", "stab_refined"} <= set(seen[-1])
    assert all(p.dtype == torch.float32 for p in result.model.parameters())  # fp32 master weights


def _scaler_state(data: Any) -> dict | None:
    """The GradScaler state_dict inside a checkpoint, wherever it is kept (its keys name it)."""
    if isinstance(data, dict):
        if {"scale", "_growth_tracker"} <= set(data):
            return data
        for value in data.values():
            found = _scaler_state(value)
            if found is not None:
                return found
    return None


def _same(a: Any, b: Any) -> bool:
    """Bit-for-bit equality of two checkpoint contents (tensors, dicts, lists, numbers)."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a.cpu(), b.cpu())
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return bool(a == b)


@cuda
def test_an_fp16_resume_is_exact_with_the_loss_scale_in_the_checkpoint(tmp_path: Path, deterministic: None) -> None:
    """Depends on the reliability work that keeps the fp16 GradScaler's state in the checkpoint."""
    shot = precision_shot(tmp_path / "shot")
    cfg = STEP.replace(precision="fp16", steps=8, checkpoint_every=1000)
    whole, split = tmp_path / "whole.ckpt", tmp_path / "split.ckpt"
    fit(shot, cfg, device="cuda", checkpoint=whole)
    fit(shot, cfg.replace(steps=4), device="cuda", checkpoint=split)
    resumed = fit(shot, cfg, device="cuda", checkpoint=split)
    assert resumed.step == 8
    a, b = torch.load(whole, weights_only=True), torch.load(split, weights_only=True)
    scaler_a, scaler_b = _scaler_state(a), _scaler_state(b)
    assert scaler_a is not None, f"no GradScaler state in the checkpoint (keys: {sorted(a)})"
    # Restored, not restarted: a fresh scaler would count 4 steps since its last change, not 8.
    assert scaler_b == scaler_a
    assert _same(a["model"], b["model"]) and _same(a["optimizer"], b["optimizer"])
    assert _same(a["rng"], b["rng"]) and a["step"] == b["step"] == 8


# --- a GPU render of a CPU-trained checkpoint ------------------------------------------------------------

@cuda
def test_a_gpu_render_of_a_cpu_checkpoint_matches_the_cpu_render(tmp_path: Path) -> None:
    tiny = make_tiny_shot(tmp_path / "shot", count=4, height=48, width=64)
    shot: Shot = load_shot(find_sequence(tiny.plate), find_sequence(tiny.mask), work_size=64)
    checkpoint = tmp_path / "model.ckpt"
    fit(shot, STEP.replace(steps=40), device="cpu", checkpoint=checkpoint)
    outputs = {}
    for device in ("cpu", "cuda"):
        model, _ = load_model(checkpoint, device)
        pattern = str(tmp_path / device / "clean.####.exr")
        render(model, shot, output_sequence(pattern, shot.frames), device=device)
        outputs[device] = find_sequence(pattern)
    for t, frame in enumerate(shot.frames):
        cpu = read_exr(outputs["cpu"].path(frame)).pixels
        gpu = read_exr(outputs["cuda"].path(frame)).pixels
        plate = read_exr(find_sequence(tiny.plate).path(frame)).pixels
        matte = tiny.mattes[t] > 0
        assert np.array_equal(gpu[~matte].view(np.uint32), cpu[~matte].view(np.uint32))
        assert np.array_equal(gpu[~matte][:, :3].view(np.uint32), plate[~matte][:, :3].view(np.uint32))
        difference = np.abs(gpu[matte][:, :3] - cpu[matte][:, :3])
        assert difference.max() <= FILL_TOLERANCE, float(difference.max())
        assert np.array_equal(gpu[..., 3], cpu[..., 3])  # the alpha is the matte on either device


# --- one process through the distributed path -------------------------------------------------------------

@dataclass(frozen=True)
class OneRankGroup(World):
    """A world of one rank that still takes the collective path (World skips it for a single process)."""

    @property
    def distributed(self) -> bool:
        return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _one_process_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, device: str) -> None:
    """init_world as torchrun would start it, with one rank; fit through the all-reduce, the agreement on
    flags and the gathering of the checkpoint's generators; the weights are those of a plain run."""
    shot = precision_shot(tmp_path / "shot")
    cfg = STEP.replace(steps=4, precision="fp32")
    plain = fit(shot, cfg, device=device).model
    monkeypatch.setattr(distributed, "launched_by_torchrun", lambda: True)
    for key, value in {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1",
                       "MASTER_PORT": str(_free_port())}.items():
        monkeypatch.setenv(key, value)
    world, rank_device = distributed.init_world(torch.device(device), timeout=timedelta(seconds=60))
    group = OneRankGroup(rank=world.rank, size=world.size)
    try:
        assert torch.distributed.is_initialized() and (world.rank, world.size) == (0, 1)
        backend = str(torch.distributed.get_backend())
        assert ("nccl" in backend) if device == "cuda" else ("gloo" in backend), backend
        checkpoint = tmp_path / "rank.ckpt"
        ranked = fit(shot, cfg, device=rank_device, checkpoint=checkpoint, world=group).model
    finally:
        distributed.close_world(group)
    assert not torch.distributed.is_initialized()
    data = torch.load(checkpoint, weights_only=True)
    assert data["world_size"] == 1 and len(data["rng_ranks"]) == 1
    for a, b in zip(plain.state_dict().values(), ranked.state_dict().values()):
        torch.testing.assert_close(b.cpu(), a.cpu(), rtol=0, atol=1e-6)


def test_one_gloo_process_takes_the_distributed_path_on_the_cpu(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    _one_process_run(tmp_path, monkeypatch, "cpu")


@cuda
def test_one_nccl_process_takes_the_distributed_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      deterministic: None) -> None:
    _one_process_run(tmp_path, monkeypatch, "cuda")


# --- out of memory ---------------------------------------------------------------------------------------

@cuda
def test_a_cuda_out_of_memory_is_a_clear_error_that_names_the_fix(tmp_path: Path) -> None:
    """Depends on the reliability work that turns torch's OutOfMemoryError into an IviError."""
    tiny = make_tiny_shot(tmp_path / "shot", count=5, height=320, width=600)
    cfg = TrainConfig(preset="test", steps=2, validate_every=0, precision="fp32")  # the paper's network, 5 x 600x320
    shot = load_shot(find_sequence(tiny.plate), find_sequence(tiny.mask), work_size=cfg.work_size)
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.empty_cache()
    torch.cuda.set_per_process_memory_fraction(256 * 2 ** 20 / total)  # 256 MiB: a card far too small
    try:
        with pytest.raises(IviError) as caught:
            fit(shot, cfg, device="cuda")
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        torch.cuda.empty_cache()
    message = str(caught.value)
    assert "memory" in message.lower(), message
    assert "--" in message, f"the message names no option that lowers the memory: {message}"
