"""Internal training: seeded and deterministic, checkpoints that carry their config, exact resume."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from conftest import TinyShot, learning_rates, make_tiny_shot
from ivi_vfx.config import PRESETS, TrainConfig, default_preset, preset_config
from ivi_vfx.io.sequence import find_sequence
from ivi_vfx.shot import Shot, load_shot
from ivi_vfx.train import WARMUP_STEPS, BatchSampler, fit, load_model

TINY = TrainConfig(preset="test", cnum=8, steps=6, batch_size=2, work_size=64, log_every=2, checkpoint_every=3)


def _shot(tiny: TinyShot, work_size: int = 64) -> Shot:
    return load_shot(find_sequence(tiny.plate), find_sequence(tiny.mask), work_size=work_size)


def _weights(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def test_same_seed_same_weights_other_seed_other_weights(tiny_shot: TinyShot) -> None:
    shot = _shot(tiny_shot)
    a, b = fit(shot, TINY).model, fit(shot, TINY).model
    c = fit(shot, TINY.replace(seed=1)).model
    assert all(torch.equal(x, y) for x, y in zip(_weights(a), _weights(b)))
    assert not all(torch.equal(x, y) for x, y in zip(_weights(a), _weights(c)))


def test_training_lowers_the_loss(tiny_shot: TinyShot) -> None:
    shot = _shot(tiny_shot)
    seen: list[float] = []
    fit(shot, TINY.replace(steps=40, cnum=8), on_step=lambda info: seen.append(info.losses["total"]) and None)
    assert sum(seen[-5:]) < sum(seen[:5])
    assert set(fit(shot, TINY.replace(steps=1)).losses) >= {"l1_coarse", "l1_refined", "total"}


def test_stop_then_resume_equals_one_run(tiny_shot: TinyShot, tmp_path: Path) -> None:
    shot = _shot(tiny_shot)
    straight = fit(shot, TINY)  # 2N = 6 steps in one go
    ckpt = tmp_path / "run.ckpt"
    first = fit(shot, TINY, checkpoint=ckpt, on_step=lambda info: info.step == 3)  # N steps, then a stop
    assert first.stopped and first.step == 3
    second = fit(shot, TINY, checkpoint=ckpt)  # N more, resumed
    assert second.step == 6 and not second.stopped
    assert all(torch.equal(x, y) for x, y in zip(_weights(straight.model), _weights(second.model)))


def test_a_spent_budget_ends_training_with_a_checkpoint_and_a_later_run_continues(tiny_shot: TinyShot,
                                                                                     tmp_path: Path) -> None:
    shot = _shot(tiny_shot)
    ckpt = tmp_path / "run.ckpt"
    fractions: list[float] = []
    # A budget of 6 microseconds is spent by the first step, whatever the machine.
    short = fit(shot, TINY.replace(budget=1e-7), checkpoint=ckpt, on_step=lambda info: fractions.append(info.fraction))
    assert short.out_of_budget and not short.stopped and short.step == 1
    assert fractions == [1.0] and torch.load(ckpt, weights_only=True)["step"] == 1
    rest = fit(shot, TINY, checkpoint=ckpt)  # no budget: resumes at step 1 and finishes
    assert rest.step == TINY.steps and not rest.out_of_budget
    assert all(torch.equal(x, y) for x, y in zip(_weights(fit(shot, TINY).model), _weights(rest.model)))
    roomy = fit(shot, TINY.replace(budget=60.0))
    assert roomy.step == TINY.steps and not roomy.out_of_budget


def test_checkpoint_loads_with_weights_only_and_carries_config_and_architecture(tiny_shot: TinyShot,
                                                                                 tmp_path: Path) -> None:
    shot = _shot(tiny_shot)
    ckpt = tmp_path / "run.ckpt"
    result = fit(shot, TINY, checkpoint=ckpt)
    data = torch.load(ckpt, weights_only=True)
    assert TrainConfig.from_dict(data["config"]) == TINY
    assert data["arch"] == {"name": "refine", "cnum": 8} and data["step"] == 6
    assert data["shot"]["fingerprint"] == shot.fingerprint()
    model, _ = load_model(ckpt)
    image, hole = shot.images[:1], shot.holes[:1]
    assert torch.equal(model(image, hole)[1], result.model(image, hole)[1])


def test_a_checkpoint_of_another_shot_is_not_resumed(tmp_path: Path) -> None:
    ckpt = tmp_path / "run.ckpt"
    fit(_shot(make_tiny_shot(tmp_path / "a", seed=1)), TINY, checkpoint=ckpt)
    other = fit(_shot(make_tiny_shot(tmp_path / "b", seed=2)), TINY.replace(steps=2), checkpoint=ckpt)
    assert other.step == 2  # started afresh instead of claiming the other shot's 6 steps


def test_batches_follow_the_reference_recipe(tiny_shot: TinyShot) -> None:
    shot = _shot(tiny_shot)
    sampler = BatchSampler(shot, TINY.replace(batch_size=3), torch.Generator().manual_seed(0))
    images, holes, weight = sampler.draw(step=1)
    # Consecutive frames, cycling: step 1 of batch 3 on 5 frames takes frames 3, 4, 0.
    assert torch.equal(images, shot.images[[3, 4, 0]])
    own = shot.holes[[3, 4, 0]]
    assert (holes >= own).all() and holes.sum() > own.sum()  # own matte plus a shifted one
    assert torch.equal(weight, 1 - own)  # loss everywhere but the own matte (no padding here)


def test_crops_hold_a_training_hole(tiny_shot: TinyShot) -> None:
    shot = _shot(tiny_shot)
    sampler = BatchSampler(shot, TINY.replace(crop=16, batch_size=4), torch.Generator().manual_seed(3))
    for step in range(5):
        images, holes, weight = sampler.draw(step)
        assert images.shape == (4, 3, 16, 16) and holes.shape == weight.shape == (4, 1, 16, 16)
        assert (holes * weight).flatten(1).sum(1).gt(0).all()  # every crop has a hole with known truth


def test_validations_are_spaced_by_pixels_trained(tiny_shot: TinyShot) -> None:
    shot = _shot(tiny_shot)
    height, width = shot.geometry.padded
    rng = torch.Generator().manual_seed(0)
    assert BatchSampler(shot, TINY.replace(validate_every=10), rng).validate_every == 10
    crops = BatchSampler(shot, TINY.replace(validate_every=10, crop=16), rng)
    assert crops.validate_every == round(10 * height * width / 256) > 10


def test_every_preset_trains_two_steps(tiny_shot: TinyShot) -> None:
    shot = _shot(tiny_shot)
    for name in PRESETS:
        for device in ("cpu", "cuda"):  # each variant's configuration, trained here on the CPU
            cfg = preset_config(name, device).rescheduled(2).replace(batch_size=2)
            assert cfg.preset == name and fit(shot, cfg).step == 2


def test_presets_are_named_for_intent_with_a_variant_per_device() -> None:
    cpu, gpu = preset_config("final", "cpu"), preset_config("final", "cuda:1")
    assert gpu.cnum == 48 and cpu.cnum < gpu.cnum  # the paper's network on a GPU
    assert 0 < cpu.budget <= 10 and 0 < gpu.budget <= 60  # a final render in minutes, under an hour on a GPU
    assert preset_config("quick", "cpu").budget < cpu.budget and preset_config("quick", "cuda").budget < gpu.budget
    assert preset_config("paper", "cpu") == preset_config("paper", "cuda") and preset_config("paper").budget == 0
    # The earlier names still read, as their successors.
    assert preset_config("cpu") == cpu and preset_config("preview", "cuda") == preset_config("quick", "cuda")
    assert default_preset("cpu") == default_preset("cuda") == "final"


def test_config_round_trip_and_errors() -> None:
    cfg = preset_config("cpu")
    assert TrainConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ValueError, match="unknown configuration keys: colour"):
        TrainConfig.from_dict({**cfg.to_dict(), "colour": 1})
    with pytest.raises(ValueError, match="multiple of 4"):
        cfg.replace(cnum=30)
    with pytest.raises(ValueError, match="budget must be 0"):
        cfg.replace(budget=-1.0)
    with pytest.raises(ValueError, match="unknown preset 'fast'.*paper"):
        preset_config("fast")


def test_the_cosine_schedule_warms_up_falls_to_its_floor_and_restarts_for_the_fine_tune_stage(
        tiny_shot: TinyShot) -> None:
    from ivi_vfx.train import LR_FLOOR, learning_rate

    cfg = TINY.replace(lr=1e-3, lr_schedule="cosine")
    assert learning_rate(TINY, 0, 0.7) == TINY.lr  # the reference's constant rate
    assert learning_rate(cfg, 0, 0.0) == pytest.approx(1e-3 / WARMUP_STEPS)
    assert learning_rate(cfg, WARMUP_STEPS, 0.0) == pytest.approx(1e-3)
    assert learning_rate(cfg, 500, 0.5) == pytest.approx(1e-3 * (1 + LR_FLOOR) / 2)
    assert learning_rate(cfg, 500, 1.0) == pytest.approx(1e-3 * LR_FLOOR)
    # With lr_decay, the rate holds until the stage's last share, then falls as far.
    late = cfg.replace(lr_decay=0.25)
    assert learning_rate(late, 500, 0.0) == learning_rate(late, 500, 0.75) == pytest.approx(1e-3)
    assert learning_rate(late, 500, 0.875) == pytest.approx(learning_rate(cfg, 500, 0.5))
    assert learning_rate(late, 500, 1.0) == pytest.approx(1e-3 * LR_FLOOR)
    # In a run: the optimiser's rate falls over the first stage and starts again in the fine-tune stage.
    shot = _shot(tiny_shot)
    staged = cfg.replace(steps=40, finetune_steps=20, stabilization_weight=0.0, validate_every=0)
    with learning_rates() as seen:
        fit(shot, staged)
    assert len(seen) == 40
    assert seen[WARMUP_STEPS] == pytest.approx(1e-3 * (LR_FLOOR + (1 - LR_FLOOR) * 0.5 * (1 + math.cos(math.pi * 0.5))))
    assert seen[19] < seen[12] < seen[WARMUP_STEPS] and seen[19] == pytest.approx(learning_rate(cfg, 19, 19 / 20))
    assert seen[20] == pytest.approx(1e-3 / WARMUP_STEPS) and seen[30] > seen[39]


def test_a_fall_due_before_lr_hold_steps_is_skipped_and_the_rate_holds(tiny_shot: TinyShot) -> None:
    """A run still far from its fill loses by falling early (a slow machine's budget): the rate holds instead."""
    shot = _shot(tiny_shot)
    cfg = TINY.replace(lr=1e-3, lr_schedule="cosine", lr_decay=0.5, steps=30, validate_every=0)

    def rates(config: TrainConfig) -> list[float]:
        with learning_rates() as seen:
            fit(shot, config)
        return seen

    falls, holds = rates(cfg.replace(lr_hold_steps=15)), rates(cfg.replace(lr_hold_steps=16))
    assert falls[:16] == holds[:16] and falls[14] == 1e-3 and falls[-1] < 0.1 * 1e-3  # due at step 15
    assert holds[WARMUP_STEPS:] == [1e-3] * (30 - WARMUP_STEPS)
