"""The matte EXRs of every frame: the trained network's prediction, followed by the motion cues (or kept
by the temporal constraints), the user's own roto on the keyframes, and each frame's check."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ivi_vfx import masks
from ivi_vfx.config import PropagateConfig
from ivi_vfx.io.exr import output_spec, read_header, write_exr
from ivi_vfx.io.sequence import FrameSequence
from ivi_vfx.mattes import background, motion
from ivi_vfx.mattes.check import FrameCheck, frame_checks
from ivi_vfx.mattes.keys import Keys, key_anchors
from ivi_vfx.mattes.tracking import bounded_region, tracked
from ivi_vfx.nets.unet import UNet
from ivi_vfx.shot import Frames

FOLLOWED_FLOOR = 0.75
"""Inside a followed matte, the probability is raised to at least this before it is scaled up: the
motion cues, not the network alone, decided that the pixel is object."""


@torch.no_grad()
def probabilities(model: UNet, frames: Frames, device: str | torch.device = "cpu", batch: int = 4) -> torch.Tensor:
    """(T, ph, pw) float16 every plate frame's object probability at working resolution (0 over the padding).

    Half precision: a long shot at the paper's size keeps a few hundred MB, not twice that.
    """
    model.eval()
    out = []
    for t in range(0, len(frames.images), batch):
        probability = model.probability(frames.images[t:t + batch].to(device)).cpu()[:, 0]
        out.append((probability * frames.valid[0]).half())
    return torch.cat(out)


@dataclass
class WorkingMattes:
    """Every frame's matte at working resolution, before it is scaled up and written.

    Attributes:
        probability: (T, ph, pw) float16 the network's probability.
        kept: None (each frame's probability on its own), or (T, ph, pw) bool the region the
            temporal constraints kept, or with `followed` the mattes that the motion cues followed.
        followed: `kept` is the motion cues' mattes (motion.follow).
        mattes: None, or (T, ph, pw) bool the mattes themselves at working resolution (for the checks).
    """

    probability: torch.Tensor
    kept: torch.Tensor | None
    followed: bool
    mattes: torch.Tensor | None = None

    def matte_probability(self, t: int | slice = slice(None), threshold: float = 0.5) -> torch.Tensor:
        """The probability that is scaled up and thresholded, for frame(s) t: the network's, zeroed
        outside the kept region (grown by a pixel, so that the scaled-up edge is the probability's
        own), and with `followed` raised to FOLLOWED_FLOOR inside the followed matte."""
        probability = self.probability[t].float()
        if self.kept is None:
            return probability
        kept = self.kept[t]
        around = masks.dilate(kept.float(), 1)
        if not self.followed:
            return probability * around
        floor = max(FOLLOWED_FLOOR, threshold + 1e-3)
        return torch.where(kept, probability.clamp(min=floor), probability * around)


def working_mattes(model: UNet, keys: Keys, cfg: PropagateConfig, device: str | torch.device = "cpu") -> WorkingMattes:
    """Every frame's matte at working resolution: one pass of the network over the shot, less what the
    background cue calls background (cfg.background_match), then the motion cues (motion.follow, when
    cfg uses them) or the temporal constraint (cfg.track), bounded by the object's speed (cfg.max_speed)."""
    frames, threshold = keys.frames, cfg.threshold
    probability = probabilities(model, frames, device)
    valid = frames.valid[0, 0] > 0
    if cfg.background_match > 0:
        moving = background.moving_part(probability, threshold, frames.images, frames.geometry.work,
                                        cfg.background_match, key_anchors(keys))
        # What the network calls object but the nearby frames show as background is out of every
        # matte below (its probability 0); below the threshold the probability stays, for the edges.
        probability = probability.masked_fill((probability > threshold) & ~moving, 0)
    kept, followed = None, False
    if motion.uses_motion(cfg):
        kept = motion.follow(probability.float(), threshold, key_anchors(keys), frames.images, frames.geometry.work,
                             motion.cues_of(cfg, frames.geometry.work))
        followed = True
    elif cfg.track > 0:
        kept = tracked((probability > threshold) & valid, keys, cfg)
    if cfg.max_speed > 0:
        # The object moves no faster than max_speed: what lies beyond its region is dropped.
        region = bounded_region(tracked((probability > threshold / 2) & valid, keys, cfg), keys, cfg)[:, 0] > 0
        kept = region if kept is None else kept & region
    result = WorkingMattes(probability=probability, kept=kept, followed=followed)
    result.mattes = (result.matte_probability(threshold=threshold) > threshold) & valid
    return result


def full_matte(work: WorkingMattes, keys: Keys, frame: int, cfg: PropagateConfig) -> np.ndarray:
    """(H, W) bool full-resolution matte of one frame: the user's roto on a keyframe, else the prediction.

    The probability is scaled up bilinearly before the threshold (a smoother edge than scaling the
    binary matte), then dilated by cfg.dilate full-resolution pixels.
    """
    if frame in keys.full:
        matte = torch.from_numpy(keys.full[frame])
    else:
        t = keys.frames.index(frame)
        probability = work.matte_probability(t, cfg.threshold)[None, None]
        matte = keys.frames.geometry.to_full(probability)[0, 0] > cfg.threshold
    return masks.dilate(matte.float(), cfg.dilate).numpy() > 0


@torch.no_grad()
def predict_matte(model: UNet, keys: Keys, frame: int, cfg: PropagateConfig,
                  device: str | torch.device = "cpu", keep: torch.Tensor | None = None) -> np.ndarray:
    """(H, W) bool full-resolution matte of one frame on its own (no motion cues): the user's roto on a
    keyframe, else the network's prediction, zeroed outside `keep` ((ph, pw) bool) when given."""
    t = keys.frames.index(frame)
    probability = model.probability(keys.frames.images[t:t + 1].to(device)).cpu()[:, 0].half()
    work = WorkingMattes(probability=probability, kept=None if keep is None else keep[None], followed=False)
    if frame in keys.full:
        return full_matte(work, keys, frame, cfg)
    matte = keys.frames.geometry.to_full(work.matte_probability(0)[None, None])[0, 0] > cfg.threshold
    return masks.dilate(matte.float(), cfg.dilate).numpy() > 0


def nearest_key_is_new(t: int, keys: Keys, new_keys: set[int]) -> bool:
    """Whether plate frame index t is nearer (or as near) to one of `new_keys` (frame numbers) as to any other key."""
    distance = {frame: abs(t - keys.frames.index(frame)) for frame in keys.key_frames}
    nearest = min(distance.values())
    return any(distance[frame] == nearest for frame in new_keys if frame in distance)


def write_mattes(model: UNet, keys: Keys, out: FrameSequence, cfg: PropagateConfig, *,
                 device: str | torch.device = "cpu", overwrite: bool = False,
                 on_frame: Callable[[int, Path], None] | None = None,
                 previous: dict[int, FrameCheck] | None = None,
                 new_keys: set[int] | None = None) -> tuple[list[Path], list[FrameCheck]]:
    """Write one single-channel ('A') matte EXR per frame of `out`, over the plate's display window.

    The header is the plate's (metadata, pixel type, lossless compression), with the data window
    set to the display window.

    Args:
        previous: a correction run's previous checks (frame -> its check, check.read_checks), with
            `new_keys` the key frames it did not have: a frame whose nearest key is an old one keeps
            the matte on disk unless its new edge margin is higher (the matte changed for the better).
    Returns:
        The written paths (kept frames included), and every frame's check.
    """
    work = working_mattes(model, keys, cfg, device)
    frames = list(keys.frames.plate.frames)
    assert work.mattes is not None
    checks = frame_checks(work.probability, work.mattes, frames, set(keys.key_frames),
                          keys.frames.valid[0, 0] > 0, cfg.threshold)
    written = []
    for frame in out.frames:
        t = keys.frames.index(frame)
        path = out.path(frame)
        before = (previous or {}).get(frame)
        if (before is not None and new_keys and path.is_file() and frame not in keys.full
                and not nearest_key_is_new(t, keys, new_keys) and before.margin >= checks[t].margin):
            checks[t] = dataclasses.replace(before, kept=True)
        else:
            matte = full_matte(work, keys, frame, cfg)
            source = keys.frames.plate.path(frame)
            spec = output_spec(read_header(source), ("A",), source=source)  # the header; no pixels decoded
            spec.x, spec.y, spec.width, spec.height = spec.full_x, spec.full_y, spec.full_width, spec.full_height
            write_exr(path, matte[..., None].astype(np.float32), spec, overwrite=overwrite)
        written.append(path)
        if on_frame is not None:
            on_frame(frame, path)
    return written, checks
