"""Internal training on one shot: fit(shot, cfg) -> FitResult, with checkpoints and exact resume.

The reference recipe (shared/research/paper_impl.md section 2):
- each step takes `batch_size` consecutive frames, cycling through the shot in order;
- each frame's hole is its own matte joined with the matte of a randomly drawn frame, rolled
  cyclically by one random (dy, dx) for the whole batch;
- L1 on both outputs everywhere except the own matte (losses.reconstruction);
- Adam, constant learning rate 2e-4.

With `cfg.crop` the step trains on crops instead of whole frames (our speed-up for CPUs): each
crop lies around the frame's own hole or anywhere in the frame, and the drawn matte is rolled
so that it lands inside the crop, so every step still teaches filling.

Every random draw comes from one seeded torch.Generator whose state is checkpointed, so
training 2N steps equals N steps, a stop, and N resumed steps.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ivi_vfx import checkpoint as ckpt
from ivi_vfx import losses, masks
from ivi_vfx.config import TrainConfig
from ivi_vfx.errors import CheckpointError
from ivi_vfx.nets import Generator, build_generator
from ivi_vfx.shot import Shot, shot_path_summary

logger = logging.getLogger(__name__)


@dataclass
class StepInfo:
    """What the trainer reports after each step."""

    step: int
    """Steps done so far (1-based after the first step)."""
    total: int
    """Steps the run will take."""
    losses: dict[str, float]
    """The step's loss terms."""
    seconds: float
    """Wall time of this step, in seconds."""
    fraction: float = 0.0
    """How far the run is, 0..1: the larger of the steps' share and the budget's share spent."""


