"""Internal training on one shot: fit(shot, cfg) -> FitResult, with checkpoints and exact resume.

The reference recipe (shared/research/paper_impl.md section 2):
- each step takes `batch_size` consecutive frames, cycling through the shot in order;
- each frame's hole is its own matte joined with the matte of a randomly drawn frame, rolled
  cyclically by one random (dy, dx) for the whole batch;
- L1 on both outputs everywhere except the own matte (losses.reconstruction);
- Adam, constant learning rate 2e-4.
- With `cfg.finetune_steps`, the last steps form the reference recipe's fine-tune stage: the
  anti-ambiguity and stabilisation terms join the loss (losses.py). When a
  budget is set, the stage also begins once the budget's matching share is spent, so that a
  budgeted run still fine-tunes. Adam keeps its moments across the boundary unless
  cfg.finetune_restart (the reference's second run starts a fresh one; see config.py).

With `cfg.crop` the step trains on crops instead of whole frames (our speed-up for CPUs): each
crop lies around the frame's own hole or anywhere in the frame, and the drawn matte is rolled
so that it lands inside the crop, so every step still teaches filling.

Every random draw comes from one seeded torch.Generator whose state is checkpointed, so
training 2N steps equals N steps, a stop, and N resumed steps.
"""
from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ivi_vfx import checkpoint as ckpt
from ivi_vfx import losses, masks, perturb, runtime
from ivi_vfx.config import TrainConfig
from ivi_vfx.distributed import World
from ivi_vfx.nets import Generator, build_generator
from ivi_vfx.nets.encoder import build_encoder
from ivi_vfx.shot import Shot, check_learnable, shot_path_summary
from ivi_vfx.validation import StoppingRule, Validator

logger = logging.getLogger(__name__)

SCHEDULE_KEYS = {"steps", "finetune_steps", "budget", "log_every", "checkpoint_every", "patience"}
"""Config fields a resumed run may change at any time."""
FINETUNE_KEYS = {"finetune_restart", "ambiguity_weight", "stabilization_weight", "stabilize_affine",
                 "stabilize_brightness", "stabilize_blur", "stabilize_matte", "encoder", "context_positions"}
"""Config fields that act only in the fine-tune stage: free to change until it begins."""


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
    model: torch.nn.Module | None = None
    """The generator being trained (for callers that copy it at chosen moments; do not modify)."""
    estimate_db: float | None = None
    """The latest validation's hole PSNR in dB (the quality estimate so far); None before the first."""


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
    converged: bool = False
    """True when the stopping rule ended the run before cfg.steps (validation.py)."""
    validation: StoppingRule | None = None
    """The validation history (None when cfg.validate_every is 0 or no frame could lend a hole)."""

    @property
    def estimate_db(self) -> float | None:
        """Hole PSNR (dB) measured on held-out known pixels at the last validation: a quality estimate."""
        return self.validation.estimate_db if self.validation else None


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda when available, else cpu; anything else as torch spells it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class BatchSampler:
    """Draws the training batches of the reference recipe (optionally as crops) from one generator.

    With several ranks (distributed.World), step s of rank r takes the frames that a single process
    would take at its step s * size + r, so the ranks together walk the shot in the reference order.
    """

    def __init__(self, shot: Shot, cfg: TrainConfig, rng: torch.Generator, world: World = World()) -> None:
        self.shot, self.cfg, self.rng, self.world = shot, cfg, rng, world
        self.count = len(shot.frames)
        self.keep: torch.Tensor | None = None
        """(T, 1, H, W) where the loss may look, when pixels are held out for validation; else shot.valid."""
        height, width = shot.geometry.padded
        self.crop = (min(cfg.crop, height), min(cfg.crop, width)) if cfg.crop else None
        # Validations are spaced by pixels trained, not steps: a crop step trains a share of a
        # whole-frame step, and the stopping rule's patience must span as much training either way.
        share = self.crop[0] * self.crop[1] / (height * width) if self.crop else 1.0
        self.validate_every = max(1, round(cfg.validate_every / share))
        """Steps between two validations."""

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
        index = (torch.arange(batch) + (step * self.world.size + self.world.rank) * batch) % self.count
        others = torch.randint(self.count, (batch,), generator=self.rng)
        images, own, other = shot.images[index], shot.holes[index], shot.hole_shapes[others]
        valid = shot.valid.expand(batch, -1, -1, -1) if self.keep is None else self.keep[index]
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


