"""The background's motion between neighbouring frames, at working resolution.

OpenCV's DIS optical flow (no learned weights) between each pair of neighbouring frames, in both
directions. Inside a frame's matte the measured flow is the object's, not the background's, and
where a pixel lands in the next frame's matte it is hidden there; both are replaced by the
background's motion completed from around them: a homography fitted to the flow that can be
trusted (the camera), plus the residual (parallax, local motion) filled inwards from the matte's
edge. A pair whose background does not move (a locked-off shot) gets a flow of exactly zero, so
that carried pixels land on whole pixels and are copied, not resampled.

A shot whose background moves as one plane (a pan or a zoom on a distant or flat background) is
better served by the camera alone than by the measured flow: DIS's vectors wander by about 0.2
pixel on grain and fine texture, and a chain of twenty links drifts by a pixel, which blurs what it
carries. Each pair's camera is therefore registered directly on the pictures (OpenCV's ECC, from
the flow's homography), and when the camera warps the background around the mattes as well as
the flow does (`RIGID_RATIO`), every pair's flow is the camera's: exact both ways, with no drift
but the registration's.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ivi_vfx.interpolate import smooth_fill

# DIS's 'medium' preset: a few milliseconds a pair at working resolution on a CPU, and accurate
# enough that chains over tens of frames stay within a pixel on a pan.
DIS_PRESET = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM
DIS_FINEST_SCALE = 0
"""The finest pyramid level DIS refines to: 0, the working resolution itself (the preset's is 1, half
of it). On the shared harness's parallax shots the carry alone scored 0.6-0.7 dB higher with it."""
STATIC_PX = 0.08
"""A pair whose fitted camera motion moves no corner of the frame by more than this (working
pixels), and whose residual is as small, is locked off: its flow is set to exactly zero."""
GUARD_PX = 2
"""The matte is grown by this many working pixels before its flow is replaced: DIS's patches
straddle the object's edge, so the flow just outside it is the object's too."""
RING_PX = 10
"""The background's mismatch along the flow is measured this many working pixels around the matte."""
SAMPLE_STEP = 3
"""Every this-many working pixels, a trusted flow vector is a sample for the camera's homography."""
LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)
"""Rec. 709 luminance weights."""
RIGID_RATIO = 1.1
"""A shot is rigid when, over its pairs (the median), the camera's warp leaves at most this times
the error that the measured flow leaves around the mattes. Measured on the shared harness's shots
(2026-12-02): the procedural pans 0.95-0.99 and the locked-off shots 0.5-0.9, real DAVIS shots
with parallax 1.37 (bmx-trees) and 1.89 (blackswan)."""
MODEL_GAIN = 0.95
"""A richer motion (affine over translation, homography over affine) is kept when it leaves at most
this share of the simpler one's misalignment (1 - ECC's correlation)."""
ECC_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 1e-6)
"""The camera's registration stops after 100 iterations or when its correlation gains less than this."""


@dataclass
class Flows:
    """The background's flow between neighbouring frames of a shot.

    Attributes:
        forward: (T-1, h, w, 2) float32: for each pixel of frame t, its motion (dx, dy) in working
            pixels to frame t+1.
        backward: (T-1, h, w, 2) float32: for each pixel of frame t+1, its motion to frame t.
        static: (T-1,) bool: the pair (t, t+1) is locked off and its flows are exactly zero.
        exposure: (T, 3) float32: each frame's log exposure per channel against the first frame's,
            from the ratios of the background's values along the flow (0 for a steady exposure).
        mismatch: (T-1,) float32: how far the background around the matte departs from itself
            along the flow of each pair (the median absolute difference of the flow's log-domain
            frames, [-1, 1] units, within RING_PX of the matte): grain and resampling on a rigid
            background (about 0.004-0.013), more where it changes as it moves (water: 0.025).
        rigid: the background moves as one plane, and every pair's flow is its registered camera.
    """

    forward: np.ndarray
    backward: np.ndarray
    static: np.ndarray
    exposure: np.ndarray
    mismatch: np.ndarray
    rigid: bool = False


