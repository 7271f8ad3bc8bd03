"""Training the propagation U-Net on the shot: the paste samples, its self-training rounds, and its
checkpoint (saved, resumed, and loaded back for writing the mattes)."""
from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ivi_vfx import checkpoint as ckpt
from ivi_vfx.config import PropagateConfig
from ivi_vfx.errors import CheckpointError
from ivi_vfx.mattes.keys import Keys, key_distance
from ivi_vfx.mattes.sampling import PasteSampler, weighted_bce
from ivi_vfx.mattes.tracking import bounded_region, reach, tracked_mattes
from ivi_vfx.nets.unet import HEAD, UNet, build_unet

logger = logging.getLogger(__name__)

ROUNDS_FROM, ROUNDS_TO = 0.3, 0.85


def round_fraction(k: int, rounds: int) -> float:
    """When self-training round k (1-based) of `rounds` runs, as a fraction of the run: evenly from
    ROUNDS_FROM to ROUNDS_TO (the network first learns the keys alone, and learns from the last round)."""
    return ROUNDS_FROM + (ROUNDS_TO - ROUNDS_FROM) * (k - 1) / max(rounds - 1, 1)


def self_training_unknown(model: UNet, keys: Keys, cfg: PropagateConfig,
                          device: str | torch.device = "cpu", within: int | None = None) -> torch.Tensor:
    """Where the object may be on each frame, from the network's own tracked mattes (a self-training round).

    The network's `bounded_region` (generous, so that the object itself is most unlikely to be
    taught as background), kept within `reach`; a frame whose region is empty (the object not
    found) keeps its whole reach. Key frames get their key matte.

    Args:
        within: None, or only the frames within this many frames of a key are looked at; the
            others are left unknown (all 1), so they teach nothing yet.
    Returns:
        (T, 1, ph, pw) float32 {0, 1}.
    """
    found = bounded_region(tracked_mattes(model, keys, cfg, cfg.threshold / 2, device)[:, 0], keys, cfg)
    lost = found.flatten(1).amax(1) == 0
    found[lost] = 1
    unknown = reach(keys, cfg) * found
    if within is not None:
        unknown[key_distance(keys) > within] = 1
    for k, at in enumerate(keys.indices):
        unknown[at] = keys.mattes[k]
    logger.info("self-training: the object may be on %.1f%% of the pixels (%d frames where it was not found)",
                100 * float((unknown * keys.frames.valid).sum() / (keys.frames.valid.sum() * len(unknown))),
                int(lost.sum()))
    return unknown


def _pack(region: torch.Tensor) -> dict:
    """A {0, 1} tensor as 8 pixels a byte (a long shot's region stays a few MB in a checkpoint)."""
    bits = (region.flatten() > 0).to(torch.uint8)
    bits = F.pad(bits, (0, -len(bits) % 8)).reshape(-1, 8)
    return {"shape": list(region.shape), "bits": (bits << torch.arange(8, dtype=torch.uint8)).sum(1).to(torch.uint8)}


def _unpack(packed: dict) -> torch.Tensor:
    """Inverse of _pack, as float32 {0, 1}."""
    bits = (packed["bits"][:, None] >> torch.arange(8, dtype=torch.uint8)) & 1
    count = math.prod(packed["shape"])
    return bits.flatten()[:count].reshape(packed["shape"]).float()


REFINE_SHARE = 0.25
"""A correction run (the same plate and settings, keys added or changed) fine-tunes the previous
network for this share of cfg.steps (and of cfg.budget), instead of training afresh."""


@dataclass
class PropagateResult:
    """A trained propagation network and how the run went.

    Attributes:
        refined_from: None, or the key frames of the previous network that this run fine-tuned
            (a correction run: keys were added or changed on the same plate).
    """

    model: UNet
    step: int
    stopped: bool
    seconds: float
    refined_from: tuple[int, ...] | None = None


def plate_fingerprint(keys: Keys) -> str:
    """A short hash of the plate at working resolution alone (a correction run's keys differ, its plate not)."""
    return hashlib.sha256(keys.frames.images.numpy().tobytes()).hexdigest()[:16]


