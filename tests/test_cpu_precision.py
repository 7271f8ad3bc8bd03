"""What of the GPU's paths a CPU can check: the training step under bf16 autocast, and the GPU presets'
sizes against the plates they meet (planned, not run).

The training-step checks are the same functions tests/test_cuda.py runs on a GPU for bf16 and fp16.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch

from conftest import TinyShot, make_tiny_shot
from ivi_vfx import losses, runtime
from ivi_vfx.config import PRESETS, TrainConfig
from ivi_vfx.io.sequence import find_sequence
from ivi_vfx.nets import build_generator
from ivi_vfx.shot import Shot, load_shot
from ivi_vfx.train import BatchSampler, fit

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import gpu_check  # noqa: E402

STEP = TrainConfig(preset="test", cnum=8, steps=12, batch_size=2, work_size=64, lr=3e-3, validate_every=0,
                   log_every=10, checkpoint_every=1000, channels_last=True, threads=1)
"""A small run of the trainer: the paper's schedule is not the point, its step under each precision is.
One thread: on a shared CPU two threads made these runs several times slower (runtime.auto_threads)."""


@pytest.fixture(autouse=True)
def _keep_threads():
    """One thread here (fit() sets it from cfg.threads too); the next test gets torch's count back."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def precision_shot(folder: Path) -> Shot:
    tiny: TinyShot = make_tiny_shot(folder, count=4, height=32, width=48)
    return load_shot(find_sequence(tiny.plate), find_sequence(tiny.mask), work_size=64)


def losses_of(shot: Shot, cfg: TrainConfig, device: str) -> list[float]:
    """The total loss of every step of fit() on `device`."""
    seen: list[float] = []
    fit(shot, cfg, device=device, on_step=lambda info: seen.append(info.losses["total"]) and None)
    return seen


def check_training_precision(shot: Shot, precision: str, device: str) -> None:
    """fit() under `precision` on `device`: every loss finite, the loss falls, and it stays near fp32's run.

    The same seed gives both runs the same initial weights and the same batches, so their first losses
    differ only by the forward's precision, and their runs by what the rounding did to the steps.
    """
    low = losses_of(shot, STEP.replace(precision=precision), device)
    ref = losses_of(shot, STEP.replace(precision="fp32"), device)
    assert len(low) == len(ref) == STEP.steps
    assert all(math.isfinite(v) for v in low), low
    assert low != ref  # the autocast acted: its rounding shows in some step's loss
    assert low[0] == pytest.approx(ref[0], rel=0.03)  # one forward, same weights, same batch
    first, last = sum(low[:3]) / 3, sum(low[-3:]) / 3
    assert last < 0.8 * first, (first, last)  # the loss falls (about 1.25 to 0.68 in fp32 here)
    ref_last = sum(ref[-3:]) / 3
    assert last == pytest.approx(ref_last, rel=0.05), (last, ref_last)  # and where fp32's falls


def check_gradient_precision(shot: Shot, precision: str, device: str) -> None:
    """One step's gradients under autocast point where fp32's point (cosine above 0.99), and stay fp32."""
    cfg = STEP.replace(precision=precision)
    images, holes, weight = (runtime.prepare_input(t.to(device), cfg)
                             for t in BatchSampler(shot, cfg, torch.Generator().manual_seed(0)).draw(0))
    grads = []
    for run_cfg in (cfg.replace(precision="fp32"), cfg):
        torch.manual_seed(0)
        model = runtime.prepare_model(build_generator(cfg.cnum), device, run_cfg)
        with runtime.autocast(device, run_cfg):
            coarse, refined = model(images, holes)
        total = torch.stack(list(losses.reconstruction(images, coarse.float(), refined.float(), weight).values())).sum()
        scaler = runtime.grad_scaler(device, run_cfg)
        scaler.scale(total).backward()
        scale = scaler.get_scale() if scaler.is_enabled() else 1.0
        assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in model.parameters())
        grads.append(torch.cat([p.grad.reshape(-1) / scale for p in model.parameters() if p.grad is not None]))
    assert torch.isfinite(grads[1]).all()
    cosine = float(torch.nn.functional.cosine_similarity(grads[0], grads[1], dim=0))
    assert cosine > 0.99, cosine


def test_bf16_training_on_the_cpu_stays_finite_lowers_the_loss_and_follows_fp32(tmp_path: Path) -> None:
    check_training_precision(precision_shot(tmp_path / "shot"), "bf16", "cpu")


def test_bf16_gradients_on_the_cpu_point_where_fp32s_do(tmp_path: Path) -> None:
    check_gradient_precision(precision_shot(tmp_path / "shot"), "bf16", "cpu")


# --- the GPU presets against the plates they meet --------------------------------------------------

@pytest.mark.parametrize("preset", list(PRESETS))
@pytest.mark.parametrize("plate", list(gpu_check.PLATES))
def test_gpu_presets_fit_a_4k_and_a_720p_plate(preset: str, plate: str) -> None:
    size = gpu_check.PLATES[plate]
    plan = gpu_check.preset_plan(preset, "cuda", size)
    assert gpu_check.plan_problems(plan) == []
    # The GPU variants train the paper's network on whole frames of up to 600 px (docs/presets.md).
    assert (plan["cnum"], plan["batch"], plan["crop"], max(plan["work"])) == (48, 5, 0, 600)
    assert plan["precision"] == "auto" and plan["channels_last"]
    if size == (2160, 3840):  # 6.4x the working size: finer scales up to the plate, 1024 px tiles
        assert len(plan["levels"]) >= 2 and plan["levels"][-1] == size
        assert plan["patch"] == 128 and plan["tile"] == 1024 and plan["finest_tiles"] > 1
    else:  # 720p is 2.1x the working size, under the 3x that adds a scale: the fill is scaled up
        assert plan["levels"] == [] and plan["upscale"] == pytest.approx(1280 / 600)


def test_a_plan_that_cannot_run_is_named() -> None:
    plan = gpu_check.preset_plan("final", "cuda", (2160, 3840))
    assert gpu_check.plan_problems(plan | {"patch": 1000}) == ["patch 1000 does not fit the scale 854x1518"]
    assert "is not larger than the overlap" in gpu_check.plan_problems(plan | {"tile": 32})[0]
    assert "not a multiple of 4" in gpu_check.plan_problems(plan | {"padded": (338, 600)})[0]
    assert "crop 400" in gpu_check.plan_problems(plan | {"crop": 400})[0]