def _new_optimizer(cfg: TrainConfig, model: Generator) -> torch.optim.Adam:
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=cfg.adam_betas, eps=cfg.adam_eps)


LR_FLOOR = 0.05
"""The cosine schedule ends each stage at this share of cfg.lr."""
WARMUP_STEPS = 10


def learning_rate(cfg: TrainConfig, stage_step: int, progress: float) -> float:
    """The learning rate of a step.

    Args:
        stage_step: steps taken so far in the current stage (the fine-tune stage starts again at 0).
        progress: how far the stage is, 0..1 (the larger of its steps' and its time budget's share).
    """
    if cfg.lr_schedule == "constant":
        return cfg.lr
    warm = min(1.0, (stage_step + 1) / WARMUP_STEPS)
    floor = cfg.lr * LR_FLOOR
    falling = (progress - (1.0 - cfg.lr_decay)) / cfg.lr_decay  # 0 where the fall begins, 1 at the stage's end
    return warm * (floor + (cfg.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * min(max(falling, 0.0), 1.0))))


def _new_state(cfg: TrainConfig, device: torch.device,
               world: World = World()) -> tuple[Generator, torch.optim.Adam, torch.Generator]:
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank
    model = runtime.prepare_model(build_generator(cfg.cnum), device, cfg)
    # Rank 0 draws as a single process does; the other ranks draw their own holes and shifts.
    rng = torch.Generator().manual_seed(cfg.seed + 7919 * world.rank)
    return model, _new_optimizer(cfg, model), rng


class Regularizers:
    """The fine-tune stage's two terms, weighted, for one training step (see losses.py)."""

    def __init__(self, cfg: TrainConfig, rng: torch.Generator, device: torch.device) -> None:
        self.cfg, self.rng = cfg, rng
        self.encoder = build_encoder(cfg.encoder).to(device) if cfg.ambiguity_weight > 0 else None

    def __call__(self, model: Generator, images: torch.Tensor, holes: torch.Tensor, weight: torch.Tensor,
                 coarse: torch.Tensor, refined: torch.Tensor) -> dict[str, torch.Tensor]:
        cfg, terms = self.cfg, {}
        if self.encoder is not None:
            amb = losses.anti_ambiguity(images, refined, weight, self.encoder, cfg.context_positions)
            terms["ambiguity"] = cfg.ambiguity_weight * amb
        if cfg.stabilization_weight > 0:
            g = perturb.draw(images.shape[0], (images.shape[-2], images.shape[-1]), self.rng,
                             affine=cfg.stabilize_affine, brightness=cfg.stabilize_brightness,
                             blur=cfg.stabilize_blur, matte=cfg.stabilize_matte)
            moved = g.image(images)
            with runtime.autocast(images.device, cfg):
                coarse_g, refined_g = model(runtime.prepare_input(moved, cfg), g.hole(holes))
            coarse_g, refined_g = coarse_g.float(), refined_g.float()
            unknown = 1.0 - weight  # the own matte and the padding
            keep = (1.0 - torch.maximum(unknown, g.mask(unknown))) * g.coverage(images)
            stab = losses.stabilization(moved - images, coarse, refined, coarse_g, refined_g, keep)
            terms |= {name: cfg.stabilization_weight * value for name, value in stab.items()}
        return terms


def _payload(cfg: TrainConfig, shot: Shot, model: Generator, optimizer: torch.optim.Optimizer,
             rng: torch.Generator, step: int, finetune_from: int, world: World = World(),
             rule: StoppingRule | None = None, plateau: bool = False, fall_ends: int = -1,
             scaler: torch.amp.GradScaler | None = None) -> dict:
    extra = {}
    if world.distributed:
        # Every rank's generator, so that a resume with as many ranks continues exactly; a collective,
        # so every rank builds the payload and only rank 0 writes it.
        extra = {"world_size": world.size, "rng_ranks": world.gather(rng.get_state())}
    return extra | {
        "config": cfg.to_dict(),
        "arch": {"name": "refine", "cnum": cfg.cnum},
        "shaper": shot.shaper.to_dict(),
        "shot": {**shot_path_summary(shot), "fingerprint": shot.fingerprint()},
        "step": step,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "rng": rng.get_state(),
        "finetune_from": finetune_from,
        # False when no matte pixel was left to learn: the weights are the initial ones, and only the
        # carry and the copied plate make the frames.
        "trained": bool(shot.holes.any()),
        # With the plateau that begins the fine-tune stage at the next step, so that a stop there resumes into
        # it, and the step where a fall of the rate that a plateau began ends the run.
        "validation": rule.to_dict() | {"plateau": plateau, "fall_ends": fall_ends} if rule else {},
        "scaler": scaler.state_dict() if scaler else {},  # fp16's loss scale (empty when disabled)
    }