def _payload(cfg: PropagateConfig, keys: Keys, model: UNet, optimizer: torch.optim.Optimizer,
             rng: torch.Generator, step: int, unknown: torch.Tensor | None, rounds_done: int) -> dict:
    return {
        "kind": "propagate",
        "config": cfg.to_dict(),
        "arch": {"name": "unet", "width": cfg.width, "head": HEAD},
        "shaper": keys.frames.shaper.to_dict(),
        "keys": {"plate": keys.frames.plate.pattern, "key_frames": list(keys.key_frames),
                 "fingerprint": keys.fingerprint(), "plate_fingerprint": plate_fingerprint(keys)},
        "step": step,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "rng": rng.get_state(),
        # The last self-training round's region: a resumed run trains on the same samples as an
        # uninterrupted one, without the network of that round.
        "unknown": None if unknown is None else _pack(unknown),
        "rounds_done": rounds_done,
    }


def _resume(path: Path, cfg: PropagateConfig, keys: Keys, model: UNet, optimizer: torch.optim.Optimizer,
            rng: torch.Generator, sampler: PasteSampler) -> tuple[int, int, tuple[int, ...] | None]:
    """Load a compatible propagation checkpoint (sets sampler.unknown).

    A checkpoint of the same plate and settings but other keys (the artist added a roto where the
    propagation went wrong) gives its network only: the run fine-tunes it (REFINE_SHARE of the
    steps) on the new keys, with a fresh optimiser, rather than training afresh.

    Returns:
        (step, self-training rounds done, None), (0, 0, None) when none fits, or for a correction
        run (the step to go on from, the rounds before it, the previous key frames).
    """
    if not path.is_file():
        return 0, 0, None
    data = ckpt.load(path)
    # Settings that change neither the samples nor the network's training so far.
    schedule = {"steps", "budget", "log_every", "checkpoint_every", "threshold", "dilate", "track", "flow_follow",
                "departure", "background_match"}
    same = {k: v for k, v in data.get("config", {}).items() if k not in schedule} == {
        k: v for k, v in cfg.to_dict().items() if k not in schedule}
    same = same and data.get("arch", {}).get("head") == HEAD and data.get("kind") == "propagate"
    if same and data["keys"].get("fingerprint") != keys.fingerprint() \
            and data["keys"].get("plate_fingerprint") == plate_fingerprint(keys):
        model.load_state_dict(data["model"])
        step = max(0, cfg.steps - math.ceil(REFINE_SHARE * cfg.steps))
        rounds = sum(round_fraction(k, cfg.rounds) <= step / max(cfg.steps, 1) for k in range(1, cfg.rounds + 1))
        before = tuple(int(f) for f in data["keys"]["key_frames"])
        logger.info("correction run: the keys changed (%s -> %s) on the same plate; fine-tuning the network of %s "
                    "for %d steps", ",".join(map(str, before)), ",".join(map(str, keys.key_frames)), path,
                    cfg.steps - step)
        return step, rounds, before
    if data["keys"].get("fingerprint") != keys.fingerprint() or not same:
        logger.warning("%s was trained on other keys or settings; starting afresh", path)
        return 0, 0, None
    ckpt.restore(path, data, model, optimizer)
    rng.set_state(data["rng"])
    if data.get("unknown") is not None:
        sampler.set_unknown(_unpack(data["unknown"]))
    logger.info("resuming propagation from %s at step %d", path, data["step"])
    return int(data["step"]), int(data.get("rounds_done", 0)), None


