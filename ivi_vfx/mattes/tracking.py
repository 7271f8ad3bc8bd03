"""The temporal constraints: following the object frame to frame from the keys (`track`), and
bounding where it may be (`reach` from the keys alone, `chained` along what was found)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ivi_vfx import masks
from ivi_vfx.config import PropagateConfig
from ivi_vfx.mattes.keys import Keys, key_anchors
from ivi_vfx.nets.unet import UNet
from ivi_vfx.shot import Frames


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


def tracked(binary: torch.Tensor, keys: Keys, cfg: PropagateConfig) -> torch.Tensor:
    """(T, ph, pw) bool predictions -> the same, tracked from the keys (see `track`)."""
    return track(binary, key_anchors(keys), _pixels(cfg.track, keys.frames.geometry.work))


def tracked_mattes(model: UNet, keys: Keys, cfg: PropagateConfig, threshold: float,
                   device: str | torch.device = "cpu") -> torch.Tensor:
    """(T, 1, ph, pw) bool working-resolution mattes of every plate frame, tracked from the keys (see `track`)."""
    return tracked(predicted(model, keys.frames, (threshold,), device)[0], keys, cfg)[:, None]


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
