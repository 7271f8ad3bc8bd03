"""Reliability of training (issue 24): what a checkpoint must hold for an exact resume (the plateau that
begins the fine-tune stage, the fp16 loss scale), a crop the generator can take, and running out of memory
as a message with the sizes that would fit, the checkpoint kept."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import TinyShot
from ivi_vfx import runtime
from ivi_vfx.config import TrainConfig
from ivi_vfx.errors import ConfigError, DeviceMemoryError
from ivi_vfx.io.sequence import find_sequence
from ivi_vfx.nets.generator import Generator
from ivi_vfx.shot import Shot, load_shot
from ivi_vfx.train import fit
from test_reliability_inputs import run_cli

BASE = TrainConfig(preset="test", cnum=8, steps=4, batch_size=2, work_size=32, log_every=1, checkpoint_every=100,
                   validate_every=0, threads=1)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # two on a loaded 2-core machine stall


def _shot(tiny: TinyShot) -> Shot:
    return load_shot(find_sequence(tiny.plate), find_sequence(tiny.mask), work_size=32)


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_a_crop_the_generator_cannot_halve_twice_is_refused(tiny_shot: TinyShot) -> None:
    """crop=18 passed validation and crashed the generator (a shape mismatch deep in its head)."""
    for crop in (18, 21, 30):
        with pytest.raises(ConfigError, match="crop must be 0 .* a multiple of 4"):
            BASE.replace(crop=crop)
    assert fit(_shot(tiny_shot), BASE.replace(crop=16, steps=1)).step == 1


def test_a_stop_on_the_validation_where_the_plateau_fired_resumes_the_same_schedule(tiny_shot: TinyShot,
                                                                                   tmp_path: Path) -> None:
    """The plateau flag that begins the fine-tune stage at the next step was not in the checkpoint: a stop
    on that validation resumed in the reconstruction stage, and the plateau came one validation later."""
    shot = _shot(tiny_shot)
    # A rate too small to gain 1% a validation: the second validation completes a plateau of patience 1.
    cfg = BASE.replace(steps=6, finetune_steps=2, lr=1e-6, validate_every=1, patience=1, ambiguity_weight=0.0)
    straight_ckpt = tmp_path / "straight.ckpt"
    straight = fit(shot, cfg, checkpoint=straight_ckpt)
    began = torch.load(straight_ckpt, weights_only=True)["finetune_from"]
    assert 0 < began < cfg.steps - cfg.finetune_steps  # the plateau, not the step count, began the stage
    ckpt = tmp_path / "run.ckpt"
    first = fit(shot, cfg, checkpoint=ckpt, on_step=lambda info: info.step == began)
    assert first.stopped and first.step == began
    second = fit(shot, cfg, checkpoint=ckpt)
    assert torch.load(ckpt, weights_only=True)["finetune_from"] == began
    assert _same_weights(straight.model, second.model)


def test_the_loss_scale_of_fp16_training_is_checkpointed(tiny_shot: TinyShot, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """GradScaler's scale and growth tracker were not in the checkpoint: an fp16 resume started again from
    the initial scale. (CUDA alone enables it; here a CPU scaler that grows every step stands in.)"""
    monkeypatch.setattr(runtime, "grad_scaler", lambda device, cfg: torch.amp.GradScaler(
        "cpu", init_scale=256.0, growth_interval=1))
    shot = _shot(tiny_shot)
    straight, resumed = tmp_path / "straight.ckpt", tmp_path / "resumed.ckpt"
    fit(shot, BASE, checkpoint=straight)
    fit(shot, BASE, checkpoint=resumed, on_step=lambda info: info.step == 2)
    fit(shot, BASE, checkpoint=resumed)
    a, b = (torch.load(p, weights_only=True) for p in (straight, resumed))
    assert a["scaler"]["scale"] == 256.0 * 2 ** 4
    assert b["scaler"] == a["scaler"]
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def _exhausted(after: int):  # noqa: ANN202
    """A Generator.forward that runs out of memory from its `after`-th call on (as CUDA says it)."""
    forward, calls = Generator.forward, [0]

    def run(model: Generator, *args: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        calls[0] += 1
        if calls[0] >= after:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.2 GiB total)")
        return forward(model, *args)
    return run


def test_out_of_memory_names_the_sizes_that_fit_and_keeps_the_checkpoint(tiny_shot: TinyShot, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    shot = _shot(tiny_shot)
    ckpt = tmp_path / "model.ckpt"
    fit(shot, BASE.replace(steps=2), checkpoint=ckpt)
    kept = ckpt.read_bytes()
    monkeypatch.setattr(Generator, "forward", _exhausted(after=2))
    with pytest.raises(DeviceMemoryError) as info:
        fit(shot, BASE, checkpoint=ckpt)  # resumes at 2, fails in step 4
    message = str(info.value)
    for words in ("GPU ran out of memory training the fill", "CUDA out of memory. Tried to allocate 2.00 GiB",
                  "--work-size 16 (it is 32)", "--tile-size 512", "--patch-size 64", f"checkpoint {ckpt} is kept"):
        assert words in message, message
    assert ckpt.read_bytes() == kept
    assert runtime.smaller(600) == 300 and runtime.smaller(250) == 124 and runtime.smaller(20) == 16


def test_out_of_memory_on_the_command_line_is_exit_1_with_the_fix(tiny_shot: TinyShot, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Generator, "forward", _exhausted(after=1))
    out = tmp_path / "out"
    r = run_cli("inpaint", "--plate", tiny_shot.plate, "--mask", tiny_shot.mask, "--out", str(out / "c.####.exr"),
                "--preset", "quick", "--no-carry", "--steps", "2", "--work-size", "32", "--device", "cpu")
    assert r.exit_code == 1, (r.output, r.exception)
    message = r.output.strip().splitlines()[-1]
    assert message.startswith("ivi-render: error: the GPU ran out of memory"), r.output
    assert "--work-size 16 (it is 32)" in message and "--tile-size" in message and "--patch-size" in message
    assert not list(out.glob("*.exr"))


def test_out_of_memory_while_rendering_is_exit_1_with_the_sizes(tiny_shot: TinyShot, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside training (the render, the finer scales) the command line names the sizes; no traceback."""
    out, folder = tmp_path / "out", tmp_path / "job"
    args = ("--plate", tiny_shot.plate, "--mask", tiny_shot.mask, "--out", str(out / "c.####.exr"), "--preset",
            "quick", "--no-carry", "--steps", "1", "--work-size", "32", "--device", "cpu",
            "--checkpoint-dir", str(folder))
    assert run_cli("train", *args).exit_code == 0
    monkeypatch.setattr(Generator, "forward", _exhausted(after=1))
    r = run_cli("render", "--checkpoint-dir", str(folder), "--device", "cpu")
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit), (r.output, r.exception)
    message = r.output.strip().splitlines()[-1]
    assert message.startswith("ivi-render: error: the GPU ran out of memory (CUDA out of memory."), message
    assert "--work-size" in message and "--tile-size 512" in message and "--patch-size 64" in message
    assert not list(out.glob("*.exr")) and (folder / "model.ckpt").is_file()
