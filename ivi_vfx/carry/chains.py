"""Chains of flow from each pixel under a frame's matte to the nearest frames that show it.

A pixel hidden in frame t is followed along the background's flow, one frame at a time, forwards
and backwards, until it lands where a frame shows the background (outside that frame's matte): a
hit. Each link is checked against the flow the other way (forward-backward consistency): a chain
that does not come back to where it left loses weight, and one that leaves the frame or loses most
of its weight stops. The nearest hits on each side are kept, so that a pixel shown by the next
frame comes from the next frame, with its own grain; a clean reference frame, shown everywhere,
is preferred to any plate frame however far it is.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ivi_vfx.carry.flow import Flows, sample

CONSISTENCY_PX = 1.5
"""A link whose forward-backward error is this many working pixels keeps exp(-1) of its weight."""
DECAY = 0.998
"""Weight kept per link even when it is consistent: a long chain drifts more than a short one."""
MISMATCH = 0.06
"""A link over a pair whose background departs from itself along the flow by this much (flow.Flows.mismatch)
keeps exp(-1) of its weight: water or foliage carried over many frames is another picture."""
AGREE = 0.5
"""Hits weaker than this share of a pixel's best hit are left out of the value carried into it."""
MIN_WEIGHT = 0.2
"""A chain below this weight stops: what it would carry is not to be trusted."""


@dataclass
class Hits:
    """Where other frames show the traced pixels of one frame, nearest in time first.

    Attributes:
        points: (n,) int64 flat indices (y * w + x) of the traced working pixels.
        source: (n, K) int32 shot index of each hit's frame; -1 where a pixel has fewer hits.
        pos: (n, K, 2) float32 (x, y) position of each hit in its frame, working pixels.
        weight: (n, K) float32 consistency of each hit's chain, 0..1 (0 where there is no hit).
    """

    points: np.ndarray
    source: np.ndarray
    pos: np.ndarray
    weight: np.ndarray

    @property
    def best(self) -> np.ndarray:
        """(n,) float32: the weight of each pixel's most consistent hit (0: no frame shows it)."""
        return self.weight.max(axis=1) if self.weight.shape[1] else np.zeros(len(self.points), np.float32)

    def mean_weights(self) -> np.ndarray:
        """(n, K) float32: the weight of each hit in its pixel's carried value (its own, when it is near
        the pixel's best hit, else 0), so that a weak chain does not blur what a strong one carries."""
        best = self.best[:, None]
        return np.where(self.weight >= AGREE * best, self.weight, 0.0).astype(np.float32)