@dataclass
class FitResult:
    """A trained generator and how the run went."""

    model: Generator
    step: int
    stopped: bool
    """True when on_step asked to stop before the last step (a checkpoint was written)."""
    out_of_budget: bool = False
    """True when cfg.budget ran out before cfg.steps (a checkpoint was written)."""
    losses: dict[str, float] = field(default_factory=dict)
    """Mean of each loss term over the last logging interval."""
    seconds: float = 0.0
    """Wall time spent training in this call."""


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda when available, else cpu; anything else as torch spells it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class BatchSampler:
    """Draws the training batches of the reference recipe (optionally as crops) from one generator."""

    def __init__(self, shot: Shot, cfg: TrainConfig, rng: torch.Generator) -> None:
        self.shot, self.cfg, self.rng = shot, cfg, rng
        self.count = len(shot.frames)
        height, width = shot.geometry.padded
        self.crop = (min(cfg.crop, height), min(cfg.crop, width)) if cfg.crop else None

    def _randint(self, high: int) -> int:
        return int(torch.randint(high, (1,), generator=self.rng))

    def draw(self, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The batch of one step.

        Returns:
            images: (B, 3, h, w) network-domain targets.
            holes: (B, 1, h, w) {0, 1} the input holes (own matte OR shifted other matte).
            weight: (B, 1, h, w) {0, 1} where the loss applies (known, inside the picture).
        """
        shot, batch = self.shot, self.cfg.batch_size
        # Consecutive frames, cycling in order (the reference never shuffles its frames).
        index = (torch.arange(batch) + step * batch) % self.count
        others = torch.randint(self.count, (batch,), generator=self.rng)
        images, own, other = shot.images[index], shot.holes[index], shot.holes[others]
        valid = shot.valid.expand(batch, -1, -1, -1)
        height, width = shot.geometry.padded
        if self.crop is None:
            shift = (self._randint(height), self._randint(width))
            holes = masks.shifted_holes(own, other, shift)
            return images, holes, (1.0 - own) * valid
        return self._crops(images, own, other, valid)

    def _crops(self, images: torch.Tensor, own: torch.Tensor, other: torch.Tensor,
               valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        ch, cw = self.crop  # type: ignore[misc]
        height, width = self.shot.geometry.padded
        out_images, out_holes, out_weight = [], [], []
        for b in range(images.shape[0]):
            # Half the crops sit on the frame's own hole, where the model must do well at render time.
            hole_pixels = own[b, 0].nonzero()
            if len(hole_pixels) and self._randint(2):
                cy, cx = hole_pixels[self._randint(len(hole_pixels))].tolist()
                y0 = cy - ch // 2 + self._randint(ch // 2 + 1) - ch // 4
                x0 = cx - cw // 2 + self._randint(cw // 2 + 1) - cw // 4
            else:
                y0, x0 = self._randint(height - ch + 1), self._randint(width - cw + 1)
            y0, x0 = min(max(y0, 0), height - ch), min(max(x0, 0), width - cw)
            # Roll the drawn matte so that a random one of its pixels lands inside the crop.
            other_pixels = other[b, 0].nonzero()
            if len(other_pixels):
                py, px = other_pixels[self._randint(len(other_pixels))].tolist()
                shift = (y0 + self._randint(ch) - py, x0 + self._randint(cw) - px)
            else:
                shift = (0, 0)
            holes = masks.shifted_holes(own[b:b + 1], other[b:b + 1], shift)
            window = (slice(None), slice(None), slice(y0, y0 + ch), slice(x0, x0 + cw))
            out_images.append(images[b:b + 1][window])
            out_holes.append(holes[window])
            out_weight.append(((1.0 - own[b:b + 1]) * valid[b:b + 1])[window])
        return torch.cat(out_images), torch.cat(out_holes), torch.cat(out_weight)


def _new_state(cfg: TrainConfig, device: torch.device) -> tuple[Generator, torch.optim.Adam, torch.Generator]:
    torch.manual_seed(cfg.seed)
    model = build_generator(cfg.cnum).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=cfg.adam_betas, eps=cfg.adam_eps)
    rng = torch.Generator().manual_seed(cfg.seed)
    return model, optimizer, rng


def _payload(cfg: TrainConfig, shot: Shot, model: Generator, optimizer: torch.optim.Optimizer,
             rng: torch.Generator, step: int) -> dict:
    return {
        "config": cfg.to_dict(),
        "arch": {"name": "refine", "cnum": cfg.cnum},
        "shaper": shot.shaper.to_dict(),
        "shot": {**shot_path_summary(shot), "fingerprint": shot.fingerprint()},
        "step": step,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "rng": rng.get_state(),
    }


def _resume(path: Path, cfg: TrainConfig, shot: Shot, model: Generator, optimizer: torch.optim.Optimizer,
            rng: torch.Generator, device: torch.device) -> int:
    """Load a compatible checkpoint into the fresh state; returns its step (0 when none fits)."""
    if not path.is_file():
        return 0
    data = ckpt.load(path, map_location=device)
    theirs = TrainConfig.from_dict(data["config"])
    if data["shot"].get("fingerprint") != shot.fingerprint():
        logger.warning("%s was trained on another shot; starting afresh", path)
        return 0
    # Only the schedule length may differ: anything else would make the resumed run another run.
    if theirs.replace(steps=cfg.steps, budget=cfg.budget, log_every=cfg.log_every,
                      checkpoint_every=cfg.checkpoint_every) != cfg:
        logger.warning("%s was trained with another configuration; starting afresh", path)
        return 0
    try:
        model.load_state_dict(data["model"])
        optimizer.load_state_dict(data["optimizer"])
    except (RuntimeError, KeyError, ValueError) as exc:
        raise CheckpointError(f"{path}: does not fit this network ({exc}); delete it and train again") from exc
    rng.set_state(data["rng"])
    logger.info("resuming from %s at step %d", path, data["step"])
    return int(data["step"])


def fit(shot: Shot, cfg: TrainConfig, *, device: str | torch.device = "cpu", checkpoint: Path | None = None,
        resume: bool = True, on_step: Callable[[StepInfo], bool | None] | None = None) -> FitResult:
    """Train the generator on one shot.

    Args:
        shot: the loaded shot (shot.load_shot).
        cfg: the run's configuration.
        device: where to train.
        checkpoint: file to write checkpoints to (and to resume from when `resume`).
        resume: continue from `checkpoint` when it holds this shot and configuration.
        on_step: called after every step; returning True stops the run after writing a checkpoint.

    Returns:
        FitResult with the trained generator (in eval mode) and the step reached.
    """
    device = torch.device(device)
    cfg.validate()
    model, optimizer, rng = _new_state(cfg, device)
    step = _resume(Path(checkpoint), cfg, shot, model, optimizer, rng, device) if checkpoint and resume else 0
    sampler = BatchSampler(shot, cfg, rng)
    model.train()
    started, window, stopped, out_of_budget = time.perf_counter(), [], False, False
    budget_s = cfg.budget * 60.0
    running: dict[str, float] = {}
    if not shot.holes.any():
        logger.info("every matte is empty: nothing to learn, frames will be copied through")
        step = cfg.steps
    while step < cfg.steps:
        tic = time.perf_counter()
        images, holes, weight = (t.to(device) for t in sampler.draw(step))
        coarse, refined = model(images, holes)
        terms = losses.reconstruction(images, coarse, refined, weight)
        total = torch.stack(list(terms.values())).sum()
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        step += 1
        values = {name: float(value.detach()) for name, value in terms.items()} | {"total": float(total.detach())}
        window.append(values)
        seconds = time.perf_counter() - tic
        elapsed = time.perf_counter() - started
        # Stop before a step that would overrun the budget, judging by the step just taken.
        out_of_budget = budget_s > 0 and step < cfg.steps and elapsed + seconds > budget_s
        fraction = 1.0 if out_of_budget else max(step / max(cfg.steps, 1), elapsed / budget_s if budget_s else 0.0)
        if step % cfg.log_every == 0 or step == cfg.steps or out_of_budget:
            running = {k: sum(v[k] for v in window) / len(window) for k in values}
            logger.info("step %d/%d loss %.4f (%s) %.3f s/step", step, cfg.steps, running["total"],
                        " ".join(f"{k} {v:.4f}" for k, v in running.items() if k != "total"), seconds)
            window = []
        if checkpoint and (step % cfg.checkpoint_every == 0 or step == cfg.steps or out_of_budget):
            ckpt.save(checkpoint, _payload(cfg, shot, model, optimizer, rng, step))
        if out_of_budget:
            logger.info("the budget of %g min is spent at step %d of %d", cfg.budget, step, cfg.steps)
        info = StepInfo(step, cfg.steps, values, seconds, min(fraction, 1.0))
        if on_step is not None and on_step(info) and step < cfg.steps and not out_of_budget:
            if checkpoint:
                ckpt.save(checkpoint, _payload(cfg, shot, model, optimizer, rng, step))
            stopped = True
            break
        if out_of_budget:
            break
    model.eval()
    return FitResult(model=model, step=step, stopped=stopped, out_of_budget=out_of_budget, losses=running,
                     seconds=time.perf_counter() - started)


def load_model(path: Path, device: str | torch.device = "cpu") -> tuple[Generator, dict]:
    """The trained generator of a checkpoint (eval mode) and the checkpoint's other contents."""
    data = ckpt.load(path, map_location=device)
    model = build_generator(int(data["arch"]["cnum"])).to(device)
    model.load_state_dict(data["model"])
    model.eval()
    return model, data
