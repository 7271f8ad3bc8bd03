"""From roto'd keyframes to mattes for the whole shot: the paper's mask propagation (section 4.2).

A U-Net (nets/unet.py) learns the object on the shot itself. Each training sample is a keyframe
with its object cut out along the key matte and pasted back at a random cyclic shift (the
reference's `train_mask.py`); the target is the pasted copy's matte, and the object's original
place is left out of the loss, so the network learns what the object looks like, never where it
was. Beyond the reference:
- any number of keyframes (each sample draws one), so an object that turns or changes size can be
  roto'd on a few frames and all of them teach;
- the pasted copy is also scaled (0.85-1.2), rotated (+-8 degrees) and mirrored at random, so a
  single key generalises to an object that changes size and pose through the shot;
- a weighted binary cross-entropy (PropagateConfig.object_weight): for removal, a missed object
  pixel (a fringe left in the plate) costs more than an extra background pixel (a little more fill).

On the keyframes the output is the user's own roto, untouched.
"""
from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ivi_vfx import checkpoint as ckpt
from ivi_vfx import masks
from ivi_vfx.config import PropagateConfig
from ivi_vfx.errors import CheckpointError, ConfigError, ShapeError, StopRequested
from ivi_vfx.io.exr import output_spec, read_exr, write_exr
from ivi_vfx.io.sequence import FrameSequence, find_sequence, output_sequence
from ivi_vfx.jobs import output_stem
from ivi_vfx.nets.unet import HEAD, UNet, build_unet
from ivi_vfx.render import check_outputs
from ivi_vfx.shot import Frames, load_frames, matte_channel_of, read_matte
from ivi_vfx.train import resolve_device

logger = logging.getLogger(__name__)

JITTER_SCALE = (0.85, 1.2)
JITTER_ROTATE_DEG = 8.0
ROUNDS_FROM, ROUNDS_TO = 0.3, 0.85


@dataclass
class Keys:
    """A plate at working resolution and the object's roto on some of its frames.

    Attributes:
        frames: the plate (shot.load_frames).
        key_frames: the roto'd frame numbers.
        mattes: (K, 1, ph, pw) float32 {0, 1} key mattes at working resolution (0 over the padding).
        full: each key frame's (H, W) bool matte at full resolution, as the user drew it.
    """

    frames: Frames
    key_frames: tuple[int, ...]
    mattes: torch.Tensor
    full: dict[int, np.ndarray]

    @property
    def indices(self) -> list[int]:
        """The key frames' indices among the plate's frames, in the order of `mattes`."""
        return [self.frames.index(f) for f in self.key_frames]

    def fingerprint(self) -> str:
        """A short hash of what training sees: a checkpoint only resumes on its own plate and keys."""
        digest = hashlib.sha256(self.frames.images.numpy().tobytes())
        digest.update(self.mattes.numpy().tobytes())
        digest.update(repr(self.key_frames).encode())
        return digest.hexdigest()[:16]


def load_keys(frames: Frames, key_mattes: FrameSequence, matte_channel: str | None = None) -> Keys:
    """Read the key mattes (binarised > 0) and bring them to the plate's working resolution.

    Raises:
        ConfigError: a key frame is not a plate frame, or its matte is empty.
        ShapeError: a key matte's format differs from the plate's.
    """
    geometry = frames.geometry
    outside = [f for f in key_mattes.frames if f not in frames.plate.frames]
    if outside:
        raise ConfigError(f"key frame {outside[0]} is not among the plate's frames "
                          f"({frames.plate.frames[0]}-{frames.plate.frames[-1]}); choose --key-frames inside the range")
    full, small = {}, []
    for frame in key_mattes.frames:
        image = read_exr(key_mattes.path(frame))
        size = image.display_window[3], image.display_window[2]
        if size != geometry.full:
            raise ShapeError(f"{image.path} is {size[1]}x{size[0]} but the plate is {geometry.full[1]}x"
                             f"{geometry.full[0]}; give a key matte in the plate's format")
        matte = read_matte(image, matte_channel_of(image, matte_channel), 0)
        if not matte.any():
            raise ConfigError(f"{image.path}: the key matte is empty; roto the object on this frame or leave "
                              f"the frame out of --key-frames")
        full[frame] = matte
        work = masks.downsample(torch.from_numpy(matte).float()[None, None], geometry.work)
        small.append(geometry.pad(work)[0] * frames.valid[0])
    logger.info("keys: frames %s, object %.1f%% of the key pixels", ",".join(map(str, key_mattes.frames)),
                100 * float(torch.stack(small).mean()))
    return Keys(frames=frames, key_frames=tuple(key_mattes.frames), mattes=torch.stack(small), full=full)


