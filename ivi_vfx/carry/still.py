"""Locked-off runs: a hidden pixel is the mean of every frame of its run that shows it.

Where neighbouring frames are locked off (their flow is exactly zero, `flow.background_flows`), a
pixel stays on itself from frame to frame, and every frame of the run that shows it (outside that
frame's own matte, at full resolution) is an equally good sample of it. The mean of all of them,
each brought to one exposure, is the still background: a grain-free estimate of it (on
static_chelsea it scored above the per-pixel temporal median, and it holds still from frame to
frame, as the background does). The chains keep up to four hits, so their mean keeps more of
the grain, and a chain's frame shows a working pixel only where no full-resolution pixel under it
is matte: a matte that moves by less than a working pixel a frame leaves its edge to the network.
The still background is measured on the plate's own pixels, so it has neither limit.

A background that changes while the camera holds still (foliage in wind, water, a figure passing
in the distance) has no one value: the mean of its frames is a blur that no frame shows. Such
pixels, whose frames differ from one another far more over the run than from one frame to the
next (SUCCESSIVE_SHARE), are left to the chains, which carry them from the nearest frames with the
weight of their mismatch.

It is computed once, when the shot is traced, over the box that holds the run's mattes, and kept
in the carry (carry.npz), so a farm chunk renders with it without reading the run's other frames.
Shots with clean reference frames are left to the chains: a pixel that a clean frame shows comes
from clean frames only.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ivi_vfx.io.exr import read_exr
from ivi_vfx.io.sequence import FrameSequence

SUCCESSIVE_SHARE = 1 / 4
"""A pixel whose frames change from one to the next by less than this share of what their spread over
the whole run implies (von Neumann's ratio of the mean squared successive difference to the variance:
2 for grain, which is independent from frame to frame, and near 0 for a picture that drifts) changes
with time: its still background is left to the chains. Grain alone falls this far (a ratio of 1/2)
on 0.4% of the pixels at 7 frames, 0.06% at 12 and none at 24 (simulated), while a change of 8
times the grain over the run falls this far on 83% of them at 8 frames and 90% at 12."""
MIN_PAIRS = 6
"""The ratio is judged only where at least this many pairs of successive frames both show a pixel."""
LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)
"""Rec. 709 luminance weights."""


@dataclass
class Still:
    """The still background of one locked-off run of frames, over the box of its mattes.

    Attributes:
        first, last: shot indices of the run's first and last frames (inclusive; at least two frames).
        box: (x0, y0, x1, y1) display-window pixels, end exclusive: where the run's mattes lie.
        mean: (y1 - y0, x1 - x0, 3) float32 scene-linear mean of the frames that show each pixel, at
            the exposure of the shot's first frame (0 where no frame shows it).
        count: (y1 - y0, x1 - x0) int32: how many frames of the run show each pixel; 0 also where
            they disagree beyond the grain (`dynamic`), which the chains fill instead.
    """

    first: int
    last: int
    box: tuple[int, int, int, int]
    mean: np.ndarray
    count: np.ndarray

    def holds(self, t: int) -> bool:
        """Whether shot index t is a frame of this run."""
        return self.first <= t <= self.last


def still_runs(static: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) shot indices of each run of two or more frames joined by locked-off pairs.

    Args:
        static: (T-1,) bool: pair (t, t+1) is locked off.
    """
    runs: list[tuple[int, int]] = []
    start = None
    for t, still in enumerate(list(static) + [False]):
        if still and start is None:
            start = t
        elif not still and start is not None:
            runs.append((start, t))
            start = None
    return runs


