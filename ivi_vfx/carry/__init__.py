"""Known pixels first: carry into each frame's matte what other frames (or clean references) show.

Before the network trains, every pixel under a frame's matte is followed along the background's
flow (flow.py) to the nearest frames that show it (chains.py). What is found is carried in:

- at working resolution, into the shot the network trains on: carried pixels become known data
  (their matte is lifted where the chains are consistent), so the network learns to fill only
  what no frame shows, and its fill meets the carried pixels;
- at full resolution, when a frame is rendered (sampling.py): each carried pixel is sampled from
  its source frame's own file, so that 2K and 4K plates keep their grain and detail, scaled by
  the exposure between the two frames, and blended over the network's fill by its confidence;
  on a locked-off run of frames, a pixel that any frame of the run shows is their mean instead
  (still.py: measured once at full resolution, when the shot is traced).

The result is kept in the job folder (carry.npz, store.py), so that a farm chunk renders with it
without tracing again. Its confidence becomes the output's `confidence.Y` channel: 1 outside the
matte and where a pixel was carried along a consistent chain, lower where the chain was weaker,
0 where the network invented it.
"""
from __future__ import annotations

import dataclasses
import logging
import time

import numpy as np
import torch

from ivi_vfx.carry.chains import Hits, trace
from ivi_vfx.carry.flow import background_flows, grow, sample
from ivi_vfx.carry.sampling import CONFIDENCE, TRUST, CarrySampler
from ivi_vfx.carry.still import Still, still_backgrounds
from ivi_vfx.carry.store import Carry, load_carry, save_carry
from ivi_vfx.shot import Shot

__all__ = ["CONFIDENCE", "TRUST", "Carry", "CarrySampler", "carry_shot", "load_carry", "lift", "save_carry",
           "trace_shot"]

logger = logging.getLogger(__name__)

PER_SIDE = 2
"""Hits kept on each side of a frame: the value carried is the mean of up to four frames that show
the pixel, nearest first (one frame would keep its grain exactly; four halve the grain's error
against the truth, which on a locked-off shot is worth 2.5 dB)."""
SHOWS_GUARD = 1
"""A frame shows a pixel only this many working pixels clear of its matte, to a chain that has moved:
a chain is off by a fraction of a pixel, and a pixel at the matte's edge may be the object's. A
chain along locked-off links alone sits on its own pixel: there every pixel outside the matte
shows (the working matte holds every working pixel that any of the plate's matte pixels touch)."""


def trace_shot(images: np.ndarray, holes: np.ndarray, clean: np.ndarray | None = None) -> Carry:
    """Trace every matte pixel of a shot to the frames that show it.

    Args:
        images: (T, h, w, 3) float32 scene-linear frames at working resolution (unpadded), with a
            clean reference's picture in place of its frame's where there is one.
        holes: (T, h, w) bool mattes at working resolution (True = fill).
        clean: (T,) bool: the frames whose picture is a clean reference (shown everywhere); None: none.

    Returns:
        The carry at working resolution (its `frames` left empty for the caller to fill in).
    """
    started = time.perf_counter()
    count, h, w = holes.shape
    clean = np.zeros(count, bool) if clean is None else clean.astype(bool)
    mattes = holes
    holes = holes & ~clean[:, None, None]  # a clean reference shows its whole frame
    network = _log_domain(images)
    flows = background_flows(network, images, holes)
    shows = np.stack([~grow(holes[t], SHOWS_GUARD) for t in range(count)])
    still_shows = ~holes
    shows[clean] = still_shows[clean] = True
    hits, values = [], []
    for t in range(count):
        if clean[t]:  # its own clean reference shows the whole matte, where it is
            found = _itself(t, np.flatnonzero(mattes[t]), w, 2 * PER_SIDE)
        else:
            found = trace(flows, shows, still_shows, clean, t, np.flatnonzero(holes[t]), per_side=PER_SIDE,
                          max_steps=count)
        hits.append(found)
        values.append(_mean_value(images, flows.exposure, t, found))
    carry = Carry(frames=(), work=(h, w), exposure=flows.exposure, clean=tuple(np.flatnonzero(clean).tolist()),
                  static=flows.static, hits=hits, values=values)
    held = int(mattes.sum())
    carried = sum(int((carry.confidence(t) >= TRUST).sum()) for t in range(count))
    logger.info("carry: %d of %d matte pixels are shown by other frames (%.0f%%)%s, in %.1f s", carried, held,
                100.0 * carried / max(held, 1), ", locked off" if flows.static.all() and count > 1 else "",
                time.perf_counter() - started)
    return carry