class PasteSampler:
    """Training samples: a frame with a key's object pasted at a random cyclic shift (and jittered).

    Without `unknown`, the frame is the key frame the object comes from (the reference). Once
    `unknown` is set (`reach`, then `self_training_unknown` after each round), a share
    cfg.other_frames of the samples are drawn on any plate frame instead, and that frame's pixels
    outside its unknown region are taught as background.

    Attributes:
        unknown: None, or (T, 1, ph, pw) float32 {0, 1} per plate frame: 1 where the object may
            be (the key matte itself on a key frame), so left out of the background term.
        teaching: (F,) int64 the frame indices that other-frame samples are drawn from: the keys,
            and the frames with some background outside `unknown` (set_unknown).
    """

    def __init__(self, keys: Keys, cfg: PropagateConfig, rng: torch.Generator) -> None:
        self.keys, self.cfg, self.rng = keys, cfg, rng
        self.index = torch.tensor(keys.indices)
        self.unknown: torch.Tensor | None = None
        self.teaching = self.index

    def set_unknown(self, unknown: torch.Tensor) -> None:
        """Set `unknown`; only frames with some background outside it are drawn as other frames."""
        self.unknown = unknown
        background = ((1 - unknown) * self.keys.frames.valid).flatten(1).amax(1) > 0
        self.teaching = torch.unique(torch.cat([self.index, background.nonzero()[:, 0]]))

    def _uniform(self, n: int, low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, generator=self.rng)

    def draw(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One batch.

        Returns:
            inputs: (B, 3, ph, pw) network-domain frames with a pasted object copy.
            target: (B, 1, ph, pw) {0, 1} the pasted copy's matte.
            weight: (B, 1, ph, pw) per-pixel loss weight: object_weight on the target, 1 - object_weight
                elsewhere, 0 where the frame's own object may be and on the padding.
        """
        keys, batch = self.keys, self.cfg.batch_size
        height, width = keys.frames.geometry.padded
        pick = torch.randint(len(self.index), (batch,), generator=self.rng)
        source = keys.frames.images[self.index[pick]]
        own = keys.mattes[pick]
        frames = source
        if self.unknown is not None:
            # Some samples on other frames: the same pasted copy over a background the keys never showed.
            other = torch.rand(batch, generator=self.rng) < self.cfg.other_frames
            anywhere = self.teaching[torch.randint(len(self.teaching), (batch,), generator=self.rng)]
            base = torch.where(other, anywhere, self.index[pick])
            frames, own = keys.frames.images[base], self.unknown[base]
        dy = torch.randint(height, (batch,), generator=self.rng)
        dx = torch.randint(width, (batch,), generator=self.rng)
        rolled = torch.stack([torch.roll(source[b], (int(dy[b]), int(dx[b])), dims=(-2, -1)) for b in range(batch)])
        pasted = torch.stack([torch.roll(keys.mattes[pick[b]], (int(dy[b]), int(dx[b])), dims=(-2, -1))
                              for b in range(batch)])
        theta = self._jitter(batch, height, width)
        grid = F.affine_grid(theta, [batch, 1, height, width], align_corners=False)
        rolled = F.grid_sample(rolled, grid, mode="bilinear", padding_mode="border", align_corners=False)
        pasted = F.grid_sample(pasted, grid, mode="nearest", padding_mode="zeros", align_corners=False)
        inputs = frames * (1 - pasted) + rolled * pasted
        w = self.cfg.object_weight
        # The frame's own object (or where it may be) is no background: out of the loss, as the
        # reference does (its pasted-over part too: the reference's weighting, kept unmeasured).
        weight = (1 - own) * keys.frames.valid * torch.where(pasted > 0, w, 1 - w)
        return inputs, pasted, weight

    def _jitter(self, batch: int, height: int, width: int) -> torch.Tensor:
        """(B, 2, 3) random scale, rotation and mirror about the frame centre, in affine_grid coordinates."""
        scale = torch.exp(self._uniform(batch, *(math.log(s) for s in JITTER_SCALE)))
        angle = self._uniform(batch, -JITTER_ROTATE_DEG, JITTER_ROTATE_DEG) * math.pi / 180
        mirror = torch.where(torch.rand(batch, generator=self.rng) < 0.5, -1.0, 1.0)
        aspect = width / height  # rotate in pixels, not in the normalised square
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        theta = torch.zeros(batch, 2, 3)
        theta[:, 0, 0], theta[:, 0, 1] = cos * mirror, -sin / aspect
        theta[:, 1, 0], theta[:, 1, 1] = sin * aspect * mirror, cos
        return theta


def weighted_bce(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean over every element of weight * binary cross-entropy (from logits, for stability)."""
    return (F.binary_cross_entropy_with_logits(logits, target, reduction="none") * weight).mean()


def _pixels(share: float, geometry_work: tuple[int, int]) -> int:
    """A length given as a share of the working frame's longest side, in working pixels (at least 1 if > 0)."""
    return max(1, round(share * max(geometry_work))) if share > 0 else 0


def reconstruct(seed: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The connected parts (8-connectivity) of `mask` that touch `seed`: morphological reconstruction.

    Args:
        seed, mask: (h, w) bool.
    Returns:
        (h, w) bool, within mask.
    """
    grown = (seed & mask).float()[None, None]
    allowed = mask.float()[None, None]
    # Grow by one pixel at a time inside the mask until nothing changes: as many passes as the
    # longest path inside a kept part, a few hundred at most at working resolution.
    while True:
        step = F.max_pool2d(grown, 3, 1, 1) * allowed
        if torch.equal(step, grown):
            return grown[0, 0] > 0
        grown = step


def outward(anchors: dict[int, torch.Tensor], count: int) -> list[tuple[int, list[int]]]:
    """The walks of the temporal constraints: from each anchor frame, forward and backward, the
    frame indices up to the next anchor or the shot's end, as (anchor, [indices in walking order])."""
    walks = []
    for start in sorted(anchors):
        for direction in (1, -1):
            walk, t = [], start + direction
            while 0 <= t < count and t not in anchors:
                walk.append(t)
                t += direction
            walks.append((start, walk))
    return walks


def _anchored(base: torch.Tensor, anchors: dict[int, torch.Tensor]) -> torch.Tensor:
    """(T, h, w) bool: a copy of `base` with the anchors' mattes on their frames."""
    out = base.clone()
    for t, matte in anchors.items():
        out[t] = matte
    return out


def track(binary: torch.Tensor, anchors: dict[int, torch.Tensor], radius: int) -> torch.Tensor:
    """The temporal constraint: keep, frame by frame outward from each anchor, what stays near the object.

    From every anchor frame (a key), forward and backward to the next anchor, a frame keeps the
    connected parts of its prediction that come within `radius` pixels of the previous frame's
    kept matte (the object moves a little from frame to frame; a false positive far from it is
    dropped). A frame where nothing is near keeps its whole prediction (for a removal, better too
    much than nothing), and the next frame is still looked for near the last frame where the
    object was found, the radius growing with each frame since. Frames between two anchors get
    the union of both directions.

    Args:
        binary: (T, h, w) bool per-frame predictions.
        anchors: frame index -> (h, w) bool known matte (the key frames).
        radius: pixels; 0 returns `binary` with the anchors set.
    Returns:
        (T, h, w) bool.
    """
    if radius <= 0 or not anchors:
        return _anchored(binary, anchors)
    kept = _anchored(torch.zeros_like(binary), anchors)
    for start, walk in outward(anchors, len(binary)):
        last, gap = anchors[start], 0
        for t in walk:
            near = masks.dilate(last.float(), radius * (gap + 1)) > 0
            found = reconstruct(binary[t] & near, binary[t])
            if found.any():
                last, gap = found, 0
            else:
                found, gap = binary[t], gap + 1
            kept[t] |= found
    return kept


@torch.no_grad()
def predicted(model: UNet, frames: Frames, thresholds: tuple[float, ...], device: str | torch.device = "cpu",
              batch: int = 4) -> list[torch.Tensor]:
    """Per threshold, (T, ph, pw) bool: every plate frame's object probability over it, at working resolution.

    One pass of the network over the shot for all thresholds; bool rather than the probabilities,
    so that a long shot at the paper's size keeps little memory.
    """
    model.eval()
    valid = frames.valid[0, 0] > 0
    over: list[list[torch.Tensor]] = [[] for _ in thresholds]
    for t in range(0, len(frames.images), batch):
        probability = model.probability(frames.images[t:t + batch].to(device)).cpu()[:, 0]
        for binaries, threshold in zip(over, thresholds):
            binaries.append((probability > threshold) & valid)
    return [torch.cat(binaries) for binaries in over]


def key_anchors(keys: Keys) -> dict[int, torch.Tensor]:
    """Plate frame index -> (ph, pw) bool key matte: where the temporal constraints start."""
    return {t: keys.mattes[k, 0] > 0 for k, t in enumerate(keys.indices)}


def _tracked(binary: torch.Tensor, keys: Keys, cfg: PropagateConfig) -> torch.Tensor:
    """(T, ph, pw) bool predictions -> the same, tracked from the keys (see `track`)."""
    return track(binary, key_anchors(keys), _pixels(cfg.track, keys.frames.geometry.work))


def tracked_mattes(model: UNet, keys: Keys, cfg: PropagateConfig, threshold: float,
                   device: str | torch.device = "cpu") -> torch.Tensor:
    """(T, 1, ph, pw) bool working-resolution mattes of every plate frame, tracked from the keys (see `track`)."""
    return _tracked(predicted(model, keys.frames, (threshold,), device)[0], keys, cfg)[:, None]


def chessboard_distance(matte: torch.Tensor) -> torch.Tensor:
    """(h, w) bool -> (h, w) float32 chessboard distance to the matte in pixels (0 on it; inf when it is empty)."""
    inside = matte.float()[None, None]
    distance = torch.full(matte.shape, math.inf)
    distance[matte] = 0
    for d in range(1, max(matte.shape) + 1):
        grown = F.max_pool2d(inside, 3, 1, 1)
        if torch.equal(grown, inside):
            break
        distance[(grown > inside)[0, 0]] = d
        inside = grown
    return distance


def reach(keys: Keys, cfg: PropagateConfig) -> torch.Tensor:
    """Where the object can be on each frame, from the key mattes and cfg.max_speed alone.

    Returns:
        (T, 1, ph, pw) float32 {0, 1}: within margin + max_speed * (frames to the key) of every
        key's matte (each key bounds the object on its own, so the bound is the intersection: a key
        far in time bounds loosely, never wrongly); the key matte itself on a key frame; everywhere
        when cfg.max_speed is 0.
    """
    count, geometry = len(keys.frames.images), keys.frames.geometry
    out = torch.ones(count, 1, *geometry.padded)
    if cfg.max_speed > 0:
        margin, speed = _pixels(cfg.margin, geometry.work), cfg.max_speed * max(geometry.work)
        times = torch.arange(count, dtype=torch.float32)
        for k, at in enumerate(keys.indices):
            distance = chessboard_distance(keys.mattes[k, 0] > 0)
            radius = margin + speed * (times - at).abs()
            out = torch.minimum(out, (distance[None] <= radius[:, None, None]).float()[:, None])
    for k, at in enumerate(keys.indices):
        out[at] = keys.mattes[k]
    return out


def chained(found: torch.Tensor, anchors: dict[int, torch.Tensor], step: int) -> torch.Tensor:
    """Where the object can be on each frame, if it moves at most `step` pixels a frame: a bound chained from the keys.

    Frame by frame outward from each anchor, both ways, a frame's region is its found matte within
    `step` pixels of the previous frame's region; where nothing is found there (the object missed),
    that whole neighbourhood, which keeps growing by `step` a frame until the object is found again.
    Unlike `reach`, which grows from the key matte alone, this follows the object, so a frame far
    from any key stays bounded by what was found on the frames before it. Frames between two
    anchors get the union of both directions.

    Args:
        found: (T, h, w) bool per-frame mattes (the tracked predictions).
        anchors: frame index -> (h, w) bool known matte (the key frames).
        step: pixels a frame, at least 1.
    Returns:
        (T, h, w) bool.
    """
    out = _anchored(torch.zeros_like(found), anchors)
    for start, walk in outward(anchors, len(found)):
        region = anchors[start]
        for t in walk:
            near = masks.dilate(region.float(), step) > 0
            hit = found[t] & near
            region = hit if hit.any() else near
            out[t] |= region
    return out


def key_distance(keys: Keys) -> torch.Tensor:
    """(T,) int64: each plate frame's distance in frames to the nearest key frame."""
    times = torch.arange(len(keys.frames.images))
    return (times[:, None] - torch.tensor(keys.indices)[None]).abs().amin(1)


def round_fraction(k: int, rounds: int) -> float:
    """When self-training round k (1-based) of `rounds` runs, as a fraction of the run: evenly from
    ROUNDS_FROM to ROUNDS_TO (the network first learns the keys alone, and learns from the last round)."""
    return ROUNDS_FROM + (ROUNDS_TO - ROUNDS_FROM) * (k - 1) / max(rounds - 1, 1)


def bounded_region(found: torch.Tensor, keys: Keys, cfg: PropagateConfig) -> torch.Tensor:
    """Where the object may be on each frame: a generous superset of its matte.

    Args:
        found: (T, ph, pw) bool tracked mattes at half the threshold.
    Returns:
        (T, 1, ph, pw) float32 {0, 1}: `found`, bounded by the object's speed from frame to frame
        (`chained`, when cfg.max_speed is set: a false part that grows out of the object faster
        than the object moves is cut), then grown by cfg.margin.
    """
    if cfg.max_speed > 0:
        found = chained(found, key_anchors(keys), _pixels(cfg.max_speed, keys.frames.geometry.work))
    return masks.dilate(found.float()[:, None], _pixels(cfg.margin, keys.frames.geometry.work))


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


@dataclass
class PropagateResult:
    """A trained propagation network and how the run went."""

    model: UNet
    step: int
    stopped: bool
    seconds: float


def _payload(cfg: PropagateConfig, keys: Keys, model: UNet, optimizer: torch.optim.Optimizer,
             rng: torch.Generator, step: int, unknown: torch.Tensor | None, rounds_done: int) -> dict:
    return {
        "kind": "propagate",
        "config": cfg.to_dict(),
        "arch": {"name": "unet", "width": cfg.width, "head": HEAD},
        "shaper": keys.frames.shaper.to_dict(),
        "keys": {"plate": keys.frames.plate.pattern, "key_frames": list(keys.key_frames),
                 "fingerprint": keys.fingerprint()},
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
            rng: torch.Generator, sampler: PasteSampler) -> tuple[int, int]:
    """Load a compatible propagation checkpoint (sets sampler.unknown).

    Returns:
        (step, self-training rounds done), (0, 0) when none fits.
    """
    if not path.is_file():
        return 0, 0
    data = ckpt.load(path)
    # Settings that change neither the samples nor the network's training so far.
    schedule = {"steps", "budget", "log_every", "checkpoint_every", "threshold", "dilate", "track"}
    same = {k: v for k, v in data.get("config", {}).items() if k not in schedule} == {
        k: v for k, v in cfg.to_dict().items() if k not in schedule}
    same = same and data.get("arch", {}).get("head") == HEAD
    if data.get("kind") != "propagate" or data["keys"].get("fingerprint") != keys.fingerprint() or not same:
        logger.warning("%s was trained on other keys or settings; starting afresh", path)
        return 0, 0
    ckpt.restore(path, data, model, optimizer)
    rng.set_state(data["rng"])
    if data.get("unknown") is not None:
        sampler.set_unknown(_unpack(data["unknown"]))
    logger.info("resuming propagation from %s at step %d", path, data["step"])
    return int(data["step"]), int(data.get("rounds_done", 0))


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
    step, rounds_done = (_resume(Path(checkpoint), cfg, keys, model, optimizer, rng, sampler)
                         if checkpoint and resume else (0, 0))
    model.train()
    started, budget_s, running, stopped = time.perf_counter(), cfg.budget * 60.0, [], False
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
                ckpt.save(Path(checkpoint), _payload(cfg, keys, model, optimizer, rng, step, sampler.unknown, rounds_done))
            stopped = True
            break
    model.eval()
    return PropagateResult(model=model, step=step, stopped=stopped, seconds=time.perf_counter() - started)


@torch.no_grad()
def predict_matte(model: UNet, keys: Keys, frame: int, cfg: PropagateConfig,
                  device: str | torch.device = "cpu", keep: torch.Tensor | None = None) -> np.ndarray:
    """(H, W) bool full-resolution matte of one frame: the user's roto on a keyframe, else the prediction.

    The probability is scaled up bilinearly before the threshold (a smoother edge than scaling the
    binary matte), then dilated by cfg.dilate full-resolution pixels.

    Args:
        keep: None (the frame on its own), or the (ph, pw) bool working-resolution region that the
            temporal constraint kept (`tracked_mattes`); the probability is zeroed outside it (grown
            by a pixel, so that the scaled-up edge is the probability's own).
    """
    if frame in keys.full:
        matte = torch.from_numpy(keys.full[frame])
    else:
        t = keys.frames.index(frame)
        prob = model.probability(keys.frames.images[t:t + 1].to(device)).cpu()
        if keep is not None:
            prob = prob * masks.dilate(keep.float(), 1)
        matte = keys.frames.geometry.to_full(prob)[0, 0] > cfg.threshold
    return masks.dilate(matte.float(), cfg.dilate).numpy() > 0


def write_mattes(model: UNet, keys: Keys, out: FrameSequence, cfg: PropagateConfig, *,
                 device: str | torch.device = "cpu", overwrite: bool = False,
                 on_frame: Callable[[int, Path], None] | None = None) -> list[Path]:
    """Write one single-channel ('A') matte EXR per frame of `out`, over the plate's display window.

    The header is the plate's (metadata, pixel type, lossless compression), with the data window
    set to the display window.
    """
    # The temporal constraints need every frame's prediction first (they run outward from the keys);
    # one pass of the network gives the matte's threshold and the region's half of it.
    kept = None
    if cfg.track > 0 or cfg.max_speed > 0:
        matte, generous = predicted(model, keys.frames, (cfg.threshold, cfg.threshold / 2), device)
        if cfg.track > 0:
            kept = _tracked(matte, keys, cfg)
        if cfg.max_speed > 0:
            # The object moves no faster than max_speed: what lies beyond its region is dropped.
            region = bounded_region(_tracked(generous, keys, cfg), keys, cfg)[:, 0] > 0
            kept = region if kept is None else kept & region
    written = []
    for frame in out.frames:
        keep = None if kept is None else kept[keys.frames.index(frame)]
        matte = predict_matte(model, keys, frame, cfg, device, keep)
        spec = output_spec(read_exr(keys.frames.plate.path(frame)).spec, ("A",))
        spec.x, spec.y, spec.width, spec.height = spec.full_x, spec.full_y, spec.full_width, spec.full_height
        path = out.path(frame)
        write_exr(path, matte[..., None].astype(np.float32), spec, overwrite=overwrite)
        written.append(path)
        if on_frame is not None:
            on_frame(frame, path)
    return written


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



def default_propagation_checkpoint(out_pattern: str) -> Path:
    """Where a propagation run keeps its checkpoint: a hidden folder beside the output mattes."""
    return Path(out_pattern).parent / ".ivi" / f"{output_stem(out_pattern)}.propagate.ckpt"


def propagate(plate: str, key_mask: str, key_frames: list[int], out: str, cfg: PropagateConfig, *,
              frames: list[int] | None = None, mask_channel: str | None = None, device: str = "auto",
              checkpoint: Path | None = None, resume: bool = True, overwrite: bool = False,
              on_progress: Callable[[float], None] | None = None,
              should_stop: Callable[[], bool] | None = None) -> list[Path]:
    """Predict the object's matte on every frame from roto'd keyframes, and write them as EXRs.

    Args:
        plate: the plate pattern; key_mask: the key mattes' pattern (only `key_frames` are read).
        out: the output mattes' pattern (one channel, 'A').
        frames: the frames to process (default every plate frame on disk); the keys must be among them.
        Others as pipeline.inpaint.

    Returns:
        The written matte paths, in frame order.

    Raises:
        StopRequested: should_stop said so (a checkpoint was written; running again resumes).
    """
    cfg.validate()
    if not key_frames:
        raise ConfigError("no key frames given; pass --key-frames with the frames whose matte you drew, e.g. 1001")
    plate_seq = find_sequence(plate, frames)
    key_seq = find_sequence(key_mask, sorted(set(key_frames)))
    out_seq = output_sequence(out, plate_seq.frames)
    if {str(p) for p in out_seq.paths()} & {str(p) for p in plate_seq.paths() + key_seq.paths()}:
        raise ConfigError(f"--out {out} would write over the inputs; choose another output pattern")
    check_outputs(out_seq, overwrite)
    torch_device = resolve_device(device)
    keys = load_keys(load_frames(plate_seq, work_size=cfg.work_size), key_seq, mask_channel)
    checkpoint = checkpoint or default_propagation_checkpoint(out)
    report = on_progress or (lambda fraction: None)
    train_share = 0.9

    def on_step(step: int, fraction: float) -> bool:
        report(train_share * fraction)
        return bool(should_stop and should_stop())

    logger.info("propagating %s preset: %d steps%s, width %d, device %s", cfg.preset, cfg.steps,
                f" or {cfg.budget:g} min" if cfg.budget else "", cfg.width, torch_device)
    result = fit_propagation(keys, cfg, device=torch_device, checkpoint=checkpoint, resume=resume, on_step=on_step)
    if result.stopped:
        raise StopRequested(f"stopped at propagation step {result.step} of {cfg.steps}; checkpoint {checkpoint}; "
                            f"run the same command again to resume")
    done = [0]

    def on_frame(frame: int, path: Path) -> None:
        done[0] += 1
        report(train_share + (1 - train_share) * done[0] / len(out_seq))

    written = write_mattes(result.model, keys, out_seq, cfg, device=torch_device, overwrite=overwrite,
                           on_frame=on_frame)
    logger.info("wrote %d mattes to %s", len(written), out)
    return written
