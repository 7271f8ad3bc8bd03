"""The stopping rule: held-out known pixels never reach the loss, their error estimates quality, plateaus end a run."""
from __future__ import annotations

from pathlib import Path

import torch

from conftest import TinyShot, learning_rates, make_tiny_shot
from ivi_vfx.config import TrainConfig
from ivi_vfx.io.sequence import find_sequence
from ivi_vfx.shot import Shot, load_shot
from ivi_vfx.train import WARMUP_STEPS, BatchSampler, fit
from ivi_vfx.validation import FRAMES, StoppingRule, Validator, holdout_masks

TINY = TrainConfig(preset="test", cnum=8, steps=6, batch_size=2, work_size=64, log_every=2, checkpoint_every=100)


def _shot(tiny: TinyShot) -> Shot:
    return load_shot(find_sequence(tiny.plate), find_sequence(tiny.mask), work_size=64)


def test_held_out_holes_copy_the_matte_onto_known_picture_only(tmp_path: Path) -> None:
    shot = _shot(make_tiny_shot(tmp_path / "shot", count=9))
    held = holdout_masks(shot, seed=0)
    lenders = [t for t in range(9) if held[t].any()]
    assert 2 <= len(lenders) <= FRAMES and lenders[0] == 0 and lenders[-1] == 8  # spread over the shot
    for t in lenders:
        assert held[t].sum() == shot.holes[t].sum()  # the matte's own shape and size
        grown = torch.nn.functional.max_pool2d(shot.holes[t:t + 1], 5, 1, 2)[0]
        assert not (held[t] * grown).any() and not (held[t] * (1 - shot.valid[0])).any()
    assert torch.equal(held, holdout_masks(shot, seed=0)) and not torch.equal(held, holdout_masks(shot, seed=1))


def test_held_out_pixels_never_carry_loss_weight(tiny_shot: TinyShot) -> None:
    shot = _shot(tiny_shot)
    validator = Validator(shot, seed=0)
    for crop in (0, 16):
        cfg = TINY.replace(batch_size=5, crop=crop)
        sampler = BatchSampler(shot, cfg, torch.Generator().manual_seed(0))
        sampler.keep = validator.keep()
        index = torch.arange(5)
        for step in range(3):
            _, _, weight = sampler.draw(step)
            if not crop:  # whole frames: the held-out pixels of each frame have weight 0, the rest their usual
                assert not (weight * validator.holdout[index]).any()
                assert torch.equal(weight, (1 - shot.holes[index]) * shot.valid * (1 - validator.holdout[index]))
        assert weight.sum() > 0