def _itself(t: int, points: np.ndarray, width: int, columns: int) -> Hits:
    """Hits of frame t's points in frame t itself, at the same place, with full weight."""
    n = len(points)
    source = np.full((n, columns), -1, np.int32)
    pos = np.zeros((n, columns, 2), np.float32)
    weight = np.zeros((n, columns), np.float32)
    source[:, 0], weight[:, 0] = t, 1.0
    pos[:, 0, 0], pos[:, 0, 1] = points % width, points // width
    return Hits(points=points.astype(np.int64), source=source, pos=pos, weight=weight)


def _log_domain(linear: np.ndarray) -> np.ndarray:
    """Scene-linear -> [-1, 1] logarithmic values with the texture of a display transform, for the flow."""
    x = np.log1p(np.maximum(np.nan_to_num(linear, nan=0.0, posinf=0.0, neginf=0.0), 0) / 0.01)
    return (x / max(float(x.max()), 1e-6) * 2.0 - 1.0).astype(np.float32)


def _mean_value(images: np.ndarray, exposure: np.ndarray, t: int, found: Hits) -> np.ndarray:
    """(n, 3) scene-linear working-resolution value of frame t's traced pixels: the weighted mean
    of their hits, each brought to frame t's exposure; 0 where nothing shows a pixel."""
    weights = found.mean_weights()
    total = np.zeros((len(found.points), 3), np.float32)
    for k in range(found.source.shape[1]):
        for s in np.unique(found.source[:, k]):
            if s < 0:
                continue
            rows = np.nonzero((found.source[:, k] == s) & (weights[:, k] > 0))[0]
            gain = np.exp(exposure[t] - exposure[s])
            total[rows] += weights[rows, k, None] * sample(images[s], found.pos[rows, k]) * gain
    norm = weights.sum(axis=1, keepdims=True)
    return np.where(norm > 0, total / np.maximum(norm, 1e-12), 0.0).astype(np.float32)


def carry_shot(shot: Shot, clean: np.ndarray | None = None, clean_images: np.ndarray | None = None) -> Carry:
    """`trace_shot` over a loaded shot (its working-resolution frames and mattes).

    Args:
        clean: (T,) bool frames that have a clean reference; clean_images: (T, h, w, 3) float32
            scene-linear working-resolution pictures, used for those frames.
    """
    h, w = shot.geometry.work
    linear = shot.shaper.decode(shot.images[:, :, :h, :w]).permute(0, 2, 3, 1).numpy().copy()
    if clean is not None and clean_images is not None:
        linear[clean] = clean_images[clean]
    holes = shot.holes[:, 0, :h, :w].numpy() > 0.5
    carry = trace_shot(linear, holes, clean)
    stills: list[Still] = []
    if clean is None or not clean.any():  # a clean frame's pixels come from clean frames only: the chains'
        started = time.perf_counter()
        stills = still_backgrounds(carry.static, carry.exposure, shot.plate, lambda t: shot.full_matte(shot.frames[t]),
                                   holes, shot.geometry.full)
        if stills:
            logger.info("carry: the still background of %d locked-off runs (frames %s), in %.1f s", len(stills),
                        ", ".join(f"{shot.frames[s.first]}-{shot.frames[s.last]}" for s in stills),
                        time.perf_counter() - started)
    return dataclasses.replace(carry, frames=tuple(shot.frames), stills=stills)


def lift(shot: Shot, carry: Carry) -> Shot:
    """The shot the network trains on: carried values put in, and the matte lifted where they are trusted.

    Frames of `shot` that the carry does not hold (a chunk of another shot) are left as they are.
    """
    images, holes = shot.images.clone(), shot.holes.clone()
    h, w = carry.work
    for i, frame in enumerate(shot.frames):
        if frame not in carry.frames:
            continue
        t = carry.frames.index(frame)
        found, value = carry.hits[t], carry.values[t]
        trusted = carry.point_confidence(t) >= TRUST
        if not trusted.any():
            continue
        ys, xs = np.divmod(found.points[trusted], w)
        encoded = shot.shaper.encode(torch.from_numpy(value[trusted]))  # (n, 3)
        images[i][:, ys, xs] = encoded.T
        holes[i, 0, ys, xs] = 0.0
    # The training holes keep the object's shapes: a frame the network must fill in part still meets
    # holes of the object's size, not only the small remainders other frames left.
    return dataclasses.replace(shot, images=images.contiguous(), holes=holes.contiguous(), shapes=shot.hole_shapes)
