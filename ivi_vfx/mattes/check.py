"""The per-frame check of a propagation: how sure it is of each frame's matte, and which frames jump.

Two measures a frame, at working resolution:
- **margin**: the mean distance of the network's probability from the threshold along the matte's
  edge (both sides of it), as a share of the most it can be: 1 where the edge is a clean cut from
  0 to 1, near 0 where the edge is a grey blob cut by the threshold (the network unsure).
- **area ratio**: the matte's area against the median of its neighbours' (AREA_SPAN frames either
  side): an object's area changes slowly, so a frame whose matte is far larger or smaller than its
  neighbours' has most likely lost the object or taken in something else.

A frame is flagged when its ratio is beyond AREA_JUMP either way, its margin under LOW_MARGIN, or
its matte is empty. The run lists the flagged frames in its log and writes every frame's row to
`propagation.json` in the job folder (`write_checks`), so the artist knows where to look, and a
correction run (a key added) compares its frames with the previous run's there.
"""
from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ivi_vfx import masks
from ivi_vfx.io.atomic import atomic_path

logger = logging.getLogger(__name__)

CHECK_FILE = "propagation.json"
"""Name of the per-frame check inside a propagation's job folder."""
AREA_SPAN = 2
"""Neighbours on each side a frame's area is compared with."""
AREA_JUMP = 1.5
"""A frame whose matte is over this many times (or under 1 / this) its neighbours' median area is flagged."""
LOW_MARGIN = 0.2
"""A frame whose edge margin is under this is flagged (the network unsure where the object ends)."""


@dataclass
class FrameCheck:
    """One frame's check.

    Attributes:
        frame: the frame number.
        key: a key frame (the user's roto; never flagged).
        area: the matte's share of the working frame's pixels.
        area_ratio: area against the median of the neighbours' (1 when they are all empty).
        margin: 0..1 mean |probability - threshold| along the matte's edge, over the most it can be.
        flagged: the frame needs a look.
        why: what flagged it ("" when not).
        kept: the matte on disk is the previous run's (a correction run left it, as it was no worse).
    """

    frame: int
    key: bool
    area: float
    area_ratio: float
    margin: float
    flagged: bool
    why: str
    kept: bool = False


def edge_margin(probability: torch.Tensor, matte: torch.Tensor, threshold: float) -> float:
    """0..1 mean |probability - threshold| over the pixels either side of the matte's edge, over the
    most it can be (max(threshold, 1 - threshold)); 1 for an empty matte or one without an edge.

    Args:
        probability: (h, w) float the network's probability.
        matte: (h, w) bool the matte.
    """
    grown = masks.dilate(matte.float(), 1) > 0
    shrunk = ~(masks.dilate((~matte).float(), 1) > 0)
    edge = grown & ~shrunk
    if not edge.any():
        return 1.0
    return float((probability[edge].float() - threshold).abs().mean()) / max(threshold, 1 - threshold)


def frame_checks(probability: torch.Tensor, mattes: torch.Tensor, frames: list[int], keys: set[int],
                 valid: torch.Tensor, threshold: float) -> list[FrameCheck]:
    """Every frame's check.

    Args:
        probability: (T, ph, pw) the network's probability.
        mattes: (T, ph, pw) bool the mattes at working resolution.
        frames: the T frame numbers.
        keys: the key frame numbers.
        valid: (ph, pw) bool the picture (not the padding).
        threshold: the threshold of the mattes.
    """
    pixels = float(valid.sum())
    areas = np.array([float((m & valid).sum()) / pixels for m in mattes])
    out = []
    for t, frame in enumerate(frames):
        around = np.concatenate([areas[max(0, t - AREA_SPAN):t], areas[t + 1:t + 1 + AREA_SPAN]])
        around = around[around > 0]
        reference = float(np.median(around)) if len(around) else 0.0
        ratio = areas[t] / reference if reference > 0 else 1.0
        margin = edge_margin(probability[t], mattes[t] & valid, threshold)
        key = frame in keys
        why = []
        if not key:
            if areas[t] == 0:
                why.append("empty matte")
            elif ratio > AREA_JUMP or ratio < 1 / AREA_JUMP:
                why.append(f"area {ratio:.2f}x its neighbours'")
            if margin < LOW_MARGIN:
                why.append(f"edge margin {margin:.2f}")
        out.append(FrameCheck(frame=frame, key=key, area=round(float(areas[t]), 6), area_ratio=round(float(ratio), 4),
                              margin=round(margin, 4), flagged=bool(why), why="; ".join(why)))
    return out


def write_checks(path: Path, checks: list[FrameCheck]) -> None:
    """The checks as JSON (atomic): {"flagged": [frame...], "frames": [row...]}."""
    data = {"flagged": [c.frame for c in checks if c.flagged], "frames": [dataclasses.asdict(c) for c in checks]}
    with atomic_path(path) as temporary:
        Path(temporary).write_text(json.dumps(data, indent=1) + "\n")


def read_checks(path: Path) -> dict[int, FrameCheck]:
    """frame -> its check, from a previous run's file; empty when there is none or it does not read."""
    try:
        rows = json.loads(path.read_text())["frames"]
        return {int(row["frame"]): FrameCheck(**row) for row in rows}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def log_flagged(checks: list[FrameCheck]) -> None:
    """One log line naming the frames to look at (or saying there are none)."""
    flagged = [c for c in checks if c.flagged]
    if not flagged:
        logger.info("propagation check: no frame jumps (every matte's area within %gx of its neighbours', "
                    "edge margins over %g)", AREA_JUMP, LOW_MARGIN)
        return
    logger.warning("propagation check: look at %d frame(s): %s", len(flagged),
                   ", ".join(f"{c.frame} ({c.why})" for c in flagged))
