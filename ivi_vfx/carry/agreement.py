"""The fill made to agree with the neighbouring frames' fills (a render step of the carry).

Each frame's fill errs on its own: the network makes every frame anew, and weaker chains start from
different frames. The background the matte hides is one surface moving with the camera, so the
neighbouring frames' fills, pulled back along the flow between the filled frames, are further
estimates of the same pixels. Each matte pixel whose confidence is under 1 takes the mean of its
frame's fill and those of the RADIUS frames on each side:
- carried along a weaker chain, only the mean's low frequencies (a Gaussian of LOW_SIGMA working
  pixels, in the network domain): its detail and grain are a frame's own, and stay;
- invented (left in the network's hole: no chain was trusted, confidence under carry.TRUST), the
  whole mean: its detail is the network's guess, which errs anew in each frame, so the mean of five
  guesses is nearer the truth (fixed_rocket +0.12 dB hole PSNR, the other shots within 0.02:
  docs/results.md, 2026-12-07).
The correction is made at working resolution, where the flow is cheap, and scaled up to the plate
like the network's fill.

A frame's correction depends on its neighbours' fills, so a farm chunk loads RADIUS frames beyond
each end (`neighbours`) and renders the same bits as the whole job.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import cv2
import numpy as np
import torch

from ivi_vfx.carry.flow import DIS_FINEST_SCALE, DIS_PRESET, gray, warp
from ivi_vfx.shot import Shot

RADIUS = 2
"""Frames on each side whose fills a frame's fill is averaged with (measured: docs/results.md)."""
LOW_SIGMA = 1.5
"""Width (working pixels) of the Gaussian that parts a carried pixel's low frequencies, which are
averaged, from its detail, which stays the frame's own (as carry.sampling.OWN_FILL_SIGMA)."""


def neighbours(frames: list[int], shot_frames: list[int]) -> list[int]:
    """`frames` and the frames of the shot within RADIUS places of any of them, in the shot's order."""
    places = {shot_frames.index(f) for f in frames}
    near = {p + d for p in places for d in range(-RADIUS, RADIUS + 1)}
    return [f for p, f in enumerate(shot_frames) if p in near]


class Agreement:
    """The low-frequency corrections of a shot's frames, from the network's fills of the neighbours."""

    def __init__(self, shot: Shot, fill: Callable[[int], torch.Tensor]):
        """
        Args:
            shot: the shot the network fills (carried pixels in, `lift`), over the frames to render
                and their neighbours (`neighbours`).
            fill: shot index -> (1, 3, ph, pw) the network's fill of that frame (render.network_fill).
        """
        self.shot, self.fill = shot, fill
        self._pictures: OrderedDict[int, np.ndarray] = OrderedDict()
        self._dis = cv2.DISOpticalFlow_create(DIS_PRESET)  # type: ignore[attr-defined]  # (OpenCV's stubs lack it)
        self._dis.setFinestScale(DIS_FINEST_SCALE)

    def _picture(self, index: int) -> np.ndarray:
        """(h, w, 3) float32 network-domain working frame `index` with the network's fill in its hole."""
        if index in self._pictures:
            return self._pictures[index]
        h, w = self.shot.geometry.work
        picture = self.shot.images[index:index + 1]
        hole = self.shot.holes[index:index + 1]
        if hole.any():
            picture = torch.where(hole > 0.5, self.fill(index), picture)
        self._pictures[index] = picture[0, :, :h, :w].permute(1, 2, 0).numpy()
        if len(self._pictures) > 2 * RADIUS + 2:  # the frames of one window, rendered in order
            self._pictures.popitem(last=False)
        return self._pictures[index]

    def correction(self, frame: int) -> np.ndarray:
        """(H, W, 3) float32 network-domain correction over the plate's display window: what frame
        `frame`'s matte pixels under confidence 1 add to agree with the neighbours (0 outside the
        matte's reach): the whole difference to the neighbours' mean where the network invented the
        pixel (the shot's hole, `lift`), its low frequencies elsewhere."""
        shot = self.shot
        t = shot.index(frame)
        mine = self._picture(t)
        total, count, seen = mine.copy(), 1, gray(mine)
        for s in range(max(t - RADIUS, 0), min(t + RADIUS + 1, len(shot.frames))):
            if s != t:
                theirs = self._picture(s)
                flow = self._dis.calc(seen, gray(theirs), None)
                total += warp(theirs, flow)
                count += 1
        h, w = shot.geometry.work
        matte = shot.hole_shapes[t, 0, :h, :w].numpy() > 0.5
        invented = shot.holes[t, 0, :h, :w].numpy()[..., None] > 0.5
        apart = np.where(matte[..., None], total / count - mine, 0.0).astype(np.float32)
        low = cv2.GaussianBlur(apart, (0, 0), LOW_SIGMA)
        toward = torch.from_numpy(np.where(invented, apart, low)).permute(2, 0, 1)[None]
        return shot.geometry.to_full(toward)[0].permute(1, 2, 0).numpy()