def _resume(path: Path, cfg: TrainConfig, shot: Shot, model: Generator, optimizer: torch.optim.Optimizer,
            rng: torch.Generator, device: torch.device, world: World = World(),
            scaler: torch.amp.GradScaler | None = None) -> tuple[int, int, dict]:
    """Load a compatible checkpoint into the fresh state.

    Returns:
        (step, finetune_from, validation): the checkpoint's step, the step its fine-tune stage began
        at (-1 when it had not) and its validation history; (0, -1, {}) when no checkpoint fits.
    """
    if not path.is_file():
        return 0, -1, {}
    data = ckpt.load(path, map_location=device)
    theirs = TrainConfig.from_dict(data["config"])
    if data["shot"].get("fingerprint") != shot.fingerprint():
        logger.warning("%s was trained on another shot; starting afresh", path)
        return 0, -1, {}
    # Only the schedule's lengths may differ, and, before the fine-tune stage has begun, the settings that
    # act only in it (the reference recipe: train, then decide to fine-tune). Anything else would make the
    # resumed run another run.
    free = SCHEDULE_KEYS | runtime.RUNTIME_KEYS | (FINETUNE_KEYS if int(data.get("finetune_from", -1)) < 0 else set())
    if {k: v for k, v in theirs.to_dict().items() if k not in free} != {
            k: v for k, v in cfg.to_dict().items() if k not in free}:
        logger.warning("%s was trained with another configuration; starting afresh", path)
        return 0, -1, {}
    ckpt.restore(path, data, model, optimizer)
    if scaler is not None and data.get("scaler"):
        scaler.load_state_dict(data["scaler"])  # a no-op for a disabled scaler (fp32, bf16, a CPU)
    ranks = data.get("rng_ranks") or [data["rng"]]
    rng.set_state(ranks[world.rank] if len(ranks) == world.size else data["rng"])
    if len(ranks) != world.size and world.distributed:
        rng.manual_seed(cfg.seed + 7919 * world.rank + int(data["step"]))  # another rank count: fresh draws
    logger.info("resuming from %s at step %d", path, data["step"])
    return int(data["step"]), int(data.get("finetune_from", -1)), dict(data.get("validation") or {})


