"""The motion cue of mask propagation: where the object moves, beside what it looks like.

The propagation network knows the object's appearance only, so a thing of the object's colour (a
bush, red graffiti behind a red bike) is object to it. Motion tells them apart, as every tracker
knows. Walking outward from each key frame, frame by frame, with OpenCV's DIS optical flow
measured between neighbouring frames (the carry's preset, `carry.flow.DIS_PRESET`):

- **carried** (PropagateConfig.flow_follow): the previous frame's matte, carried along the measured
  flow (the object's own motion, not the background's), says where the object is now. An
  occluder that moves over the object comes from outside the matte, so it is not carried in.
- **departure** (PropagateConfig.departure): the object is where the measured motion departs from
  the background's. The background's motion over the candidate pixels (the network's matte and
  the carried one) is completed from around them (`carry.flow.complete`: the camera's homography
  plus the residual, parallax included, filled inwards), so a bush that moves with the ground
  does not depart, and a rider on it does.

The network's probability proposes, the cues dispose: a frame's matte is the carried matte where
the network does not rule it out, and the network's matte within a few pixels of it, or farther
out (up to `FAR_SHARE` of the frame) only where it departs from the background's motion; it may
grow by little a frame (`GROWTH` times the larger of the object's recent area and what it keeps:
an object's area changes slowly, the network's false object, new background, grows with each
frame; the recent area lets a matte that an occluder cut down grow back). Where the object is lost
(hidden), the search widens frame by frame around where it was last seen, for the departing parts
of the network's matte: an object that reappears is found again.

Everything here is at working resolution, unpadded, in working pixels.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from ivi_vfx.carry.flow import DIS_PRESET, complete, gray, grow
from ivi_vfx.config import PropagateConfig
from ivi_vfx.mattes.tracking import outward

logger = logging.getLogger(__name__)

NEAR_PX = 3
"""The matte may grow this many working pixels a frame beyond where it was carried, whatever its
motion: an object changes shape, and the flow at its edge is blurred by DIS's patches."""
FAR_SHARE = 0.045
"""Farther than NEAR_PX and up to this share of the working frame's longest side from the carried
matte, the network's matte is kept only where it departs from the background's motion."""
GUARD_PX = 3
"""The candidates are grown by this many pixels before the background's motion is completed over
them: DIS's patches straddle an object's edge, so the flow just outside it is partly the object's."""
KEEP_SHARE = 0.5
"""A carried matte pixel is kept while the network's probability stays over this share of the threshold."""
GROWTH = 1.15
"""A frame's matte may have up to this many times the object's recent area."""
AREA_RATE = 0.1
"""How fast the object's recent area follows the matte's (a running mean's rate per frame)."""
LOST_SHARE = 0.05
"""A frame whose matte keeps less than this share of the last found matte's area has lost the object."""


@dataclass
class Cues:
    """Which cues a walk uses, in working pixels.

    Attributes:
        flow_follow: carry the previous matte along the measured flow (else it stays where it was,
            and NEAR_PX must cover the object's motion: the behaviour of `tracking.track`).
        departure: pixels a frame by which the measured motion must depart from the background's
            for a part of the network's matte away from the carried matte to be kept; 0: no cue
            (the network's matte is kept within `far` of the carried one).
        near: pixels of growth kept whatever their motion.
        far: pixels out to which departing parts are kept.
    """

    flow_follow: bool
    departure: float
    near: int
    far: int


def uses_motion(cfg: PropagateConfig) -> bool:
    """Whether the mattes are followed with the motion cues (else by `tracking.track` alone)."""
    return cfg.flow_follow or cfg.departure > 0


def cues_of(cfg: PropagateConfig, work: tuple[int, int]) -> Cues:
    """The cues of a configuration at a working size (h, w): shares of the frame to working pixels."""
    longest = max(work)
    return Cues(flow_follow=cfg.flow_follow, departure=cfg.departure * longest, near=NEAR_PX,
                far=max(NEAR_PX, round(FAR_SHARE * longest)))


def flow_between(dis: cv2.DISOpticalFlow, here: np.ndarray, there: np.ndarray) -> np.ndarray:
    """(h, w, 2) float32 measured flow of `here`'s pixels to `there` (uint8 luminance frames, `gray`)."""
    return np.asarray(dis.calc(here, there, None), np.float32)  # type: ignore[call-overload]  # (stubs: no None)


