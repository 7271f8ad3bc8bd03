"""The background cue of mask propagation: what the nearby frames show in the same place, once they
are aligned by the background's motion, is background.

The propagation network learns the object's appearance from the keys, and a background the keys
never showed (the camera pans onto a wall, a bush) it often calls object: on bmx-trees it called
12 times the rider's area object. Such a false object is still background, so it moves with the
background: aligned by the background's motion, a frame a few frames away shows the same picture
there. The object moves otherwise, and there the aligned frame shows something else. Background
subtraction with the camera's motion removed, in other words, judged only where the network says
object.

For each frame and each of OFFSETS, OpenCV's DIS flow to that frame (`carry.flow.DIS_PRESET`) is
completed over the network's matte from the background around it (`carry.flow.complete`: the
camera's homography and the residual, parallax included), and that frame is pulled back along it.
A pixel's mismatch is its least difference from those aligned frames (the mean absolute difference
of the network-domain colour over a BOX_PX box): a background pixel that an object hides in one
frame is shown by another, and a background the camera pans onto is in no frame before it, so the
least is the one to judge by. Where the mismatch is under PropagateConfig.background_match, the
network's object is taken to be background. The rest of the network's matte (the moving object) is
kept, and the network's matte within REGROW_SHARE of it, and what its outline encloses once closed
over gaps of up to twice GAP_SHARE. A plain object matches itself wherever it has not yet moved
off: its inside, and its edges along its motion, look still (the aperture problem), and only the
rest of its outline is seen to move; the closed outline gives it back its inside. One that moves
slowly against the background for its size is beyond this (its outline matches too), and so is one
that holds still against the background. The key mattes tell: the cut is lowered for the shot
(`calibrated`) until the cue keeps KEY_KEEP of what the artist drew on the keys, and switched off
when no cut does; the per-frame check flags the frames whose matte shrinks.

Everything here is at working resolution, unpadded.
"""
from __future__ import annotations

import logging

import cv2
import numpy as np
import torch

from ivi_vfx.carry.flow import DIS_PRESET, complete, gray, grow, warp

logger = logging.getLogger(__name__)

OFFSETS = (-8, -4, -2, 2, 4, 8)
"""The frames each frame is compared with, as offsets: near ones for an object that soon moves
off, far ones for one that moves slowly against the background (measured on bmx-trees' network:
these six keep the rider as well as -6, -3, 3, 6 and drop more of its false object)."""
BOX_PX = 5
"""The side of the box that the colour difference is averaged over: one pixel's difference is grain."""
GUARD_PX = 3
"""The network's matte is grown by this many pixels before the background's motion is completed over
it: DIS's patches straddle an object's edge, so the flow just outside it is partly the object's."""
REGROW_SHARE = 0.024
"""The network's matte within this share of the working frame's longest side of its moving part is
kept (6 working pixels at 256). On three bmx-trees networks, 0.016 kept mean recall 0.913 with IoU
0.563, 0.024 0.925 with 0.503, 0.032 0.930 with 0.449 (docs/results.md); for a removal, recall first."""
CALIBRATION = (1.0, 0.7, 0.5, 0.3)
"""The shares of PropagateConfig.background_match tried as the shot's cut, largest first (`calibrated`)."""
KEY_KEEP = 0.98
"""The share of the key mattes' pixels that the shot's cut must keep. On DAVIS blackswan (a dark
swan the camera follows over water) the key kept 0.84 at 0.1 and the cue cost 10 points of recall;
at 0.05 (kept 1.0), 0.4. bmx-trees' key keeps 0.98 at 0.1, pan_astronaut's 1.0."""
GAP_SHARE = 0.03
"""The moving part's outline is closed over gaps of up to twice this share of the working frame's
longest side before what it encloses is filled: an edge along the object's motion does not show
its motion either (8 working pixels at 256)."""