def still_backgrounds(static: np.ndarray, exposure: np.ndarray, plate: FrameSequence,
                      matte: Callable[[int], np.ndarray], holes: np.ndarray, full: tuple[int, int]) -> list[Still]:
    """The still background of each locked-off run of a shot, from its full-resolution frames.

    Reads each frame of a run's plate and matte once, so that no more than one frame is held at
    full resolution; the box is found from the working-resolution mattes.

    Args:
        static: (T-1,) bool locked-off pairs (the carry's).
        exposure: (T, 3) float32 log exposure of each frame against the first (the carry's).
        plate: the plate sequence, one frame per shot index.
        matte: shot index -> (H, W) bool full-resolution matte over the display window (True = hidden),
            as the shot reads it (grown by its dilate).
        holes: (T, h, w) bool the same mattes at working resolution (unpadded): a working pixel is
            hole when any full-resolution pixel under it is, so their box holds the full mattes'.
        full: (H, W) the plate's display window.
    """
    stills = []
    for first, last in still_runs(static):
        box = _box(np.asarray(holes[first:last + 1].any(axis=0)), full)
        if box is None:
            continue
        x0, y0, x1, y1 = box
        # float32 and the box only: a 4K run whose mattes span the frame holds 100 MB of mean, and the sum
        # of a few hundred frames keeps float32's precision well under a half-float plate's.
        total = np.zeros((y1 - y0, x1 - x0, 3), np.float32)
        count = np.zeros((y1 - y0, x1 - x0), np.int32)
        changes = _Changes((y1 - y0, x1 - x0))
        for t in range(first, last + 1):
            rgb = read_exr(plate.path(plate.frames[t])).display(("R", "G", "B"))[y0:y1, x0:x1]
            shows = ~matte(t)[y0:y1, x0:x1] & np.isfinite(rgb).all(axis=-1)
            matched = np.where(shows[..., None], rgb * np.exp(-exposure[t]).astype(np.float32), np.float32(0))
            total += matched
            count += shows
            changes.add(matched @ LUMA, shows)
        mean = np.where(count[..., None] > 0, total / np.maximum(count, 1)[..., None], np.float32(0))
        count[changes.drifting(mean @ LUMA, count)] = 0
        stills.append(Still(first=first, last=last, box=box, mean=mean, count=count))
    return stills


class _Changes:
    """A run's per-pixel luminance statistics, one frame at a time: its squares, and the squared
    change between successive frames that both show a pixel (float32 sums over the run's box)."""

    def __init__(self, size: tuple[int, int]):
        self.squares = np.zeros(size, np.float32)
        self.successive = np.zeros(size, np.float32)
        self.pairs = np.zeros(size, np.int32)
        self.last: np.ndarray | None = None  # the previous frame's luminance, NaN where it did not show

    def add(self, luma: np.ndarray, shows: np.ndarray) -> None:
        """Take one frame: (h, w) float32 luminance at the run's exposure, (h, w) bool where it shows."""
        self.squares += np.where(shows, luma * luma, np.float32(0))
        if self.last is not None:
            both = shows & np.isfinite(self.last)
            self.successive += np.where(both, (luma - np.nan_to_num(self.last)) ** 2, np.float32(0))
            self.pairs += both
        self.last = np.where(shows, luma, np.float32(np.nan))

    def drifting(self, mean: np.ndarray, count: np.ndarray) -> np.ndarray:
        """(h, w) bool: the pixels that change with time (SUCCESSIVE_SHARE), judged where MIN_PAIRS pairs show.

        Args:
            mean: (h, w) float32 mean luminance of the frames that show each pixel; count: (h, w) how many.
        """
        n = np.maximum(count, 2).astype(np.float32)
        variance = np.maximum(self.squares / n - mean * mean, 0) * n / (n - 1)
        successive = self.successive / np.maximum(self.pairs, 1)
        # A picture with no grain (a render) that holds still has neither: it is not drifting.
        return (self.pairs >= MIN_PAIRS) & (successive < SUCCESSIVE_SHARE * 2 * variance) & (variance > 1e-10)


def _box(hidden: np.ndarray, full: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """The display-window box (x0, y0, x1, y1), end exclusive, of the (H, W) = `full` pixels under a
    (h, w) bool working-resolution matte (each working pixel's cell as `masks.downsample` pools it),
    or None when it is empty."""
    if not hidden.any():
        return None
    (height, width), (h, w) = full, hidden.shape
    ys, xs = np.nonzero(hidden)
    return (int(xs.min()) * width // w, int(ys.min()) * height // h,
            -(-(int(xs.max()) + 1) * width // w), -(-(int(ys.max()) + 1) * height // h))