def fit_propagation(keys: Keys, cfg: PropagateConfig, *, device: str | torch.device = "cpu",
                    checkpoint: Path | None = None, resume: bool = True,
                    on_step: Callable[[int, float], bool | None] | None = None) -> PropagateResult:
    """Train the propagation U-Net on the shot's keyframes.

    Args:
        keys: the plate and its key mattes (load_keys).
        cfg: the run's configuration.
        device: where to train.
        checkpoint: file for checkpoints (resumed from when `resume` and it fits).
        on_step: called after each step with (step, fraction done 0..1); True stops after a checkpoint.
    """
    device = torch.device(device)
    cfg.validate()
    torch.manual_seed(cfg.seed)
    model = build_unet(cfg.width).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    rng = torch.Generator().manual_seed(cfg.seed)
    sampler = PasteSampler(keys, cfg, rng)
    if cfg.max_speed > 0 and cfg.other_frames > 0:
        sampler.set_unknown(reach(keys, cfg))  # other frames teach their background from the start
    step, rounds_done, refined_from = (_resume(Path(checkpoint), cfg, keys, model, optimizer, rng, sampler)
                                       if checkpoint and resume else (0, 0, None))
    model.train()
    started, budget_s, running, stopped = time.perf_counter(), cfg.budget * 60.0, [], False
    if refined_from is not None:
        budget_s *= REFINE_SHARE
    fraction = step / cfg.steps if cfg.steps else 1.0
    farthest = int(key_distance(keys).max())  # how far the rounds' sweep must reach
    while step < cfg.steps:
        tic = time.perf_counter()
        # Rounds at round_fraction of the run, in steps or in the budget's time, whichever is further
        # (a budget that ends the run early still gets its rounds).
        if rounds_done < cfg.rounds and fraction >= round_fraction(rounds_done + 1, cfg.rounds):
            rounds_done += 1
            # The rounds sweep outward from the keys: each reaches a further share of the shot, so a
            # frame is first looked at by a network that learnt the background of frames near it.
            sampler.set_unknown(self_training_unknown(model, keys, cfg, device,
                                                      math.ceil(farthest * rounds_done / cfg.rounds)))
            model.train()
        inputs, target, weight = (t.to(device) for t in sampler.draw())
        loss = weighted_bce(model(inputs), target, weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        running.append(float(loss.detach()))
        now = time.perf_counter()
        out_of_budget = budget_s > 0 and step < cfg.steps and (now - started) + (now - tic) > budget_s
        if step % cfg.log_every == 0 or step == cfg.steps or out_of_budget:
            logger.info("propagation step %d/%d loss %.5f %.3f s/step", step, cfg.steps,
                        sum(running) / len(running), now - tic)
            running = []
        last = step == cfg.steps or out_of_budget
        if checkpoint and (step % cfg.checkpoint_every == 0 or last):
            ckpt.save(Path(checkpoint), _payload(cfg, keys, model, optimizer, rng, step, sampler.unknown, rounds_done))
        fraction = 1.0 if last else max(step / cfg.steps, (now - started) / budget_s if budget_s else 0.0)
        if out_of_budget:
            logger.info("the propagation budget of %g min is spent at step %d of %d", cfg.budget, step, cfg.steps)
            break
        if on_step is not None and on_step(step, min(fraction, 1.0)) and not last:
            if checkpoint:
                ckpt.save(Path(checkpoint),
                          _payload(cfg, keys, model, optimizer, rng, step, sampler.unknown, rounds_done))
            stopped = True
            break
    model.eval()
    return PropagateResult(model=model, step=step, stopped=stopped, seconds=time.perf_counter() - started,
                           refined_from=refined_from)


def load_propagation(path: Path, device: str | torch.device = "cpu") -> tuple[UNet, PropagateConfig]:
    """The trained U-Net of a propagation checkpoint (eval mode) and its configuration."""
    data = ckpt.load(path, map_location=device)
    if data.get("kind") != "propagate":
        raise CheckpointError(f"{path}: not a propagation checkpoint; give the one `ivi-render propagate` wrote")
    if data["arch"].get("head") != HEAD:
        raise CheckpointError(f"{path}: written by an earlier IVI-VFX, whose U-Net head this one no longer has; "
                              f"run the propagation again with --no-resume")
    model = build_unet(int(data["arch"]["width"])).to(device)
    model.load_state_dict(data["model"])
    return model.eval(), PropagateConfig.from_dict(data["config"])