def _walk(flows: Flows, shows: np.ndarray, still_shows: np.ndarray, clean: np.ndarray, t: int, start: np.ndarray,
          step: int, per_side: int, max_steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Follow (n, 2) start points from frame t one way (`step` +1 or -1).

    A point whose every link so far is locked off has not moved: it is tested against `still_shows`.

    Returns (source, pos, weight, is_clean) of up to `per_side` hits a point, nearest first, and of
    the first clean frame reached beyond them.
    """
    count = shows.shape[0]
    h, w = shows.shape[1:]
    n = len(start)
    source = np.full((n, per_side + 1), -1, np.int32)  # the last column: a clean frame found further on
    pos = np.zeros((n, per_side + 1, 2), np.float32)
    weight = np.zeros((n, per_side + 1), np.float32)
    found = np.zeros(n, np.int64)
    clean_found = np.zeros(n, bool)
    wants_clean = bool(clean.any())
    p = start.astype(np.float32).copy()
    wgt = np.ones(n, np.float32)
    active = np.ones(n, bool)
    still = True  # every link so far locked off: the points sit on their own pixels
    for k in range(1, max_steps + 1):
        s = t + k * step
        if not 0 <= s < count or not active.any():
            break
        # forward[i] moves frame i to i+1, backward[i] moves frame i+1 to i
        if step > 0:
            there, back = flows.forward[s - 1], flows.backward[s - 1]
        else:
            there, back = flows.backward[s], flows.forward[s]
        idx = np.nonzero(active)[0]
        move = sample(there, p[idx])
        q = p[idx] + move
        error = np.linalg.norm(move + sample(back, q), axis=1)
        pair = min(s, s - step)
        still = still and bool(flows.static[pair])
        wgt[idx] *= np.exp(-(error / CONSISTENCY_PX) ** 2 - (flows.mismatch[pair] / MISMATCH) ** 2) * DECAY
        p[idx] = q
        inside = (q[:, 0] >= -0.5) & (q[:, 0] <= w - 0.5) & (q[:, 1] >= -0.5) & (q[:, 1] <= h - 0.5)
        alive = inside & (wgt[idx] >= MIN_WEIGHT)
        active[idx[~alive]] = False
        idx, q = idx[alive], q[alive]
        xi = np.clip(np.rint(q[:, 0]).astype(np.int64), 0, w - 1)
        yi = np.clip(np.rint(q[:, 1]).astype(np.int64), 0, h - 1)
        hit = (still_shows if still else shows)[s, yi, xi]
        if clean[s]:  # a clean frame: the first one reached is kept beside the nearest plate hits
            first = hit & ~clean_found[idx]
            source[idx[first], per_side] = s
            pos[idx[first], per_side] = q[first]
            weight[idx[first], per_side] = wgt[idx[first]]
            clean_found[idx[first]] = True
        record = hit & (found[idx] < per_side) & (not clean[s])
        rows, cols = idx[record], found[idx[record]]
        source[rows, cols] = s
        pos[rows, cols] = q[record]
        weight[rows, cols] = wgt[rows]
        found[rows] += 1
        # Done with its nearest plate hits, unless a clean frame may lie further on; done with a clean one.
        done = clean_found[idx] | ((found[idx] >= per_side) & (not wants_clean))
        active[idx[done]] = False
    return source, pos, weight, clean_found


def trace(flows: Flows, shows: np.ndarray, still_shows: np.ndarray, clean: np.ndarray, t: int, points: np.ndarray, *,
          per_side: int, max_steps: int) -> Hits:
    """The hits of frame t's `points`, both ways along the flows.

    Args:
        flows: the shot's background flows (flow.background_flows).
        shows: (T, h, w) bool: the pixels each frame shows (outside its matte, guarded); a clean
            reference frame shows every pixel.
        still_shows: (T, h, w) bool: the same for a chain that has not moved (its links all locked
            off), which lands exactly on its pixel: outside the matte, unguarded.
        clean: (T,) bool: frames whose picture is a clean reference (preferred to any plate frame).
        t: the frame traced from, a shot index.
        points: (n,) flat working-pixel indices to trace.
        per_side: most hits kept on each side (the nearest ones).
        max_steps: most links of a chain.
    """
    w = shows.shape[2]
    start = np.stack([points % w, points // w], 1).astype(np.float32)
    sides = [_walk(flows, shows, still_shows, clean, t, start, step, per_side, max_steps) for step in (1, -1)]
    source = np.concatenate([side[0] for side in sides], 1)
    pos = np.concatenate([side[1] for side in sides], 1)
    weight = np.concatenate([side[2] for side in sides], 1)
    any_clean = sides[0][3] | sides[1][3]
    # A pixel that a clean frame shows is carried from clean frames only; the others keep their
    # nearest plate hits. Then nearest first, so that the first column is the nearest hit.
    is_clean = (source >= 0) & clean[np.maximum(source, 0)]
    keep = (source >= 0) & np.where(any_clean[:, None], is_clean, True)
    distance = np.where(keep, np.abs(source - t), np.iinfo(np.int32).max)
    order = np.argsort(distance, axis=1, kind="stable")[:, : 2 * per_side]
    source = np.take_along_axis(np.where(keep, source, -1), order, 1)
    pos = np.take_along_axis(pos, order[..., None], 1)
    weight = np.take_along_axis(np.where(keep, weight, 0.0), order, 1).astype(np.float32)
    return Hits(points=points.astype(np.int64), source=source.astype(np.int32), pos=pos, weight=weight)