@runtime.names_memory_fix  # out of memory: DeviceMemoryError with the sizes that fit, the checkpoint kept
def fit(shot: Shot, cfg: TrainConfig, *, device: str | torch.device = "cpu", checkpoint: Path | None = None,
        resume: bool = True, on_step: Callable[[StepInfo], bool | None] | None = None,
        world: World | None = None) -> FitResult:
    """Train the generator on one shot.

    Args:
        shot: the loaded shot (shot.load_shot).
        cfg: the run's configuration.
        device: where to train.
        checkpoint: file to write checkpoints to (and to resume from when `resume`).
        resume: continue from `checkpoint` when it holds this shot and configuration.
        on_step: called after every step; returning True stops the run after writing a checkpoint.
        world: the processes training together (distributed.init_world); None: this process alone.
            All ranks must call fit alike; only rank 0 writes the checkpoint.

    Returns:
        FitResult with the trained generator (in eval mode) and the step reached.
    """
    device = torch.device(device)
    cfg.validate()
    check_learnable(shot)  # a matte over every pixel leaves nothing to learn: refused, not invented
    runtime.configure_threads(cfg.threads)
    world = world or World()
    model, optimizer, rng = _new_state(cfg, device, world)
    scaler = runtime.grad_scaler(device, cfg)  # loss scaling for fp16 on CUDA; a pass-through otherwise
    step, finetune_from, history = (_resume(Path(checkpoint), cfg, shot, model, optimizer, rng, device, world,
                                            scaler) if checkpoint and resume else (0, -1, {}))
    sampler = BatchSampler(shot, cfg, rng, world)
    validator = Validator(shot, cfg.seed) if cfg.validate_every else None
    rule: StoppingRule | None = None
    if validator is not None and validator.active:
        sampler.keep = validator.keep()
        rule = StoppingRule.from_dict(history, cfg.patience)
    elif validator is not None:
        logger.info("no frame has room for a validation hole: no quality estimate, no early stop")
    converged, plateau = False, bool(history.get("plateau"))
    # Under the cosine schedule, a plateau met while the rate still holds begins its fall at once (ending
    # training there would skip the fall, which the run's last steps need most); training ends at this step
    # (-1: no plateau has brought the fall forward).
    fall_ends = int(history.get("fall_ends", -1))
    progress = 0.0
    hold: bool | None = None  # whether the stage's scheduled fall is skipped (lr_hold_steps); None: not yet due

    def save() -> None:
        assert checkpoint is not None  # called only under `if checkpoint`
        payload = _payload(cfg, shot, model, optimizer, rng, step, finetune_from, world, rule, plateau, fall_ends,
                           scaler)
        if world.is_main:
            ckpt.save(checkpoint, payload)

    regularizers = Regularizers(cfg, rng, device) if cfg.regularized else None
    boundary = cfg.steps - cfg.finetune_steps
    model.train()
    started, window, stopped, out_of_budget = time.perf_counter(), [], False, False
    stage_started = started
    budget_s = cfg.budget * 60.0
    # With a budget, the fine-tune stage also begins when its share of the budget remains.
    budget_boundary_s = budget_s * (1.0 - cfg.finetune_steps / max(cfg.steps, 1))
    running: dict[str, float] = {}
    if not shot.holes.any():
        logger.info("every matte is empty: nothing to learn, frames will be copied through")
        step = cfg.steps
        if checkpoint:  # a render reads the job folder's model, even one that fills nothing
            save()
    while step < cfg.steps:
        tic = time.perf_counter()
        if regularizers is not None and finetune_from < 0 and world.agree(
                step >= boundary or plateau or (budget_s > 0 and tic - started >= budget_boundary_s)):
            finetune_from, stage_started, hold = step, tic, None
            if cfg.finetune_restart:
                optimizer = _new_optimizer(cfg, model)  # as the reference recipe (not our default)
            logger.info("step %d: fine-tune stage, with%s", step, " and".join(
                name for name, on in ((" anti-ambiguity", cfg.ambiguity_weight > 0),
                                      (" stabilisation", cfg.stabilization_weight > 0)) if on))
        images, holes, weight = (runtime.prepare_input(t.to(device), cfg) for t in sampler.draw(step))
        with runtime.autocast(device, cfg):
            coarse, refined = model(images, holes)
        coarse, refined = coarse.float(), refined.float()  # the losses in fp32
        terms = losses.reconstruction(images, coarse, refined, weight)
        if finetune_from >= 0 and regularizers is not None:
            terms |= regularizers(model, images, holes, weight, coarse, refined)
        total = torch.stack(list(terms.values())).sum()
        if cfg.lr_schedule != "constant":
            # Where this step lies in its stage, by steps and, under a budget, by time (seconds).
            if finetune_from >= 0:
                in_stage, span, stage_s = step - finetune_from, cfg.finetune_steps, (stage_started, started + budget_s)
            else:
                first_end = budget_boundary_s if regularizers is not None else budget_s
                in_stage, span, stage_s = step, boundary if regularizers is not None else cfg.steps, (started,
                                                                                                    started + first_end)
            progress = in_stage / max(span, 1)
            if budget_s > 0:
                progress = max(progress, (tic - stage_s[0]) / max(stage_s[1] - stage_s[0], 1e-9))
            if hold is None and fall_ends < 0 and world.agree(progress >= 1.0 - cfg.lr_decay):
                # The fall is due. It would begin at this step, or sooner by the step count alone (a resume
                # decides as the uninterrupted run did); too few steps then, and the rate holds to the end.
                began = min(in_stage, math.ceil((1.0 - cfg.lr_decay) * span))
                hold = began < cfg.lr_hold_steps
                if hold:
                    logger.info("step %d: the learning rate holds to the end: its fall would begin after %d steps "
                                "of the stage, under lr_hold_steps (%d)", step, began, cfg.lr_hold_steps)
            if hold and fall_ends < 0:
                progress = min(progress, 1.0 - cfg.lr_decay)
            if fall_ends >= 0:  # a plateau brought the stage's end forward to fall_ends
                progress = max(progress, in_stage / max(fall_ends - (step - in_stage), 1))
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(cfg, in_stage, progress)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(total).backward()
        world.average_gradients(model)
        scaler.step(optimizer)
        scaler.update()
        step += 1
        values = {name: float(value.detach()) for name, value in terms.items()} | {"total": float(total.detach())}
        window.append(values)
        seconds = time.perf_counter() - tic
        elapsed = time.perf_counter() - started
        # Stop before a step that would overrun the budget, judging by the step just taken.
        out_of_budget = world.agree(budget_s > 0 and step < cfg.steps and elapsed + seconds > budget_s)
        fraction = 1.0 if out_of_budget else max(step / max(cfg.steps, 1), elapsed / budget_s if budget_s else 0.0,
                                                 step / fall_ends if fall_ends > 0 else 0.0)
        if step % cfg.log_every == 0 or step == cfg.steps or out_of_budget:
            # Means over the interval; a term that joined mid-interval (the fine-tune stage) over its steps.
            running = {k: sum(seen := [v[k] for v in window if k in v]) / len(seen) for k in values}
            logger.info("step %d/%d loss %.4f (%s) %.3f s/step", step, cfg.steps, running["total"],
                        " ".join(f"{k} {v:.4f}" for k, v in running.items() if k != "total"), seconds)
            window = []
        if rule is not None and (step % sampler.validate_every == 0 or step == cfg.steps or out_of_budget):
            assert validator is not None  # a rule exists only with a validator
            error, psnr = validator.measure(model, device)
            levelled = world.agree(rule.update(step, error, psnr)) and step < cfg.steps and not out_of_budget
            logger.info("step %d: validation hole error %.4f, PSNR %.2f dB", step, error, psnr)
            if levelled and cfg.regularized and finetune_from < 0:
                logger.info("step %d: the validation error has levelled off; the fine-tune stage begins", step)
                plateau = True
            elif levelled and cfg.lr_schedule != "constant":
                # A plateau brings the rate's fall forward, and never cuts a fall short: its last steps are
                # what it is for. The fall takes as large a share of the stage as planned (lr_decay).
                if fall_ends < 0 and world.agree(progress < 1.0 - cfg.lr_decay or bool(hold)):
                    in_stage = step - max(finetune_from, 0)
                    fall_ends = step + math.ceil(in_stage * cfg.lr_decay / (1.0 - cfg.lr_decay))
                    logger.info("step %d: the validation error has levelled off; the learning rate falls until "
                                "step %d, then training ends", step, fall_ends)
            elif levelled:
                logger.info("step %d: the validation error has levelled off; training ends", step)
                converged = True
        if 0 <= fall_ends <= step < cfg.steps and not converged:
            logger.info("step %d: the learning rate has fallen; training ends", step)
            converged = True
        if checkpoint and (step % cfg.checkpoint_every == 0 or step == cfg.steps or out_of_budget or converged):
            save()
        if out_of_budget:
            logger.info("the budget of %g min is spent at step %d of %d", cfg.budget, step, cfg.steps)
        info = StepInfo(step, cfg.steps, values, seconds, min(fraction, 1.0), model,
                        rule.estimate_db if rule else None)
        if world.agree(on_step is not None and bool(on_step(info))) and step < cfg.steps and not out_of_budget:
            if checkpoint:
                save()
            stopped = True
            break
        if out_of_budget or converged:
            break
    # Rendering runs the model as load_model builds it (NCHW, fp32), so that a one-shot render and
    # a farm render of the same checkpoint give the same bits.
    model = runtime.to_memory_format(model, torch.contiguous_format).eval()
    return FitResult(model=model, step=step, stopped=stopped, out_of_budget=out_of_budget, losses=running,
                     seconds=time.perf_counter() - started, converged=converged, validation=rule)


def load_model(path: Path, device: str | torch.device = "cpu") -> tuple[Generator, dict]:
    """The trained generator of a checkpoint (eval mode) and the checkpoint's other contents."""
    data = ckpt.load(path, map_location=device)
    if "matte_channel" in data["shot"]:  # checkpoints before IVI-VFX named the option's field so
        data["shot"]["mask_channel"] = data["shot"].pop("matte_channel")
    model = build_generator(int(data["arch"]["cnum"])).to(device)
    model.load_state_dict(data["model"])
    model.eval()
    # What rendered a frame, for its header (provenance.py): the checkpoint's digest, job folder and step.
    model.source = {"checkpoint": str(path), "job": str(Path(path).parent), "step": int(data["step"]),
                    "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest()}
    return model, data