def mismatch(images: np.ndarray, luma: np.ndarray, t: int, candidates: np.ndarray) -> np.ndarray:
    """How far frame t differs from the frames near it, aligned by the background's motion.

    Args:
        images: (T, h, w, 3) float32 network-domain frames in [-1, 1].
        luma: (T, h, w) uint8 their luminance (`carry.flow.gray`), for the flow.
        t: the frame.
        candidates: (h, w) bool where the object may be on frame t (the network's matte): the flow
            there is not the background's, so it is completed from around.
    Returns:
        (h, w) float32: the least, over the OFFSETS that fall in the shot, of the mean absolute colour
        difference over a BOX_PX box; inf where no aligned frame covers the pixel.
    """
    count, h, w = luma.shape
    dis = cv2.DISOpticalFlow_create(DIS_PRESET)  # type: ignore[attr-defined]  # (OpenCV's stubs lack it)
    untrusted = grow(candidates, GUARD_PX)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    least = np.full((h, w), np.inf, np.float32)
    for offset in OFFSETS:
        other = t + offset
        if not 0 <= other < count:
            continue
        measured = np.asarray(dis.calc(luma[t], luma[other], None), np.float32)
        background, _ = complete(measured, untrusted)
        difference = np.abs(warp(images[other], background) - images[t]).mean(axis=-1)
        difference = cv2.blur(difference, (BOX_PX, BOX_PX))
        x, y = xs + background[..., 0], ys + background[..., 1]
        inside = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
        least = np.minimum(least, np.where(inside, difference, np.inf))
    return least


def enclosed(mask: np.ndarray, gap: int) -> np.ndarray:
    """(h, w) bool `mask`, closed over gaps of up to 2 * `gap` pixels, with what it then encloses filled."""
    kernel = np.ones((2 * gap + 1, 2 * gap + 1), np.uint8)
    closed = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_CLOSE, kernel, borderType=cv2.BORDER_REPLICATE) > 0
    outside = np.pad(~(mask | closed), 1, constant_values=True).astype(np.uint8)
    _, labels = cv2.connectedComponents(outside, connectivity=4)
    return mask | closed | (labels[1:-1, 1:-1] != labels[0, 0])


def calibrated(frames: np.ndarray, luma: np.ndarray, anchors: dict[int, np.ndarray], match: float,
               regrow: int, gap: int) -> float:
    """The cut for this shot: the largest of `match` times CALIBRATION under which the key mattes keep
    KEY_KEEP of their pixels (the object as the artist drew it is the one thing known to be object).

    Args:
        frames, luma: as `mismatch`.
        anchors: frame index -> (h, w) bool key matte.
    Returns:
        The cut; 0 (the cue off) when even the lowest takes too much of the keys away.
    """
    keys = [(matte, mismatch(frames, luma, t, matte)) for t, matte in anchors.items() if matte.any()]
    total = sum(int(matte.sum()) for matte, _ in keys)
    for share in CALIBRATION:
        cut = match * share
        kept = sum(int((matte & enclosed(grow(matte & (least >= cut), regrow), gap)).sum()) for matte, least in keys)
        if kept >= KEY_KEEP * total:
            return cut
    return 0.0


def moving_part(probability: torch.Tensor, threshold: float, images: torch.Tensor, work: tuple[int, int],
                match: float, anchors: dict[int, torch.Tensor]) -> torch.Tensor:
    """Every frame's network matte less what matches the nearby frames aligned by the background's motion.

    Args:
        probability: (T, ph, pw) float the network's object probability (padded working frames).
        threshold: the probability over which the network calls a pixel object.
        images: (T, 3, ph, pw) float32 network-domain frames.
        work: (h, w) the unpadded working size.
        match: the mismatch under which a pixel is background (PropagateConfig.background_match), at
            most: lowered for the shot by `calibrated`.
        anchors: frame index -> (ph, pw) bool key matte (`keys.key_anchors`).
    Returns:
        (T, ph, pw) bool: where the network calls object and the frame does not match its aligned
        neighbours, and the network's matte within REGROW_SHARE of that or enclosed by it; False over
        the padding. Everything the network calls object when the cut comes to 0.
    """
    h, w = work
    frames = images[:, :, :h, :w].permute(0, 2, 3, 1).numpy()
    luma = gray(frames)
    binary = (probability[:, :h, :w] > threshold).numpy()
    regrow = max(1, round(REGROW_SHARE * max(work)))
    gap = max(1, round(GAP_SHARE * max(work)))
    keys = {t: matte[:h, :w].numpy() for t, matte in anchors.items()}
    cut = calibrated(frames, luma, keys, match, regrow, gap) if keys else match
    logger.info("background cue: a colour difference under %.3g is background (--background-match %g%s)",
                cut, match, "" if cut == match else ", lowered so that the keys keep their object")
    out = np.zeros(probability.shape, bool)
    for t in range(len(binary)):
        if not binary[t].any():
            continue
        moving = binary[t] & (mismatch(frames, luma, t, binary[t]) >= cut)
        out[t, :h, :w] = binary[t] & enclosed(grow(moving, regrow), gap)
    return torch.from_numpy(out)