def test_the_estimate_measures_the_fill_of_the_held_out_hole(tiny_shot: TinyShot) -> None:
    shot = _shot(tiny_shot)
    validator = Validator(shot, seed=0)

    class Oracle(torch.nn.Module):  # fills every hole with the truth
        def forward(self, images: torch.Tensor, holes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return images, images

    class Grey(torch.nn.Module):  # fills every pixel with mid-grey
        def forward(self, images: torch.Tensor, holes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return torch.zeros_like(images), torch.zeros_like(images)

    perfect, poor = validator.measure(Oracle(), torch.device("cpu")), validator.measure(Grey(), torch.device("cpu"))
    assert perfect[0] == 0 and perfect[1] >= 100
    assert poor[0] > 0.1 and 0 < poor[1] < 30


def test_the_rule_waits_for_patience_and_a_real_gain() -> None:
    rule = StoppingRule(patience=3)
    assert not rule.update(10, 1.0, 20.0) and not rule.update(20, 0.5, 23.0)
    assert not rule.update(30, 0.499, 23.0)  # under a 1% gain: one without
    assert not rule.update(40, 0.40, 24.0)  # a gain resets the count
    assert not rule.update(50, 0.40, 24.0) and not rule.update(60, 0.41, 24.0)
    assert rule.update(70, 0.40, 24.0) and rule.plateaus == 1 and rule.since_best == 0
    assert rule.estimate_db == 24.0 and len(rule.history) == 7
    again = StoppingRule.from_dict(rule.to_dict(), patience=3)
    assert again == rule
    assert not any(StoppingRule(patience=0).update(s, 1.0, 20.0) for s in range(10))  # 0: never stops


def test_a_plateau_ends_training_early_and_a_resume_keeps_the_history(tiny_shot: TinyShot, tmp_path: Path) -> None:
    shot = _shot(tiny_shot)
    ckpt = tmp_path / "run.ckpt"
    # A learning rate of ~0 cannot improve the validation error: the rule fires after `patience` validations.
    cfg = TINY.replace(steps=100, lr=1e-12, validate_every=2, patience=3)
    result = fit(shot, cfg, checkpoint=ckpt)
    assert result.converged and not result.stopped and result.step == 8  # validations at 2, 4, 6, 8
    assert result.estimate_db is not None and [h[0] for h in result.validation.history] == [2, 4, 6, 8]
    saved = torch.load(ckpt, weights_only=True)
    assert saved["step"] == 8 and len(saved["validation"]["history"]) == 4
    resumed = fit(shot, cfg, checkpoint=ckpt, on_step=lambda info: info.step >= 10)
    assert [h[0] for h in resumed.validation.history] == [2, 4, 6, 8, 10]
    # Without validation nothing is held out and nothing stops the run.
    plain = fit(shot, cfg.replace(validate_every=0, steps=10))
    assert plain.step == 10 and plain.validation is None and plain.estimate_db is None


def test_under_the_cosine_schedule_a_plateau_begins_the_fall_and_a_resume_inside_it_ends_alike(
        tiny_shot: TinyShot, tmp_path: Path) -> None:
    """A plateau while the rate still holds does not end training at once: the rate falls over as large a
    share of the steps so far as lr_decay plans (the run's last steps are where the fall pays), then it ends;
    a plateau while it falls changes nothing."""
    shot = _shot(tiny_shot)
    cfg = TINY.replace(steps=100, lr=1e-12, validate_every=4, patience=3, lr_schedule="cosine", lr_decay=0.5)
    with learning_rates() as rates:
        straight = fit(shot, cfg, checkpoint=tmp_path / "straight.ckpt")
    # The plateau at step 16 (validations 4, 8, 12, 16) begins a fall as long as the hold: steps 17 to 32,
    # through the later validations' plateau (28), which no longer ends the run.
    assert straight.converged and straight.step == 32 and straight.validation.plateaus == 2
    assert rates[WARMUP_STEPS] == rates[15] == cfg.lr  # held, after the warm-up, until the plateau
    assert len(rates) == 32 and all(a > b for a, b in zip(rates[16:], rates[17:])) and rates[-1] < 0.1 * cfg.lr
    # Without the schedule (the reference's constant rate) the same plateau ends training at once; in a
    # shorter run whose rate already falls at step 16, the plateau does not cut the fall short.
    assert fit(shot, cfg.replace(lr_schedule="constant")).step == 16
    assert fit(shot, cfg.replace(steps=24)).step == 24
    # A stop inside the fall resumes into it and ends at the same step with the same weights.
    ckpt = tmp_path / "run.ckpt"
    assert fit(shot, cfg, checkpoint=ckpt, on_step=lambda info: info.step == 24).step == 24
    assert torch.load(ckpt, weights_only=True)["validation"]["fall_ends"] == 32
    resumed = fit(shot, cfg, checkpoint=ckpt)
    assert resumed.converged and resumed.step == 32
    assert all(torch.equal(a, b) for a, b in zip(straight.model.state_dict().values(),
                                                  resumed.model.state_dict().values()))


def test_in_a_staged_run_the_first_plateau_begins_the_fine_tune_stage(tiny_shot: TinyShot) -> None:
    shot = _shot(tiny_shot)
    cfg = TINY.replace(steps=100, finetune_steps=10, lr=1e-12, validate_every=2, patience=2, stabilization_weight=0.0)
    seen: list[set[str]] = []
    result = fit(shot, cfg, on_step=lambda info: seen.append(set(info.losses)) and None)
    assert result.converged and result.validation.plateaus == 2
    first_ft = next(i for i, names in enumerate(seen) if "ambiguity" in names)
    # Validation at 2 sets the best; 4 and 6 bring no gain: the plateau; step 7 fine-tunes; 8 and 10 end it.
    assert first_ft == 6
    assert result.step == 10 and all("ambiguity" in names for names in seen[first_ft:])