def gray(images: np.ndarray) -> np.ndarray:
    """(T, h, w, 3) network-domain frames in [-1, 1] -> (T, h, w) uint8 luminance for DIS.

    The network domain is logarithmic, so shadows keep their texture for the flow as they would in
    a display transform.
    """
    luma = images @ LUMA
    return np.clip((luma + 1.0) * 127.5, 0, 255).astype(np.uint8)


def _fill_holes(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """An 8-bit frame with its matte filled from around it (Telea), so DIS sees background, not the object."""
    if not hole.any():
        return image
    return cv2.inpaint(image, hole.astype(np.uint8), 3, cv2.INPAINT_TELEA)


def grow(mask: np.ndarray, pixels: int) -> np.ndarray:
    """(h, w) bool grown by a (2 pixels + 1) square; `mask` itself for 0 pixels or an empty mask."""
    if pixels <= 0 or not mask.any():
        return mask
    kernel = np.ones((2 * pixels + 1, 2 * pixels + 1), np.uint8)
    return cv2.dilate(mask.astype(np.uint8), kernel) > 0


def _lands_in(flow: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(h, w) bool: pixels whose flow carries them into `mask` of the other frame (or out of the frame)."""
    h, w = mask.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    x = np.rint(xs + flow[..., 0]).astype(np.int64)
    y = np.rint(ys + flow[..., 1]).astype(np.int64)
    out = (x < 0) | (x >= w) | (y < 0) | (y >= h)
    inside = ~out
    hit = np.zeros((h, w), bool)
    hit[inside] = mask[y[inside], x[inside]]
    return hit | out


def complete(flow: np.ndarray, untrusted: np.ndarray) -> tuple[np.ndarray, bool]:
    """Replace the flow where it cannot be trusted by the background's motion around it.

    Args:
        flow: (h, w, 2) float32 measured flow, working pixels.
        untrusted: (h, w) bool: the object's pixels and those the flow hides in the other frame.

    Returns:
        The completed (h, w, 2) float32 flow, and whether the background looks locked off (see
        `complete_with_camera`).
    """
    completed, still, _ = complete_with_camera(flow, untrusted)
    return completed, still


def complete_with_camera(flow: np.ndarray, untrusted: np.ndarray) -> tuple[np.ndarray, bool, np.ndarray]:
    """`complete`, and the camera it fitted.

    Args:
        flow: (h, w, 2) float32 measured flow, working pixels.
        untrusted: (h, w) bool: the object's pixels and those the flow hides in the other frame.

    Returns:
        The completed (h, w, 2) float32 flow; whether the background looks locked off (its camera
        motion and residual under STATIC_PX; the caller zeroes a pair locked off both ways); and
        the camera, a (3, 3) float64 homography from this frame's pixels to the other's.
    """
    h, w = untrusted.shape
    trusted = ~untrusted
    grid = np.zeros_like(trusted)
    grid[::SAMPLE_STEP, ::SAMPLE_STEP] = True
    ys, xs = np.nonzero(trusted & grid)
    if len(xs) < 12:  # nothing to learn the background's motion from: assume it holds still
        return np.zeros_like(flow), True, np.eye(3)
    src = np.stack([xs, ys], 1).astype(np.float32)
    dst = src + flow[ys, xs]
    homography, _ = cv2.findHomography(src, dst, cv2.RANSAC, 1.0)
    if homography is None:
        homography = np.eye(3)
    camera = camera_flow(homography, (h, w))
    residual = flow - camera
    corners = np.abs(camera[[0, 0, -1, -1], [0, -1, 0, -1]]).max()
    still = bool(corners < STATIC_PX and float(np.median(np.abs(residual[trusted]))) < STATIC_PX)
    if untrusted.any():
        residual = smooth_fill(residual, trusted)
    completed = np.where(untrusted[..., None], camera + residual, flow)
    return completed.astype(np.float32), still, homography


def camera_flow(homography: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w, 2) float32 motion of every pixel under a (3, 3) homography, working pixels."""
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    points = np.stack([xx, yy], -1).reshape(-1, 1, 2)
    moved = cv2.perspectiveTransform(points, np.asarray(homography, np.float64)).reshape(h, w, 2)
    return (moved - np.stack([xx, yy], -1)).astype(np.float32)


def register(a: np.ndarray, b: np.ndarray, known: np.ndarray, start: np.ndarray) -> np.ndarray | None:
    """The homography from frame a's pixels to frame b's that best aligns b's picture to a's background.

    The simplest motion that explains the pair is kept: a translation, then an affine motion, then
    a homography, each registered from the one before and kept only when it leaves clearly less
    misalignment (MODEL_GAIN). On a small frame a homography's eight parameters trade scale against
    shift within the grain, and a pan's chains would drift by as much.

    Args:
        a, b: (h, w) float32 luminance of the two frames (the flow's log domain).
        known: (h, w) bool: the pixels of a that are background and shown in b.
        start: (3, 3) the homography fitted to the flow, whose shift at the frame's centre starts the registration.

    Returns:
        (3, 3) float64, or None when not even a translation converges. ECC's correlation is blind
        to a change of gain and offset, so a change of exposure does not pull it.
    """
    h, w = a.shape
    centre = np.array([[[w / 2, h / 2]]], np.float64)
    shift = (cv2.perspectiveTransform(centre, np.asarray(start, np.float64)) - centre)[0, 0]
    warp: np.ndarray = np.array([[1, 0, shift[0]], [0, 1, shift[1]], [0, 0, 1]], np.float32)
    best: tuple[float, np.ndarray] | None = None
    mask = known.astype(np.uint8)
    for model in (cv2.MOTION_TRANSLATION, cv2.MOTION_AFFINE, cv2.MOTION_HOMOGRAPHY):
        guess = warp if model == cv2.MOTION_HOMOGRAPHY else warp[:2]
        try:
            rho, found = cv2.findTransformECC(a, b, guess.copy(), model, ECC_CRITERIA, mask, 5)
        except cv2.error:  # no convergence (too little texture, or a degenerate start)
            break
        if best is not None and 1.0 - rho > MODEL_GAIN * (1.0 - best[0]):
            break  # the richer motion explains no more than grain: keep the simpler one
        warp = np.asarray(np.vstack([found, [0, 0, 1]]) if found.shape[0] == 2 else found, np.float32)
        best = (rho, warp)
    return None if best is None else best[1].astype(np.float64)


def warp(b: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Frame b (h, w[, c]) pulled back along frame a's flow (h, w, 2): b's value where each pixel of a goes."""
    h, w = flow.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return cv2.remap(b, xx + flow[..., 0], yy + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _warp_error(a: np.ndarray, b: np.ndarray, flow: np.ndarray, where: np.ndarray) -> float:
    """Mean |a - b warped along flow| over `where` (the two frames' luminance)."""
    return float(np.abs(warp(b, flow) - a)[where].mean()) if where.any() else 0.0


def sample(field: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Bilinear samples of (h, w, c) `field` at (n, 2) float (x, y) points, clamped to the frame -> (n, c)."""
    h, w = field.shape[:2]
    x = np.clip(points[:, 0], 0, w - 1)
    y = np.clip(points[:, 1], 0, h - 1)
    x0 = np.minimum(np.floor(x).astype(np.int64), w - 2 if w > 1 else 0)
    y0 = np.minimum(np.floor(y).astype(np.int64), h - 2 if h > 1 else 0)
    fx = (x - x0)[:, None].astype(np.float32)
    fy = (y - y0)[:, None].astype(np.float32)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    top = field[y0, x0] * (1 - fx) + field[y0, x1] * fx
    bottom = field[y1, x0] * (1 - fx) + field[y1, x1] * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)


def _log_ratio(a: np.ndarray, b: np.ndarray, flow: np.ndarray, untrusted: np.ndarray) -> np.ndarray:
    """(3,) log of frame b's exposure over frame a's: the median ratio of trusted background pixels.

    Ratios under half a percent are taken as none: that is grain, not a change of exposure.
    """
    h, w = untrusted.shape
    ys, xs = np.nonzero(~untrusted)
    if len(xs) < 64:
        return np.zeros(3, np.float32)
    points = np.stack([xs + flow[ys, xs, 0], ys + flow[ys, xs, 1]], 1)
    va, vb = a[ys, xs], sample(b, points)
    bright = (va > 0.02) & (vb > 0.02)  # ratios of near-black pixels are grain
    ratio = np.zeros(3, np.float32)
    for c in range(3):
        keep = bright[:, c]
        if keep.sum() >= 64:
            ratio[c] = float(np.median(np.log(vb[keep, c] / va[keep, c])))
    ratio[np.abs(ratio) < 0.005] = 0.0
    return ratio


def _mismatch(a: np.ndarray, b: np.ndarray, flow: np.ndarray, hole_a: np.ndarray, hidden: np.ndarray) -> float:
    """Median |a - b warped along flow| (mean over channels, after the median offset) of frame a's pixels
    around its matte that b shows."""
    ring = grow(hole_a, RING_PX) & ~grow(hole_a, GUARD_PX) & ~hidden
    if ring.sum() < 16:
        ring = ~(grow(hole_a, GUARD_PX) | hidden)
    if ring.sum() < 16:
        return 0.0
    difference = (warp(b, flow) - a)[ring]
    difference -= np.median(difference, axis=0)  # a change of exposure is an offset here: matched, not a mismatch
    return float(np.median(np.abs(difference).mean(-1)))


def background_flows(images: np.ndarray, linear: np.ndarray, holes: np.ndarray) -> Flows:
    """The background's flows, both ways, between every pair of neighbouring frames.

    Args:
        images: (T, h, w, 3) float32 network-domain frames (their texture drives the flow).
        linear: (T, h, w, 3) float32 scene-linear frames (their ratios give the exposure).
        holes: (T, h, w) bool mattes at working resolution (True = object).
    """
    count, h, w = holes.shape
    frames = gray(images)
    # The camera is registered on float luminance: on 8-bit levels ECC lost fine texture's sub-pixel shifts.
    luma = np.ascontiguousarray(images @ LUMA)
    filled = [_fill_holes(frames[t], holes[t]) for t in range(count)]
    guarded = [grow(holes[t], GUARD_PX) for t in range(count)]
    dis = cv2.DISOpticalFlow_create(DIS_PRESET)  # type: ignore[attr-defined]  # (OpenCV's stubs lack it)
    dis.setFinestScale(DIS_FINEST_SCALE)
    forward = np.zeros((max(count - 1, 0), h, w, 2), np.float32)
    backward = np.zeros_like(forward)
    static = np.zeros(max(count - 1, 0), bool)
    exposure = np.zeros((count, 3), np.float32)
    mismatch = np.zeros(max(count - 1, 0), np.float32)
    untrusted = np.zeros((max(count - 1, 0), h, w), bool)
    cameras: list[np.ndarray | None] = []
    ratios = []
    for t in range(count - 1):
        fw = dis.calc(filled[t], filled[t + 1], None)
        bw = dis.calc(filled[t + 1], filled[t], None)
        untrusted[t] = guarded[t] | _lands_in(fw, guarded[t + 1])
        untrusted_bw = guarded[t + 1] | _lands_in(bw, guarded[t])
        forward[t], still_fw, homography = complete_with_camera(fw, untrusted[t])
        backward[t], still_bw = complete(bw, untrusted_bw)
        static[t] = still_fw and still_bw
        if static[t]:
            forward[t] = backward[t] = 0.0
            cameras.append(np.eye(3))
            continue
        camera = register(luma[t], luma[t + 1], ~untrusted[t], homography)
        cameras.append(camera)
        # How well the camera alone warps the background around the matte, against the measured flow.
        ring = grow(holes[t], RING_PX) & ~untrusted[t]
        measured = _warp_error(luma[t], luma[t + 1], fw, ring)
        ratios.append(np.inf if camera is None else _warp_error(luma[t], luma[t + 1], camera_flow(camera, (h, w)), ring)
                      / max(measured, 1e-6))
    rigid = bool(ratios) and float(np.median(ratios)) <= RIGID_RATIO
    for t in range(count - 1):
        camera = cameras[t]
        if rigid and not static[t] and camera is not None:
            forward[t] = camera_flow(camera, (h, w))
            backward[t] = camera_flow(np.linalg.inv(camera), (h, w))
        exposure[t + 1] = exposure[t] + _log_ratio(linear[t], linear[t + 1], forward[t], untrusted[t])
        mismatch[t] = _mismatch(images[t], images[t + 1], forward[t], guarded[t], _lands_in(forward[t], guarded[t + 1]))
    return Flows(forward=forward, backward=backward, static=static, exposure=exposure, mismatch=mismatch, rigid=rigid)