def carried(matte: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Where a matte lands in this frame, carried by the object's own measured motion.

    The matte moves by the median of the measured flow over it, as one piece: along its edge and
    where something passes in front of it, the flow is the background's or the occluder's (DIS's
    patches straddle the edge), and a matte carried pixel by pixel frays there within a few frames
    (on bmx-trees it lost the rider behind the first thin tree). The object's change of shape is
    left to the network, within NEAR_PX.

    Args:
        matte: (h, w) bool the other frame's matte.
        flow: (h, w, 2) float32, for each pixel of this frame, its motion (dx, dy) to the other frame.
    Returns:
        (h, w) bool.
    """
    if not matte.any():
        return matte
    # The flow is this frame's pixels' motion back to the other frame: the matte's pixels in this
    # frame are where it lands, so its motion is measured on where it was, less the motion.
    ys, xs = np.nonzero(matte)
    dx, dy = np.median(flow[ys, xs], axis=0)
    shift = np.array([[1, 0, -dx], [0, 1, -dy]], np.float32)
    h, w = matte.shape
    moved = cv2.warpAffine(matte.astype(np.float32), shift, (w, h), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return moved > 0.5


def departure(flow: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """How far the measured motion departs from the background's, over the candidate pixels.

    Args:
        flow: (h, w, 2) float32 measured flow, working pixels.
        candidates: (h, w) bool: where the object may be (its motion is not the background's there).
    Returns:
        (h, w) float32 working pixels: |measured - completed background| (0 outside the grown candidates,
        where the measured flow is the background's by definition).
    """
    untrusted = grow(candidates, GUARD_PX)
    background, _ = complete(flow, untrusted)
    return np.linalg.norm(flow - background, axis=-1).astype(np.float32)


def step(matte: np.ndarray, flow: np.ndarray, probability: np.ndarray, threshold: float, cues: Cues,
         area: float) -> np.ndarray:
    """One frame of a walk: the previous frame's matte -> this frame's.

    The carried matte is kept where the network does not rule it out (its probability over
    threshold * KEEP_SHARE), and the network's matte (over the threshold) may add pixels within
    `near` of it, or within `far` where they depart from the background's motion. An object's area
    changes little from one frame to the next, while the network's false object (new background)
    grows with every frame: the matte may grow to GROWTH times the larger of `area` and what it keeps
    (so by GROWTH a frame at most, and back to the recent area after an occluder), the added pixels taken in
    order of their probability, those that depart from the background's motion first.

    Args:
        matte: (h, w) bool the previous frame's matte.
        flow: (h, w, 2) float32 this frame's pixels' measured motion to the previous frame.
        probability: (h, w) float32 the network's object probability on this frame.
        threshold: the probability over which the network calls a pixel object.
        cues: the cues in use.
        area: pixels, the object's recent area (its running mean along the walk).
    Returns:
        (h, w) bool this frame's matte.
    """
    binary = probability > threshold
    here = carried(matte, flow) if cues.flow_follow else matte
    kept = here & (probability > threshold * KEEP_SHARE)
    near = binary & grow(here, cues.near) & ~kept
    rank = probability.copy()
    if cues.far > cues.near:
        far = binary & grow(here, cues.far) & ~kept
        if cues.departure > 0:
            moving = departure(flow, binary | here) > cues.departure
            far &= moving
            rank = rank + moving  # departing pixels first
        near |= far
    room = int(GROWTH * max(area, float(kept.sum()))) - int(kept.sum())
    if room <= 0 or not near.any():
        return kept
    ys, xs = np.nonzero(near)
    order = np.argsort(-rank[ys, xs], kind="stable")[:room]
    kept[ys[order], xs[order]] = True
    return kept


def found_again(last: np.ndarray, gap: int, flow: np.ndarray, binary: np.ndarray, cues: Cues) -> np.ndarray:
    """A frame after the object was lost: the departing parts of the network's matte near where it was last.

    Args:
        last: (h, w) bool the last matte found.
        gap: frames since it was found (1 on the first frame without it).
    Returns:
        (h, w) bool (empty when nothing departs, or with no departure cue: within reach only).
    """
    reach = binary & grow(last, cues.far * (gap + 1))
    if cues.departure > 0:
        reach &= departure(flow, binary | last) > cues.departure
    return reach


def follow(probability: torch.Tensor, threshold: float, anchors: dict[int, torch.Tensor], images: torch.Tensor,
           work: tuple[int, int], cues: Cues) -> torch.Tensor:
    """The mattes of a shot, followed outward from the anchors with the motion cues.

    From every anchor frame (a key), forward and backward to the next anchor, each frame's matte is
    `step` of the previous frame's; a frame where it keeps less than LOST_SHARE of the last found
    matte's area has lost the object, and `found_again` looks for it around where it was last seen
    on the following frames. Frames between two anchors get the union of both directions.

    Args:
        probability: (T, ph, pw) float32 the network's object probability (padded working frames).
        threshold: the probability over which the network calls a pixel object.
        anchors: frame index -> (ph, pw) bool known matte (the key frames).
        images: (T, 3, ph, pw) float32 network-domain frames (their luminance drives the flow).
        work: (h, w) the unpadded working size.
        cues: the cues in use.
    Returns:
        (T, ph, pw) bool.
    """
    h, w = work
    luma = gray(images[:, :, :h, :w].permute(0, 2, 3, 1).numpy())
    chance = probability[:, :h, :w].float().numpy()
    out = np.zeros(probability.shape, bool)
    for t, anchor in anchors.items():
        out[t] = anchor.numpy()
    dis = cv2.DISOpticalFlow_create(DIS_PRESET)  # type: ignore[attr-defined]  # (OpenCV's stubs lack it)
    lost_frames = 0
    for start, walk in outward(anchors, len(probability)):
        last = anchors[start][:h, :w].numpy()
        matte, gap = last, 0
        area = float(last.sum())
        for t in walk:
            previous = t - 1 if t > start else t + 1
            flow = flow_between(dis, luma[t], luma[previous])
            if gap == 0:
                matte = step(matte, flow, chance[t], threshold, cues, area)
            else:
                matte = found_again(last, gap, flow, chance[t] > threshold, cues)
            if matte.sum() >= LOST_SHARE * last.sum() and matte.any():
                last, gap = matte, 0
                area = (1 - AREA_RATE) * area + AREA_RATE * float(matte.sum())
            else:
                gap += 1
                lost_frames += 1
            out[t, :h, :w] |= matte
    if lost_frames:
        logger.info("motion: the object was lost (looked for by its motion) on %d frames", lost_frames)
    return torch.from_numpy(out)
