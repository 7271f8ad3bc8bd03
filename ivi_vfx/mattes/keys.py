"""The key frames and where they are: the object's roto on some frames, at the plate's working resolution."""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import numpy as np
import torch

from ivi_vfx import masks
from ivi_vfx.errors import ConfigError, ShapeError
from ivi_vfx.io.exr import read_exr
from ivi_vfx.io.sequence import FrameSequence
from ivi_vfx.shot import Frames, mask_channel_of, read_matte

logger = logging.getLogger(__name__)


@dataclass
class Keys:
    """A plate at working resolution and the object's roto on some of its frames.

    Attributes:
        frames: the plate (shot.load_frames).
        key_frames: the roto'd frame numbers.
        mattes: (K, 1, ph, pw) float32 {0, 1} key mattes at working resolution (0 over the padding).
        full: each key frame's (H, W) bool matte at full resolution, as the user drew it.
    """

    frames: Frames
    key_frames: tuple[int, ...]
    mattes: torch.Tensor
    full: dict[int, np.ndarray]

    @property
    def indices(self) -> list[int]:
        """The key frames' indices among the plate's frames, in the order of `mattes`."""
        return [self.frames.index(f) for f in self.key_frames]

    def fingerprint(self) -> str:
        """A short hash of what training sees: a checkpoint only resumes on its own plate and keys."""
        digest = hashlib.sha256(self.frames.images.numpy().tobytes())
        digest.update(self.mattes.numpy().tobytes())
        digest.update(repr(self.key_frames).encode())
        return digest.hexdigest()[:16]


def load_keys(frames: Frames, key_mattes: FrameSequence, mask_channel: str | None = None) -> Keys:
    """Read the key mattes (binarised > 0) and bring them to the plate's working resolution.

    Raises:
        ConfigError: a key frame is not a plate frame, or its matte is empty.
        ShapeError: a key matte's format differs from the plate's.
    """
    geometry = frames.geometry
    outside = [f for f in key_mattes.frames if f not in frames.plate.frames]
    if outside:
        raise ConfigError(f"key frame {outside[0]} is not among the plate's frames "
                          f"({frames.plate.frames[0]}-{frames.plate.frames[-1]}); choose --key-frames inside the range")
    full, small = {}, []
    for frame in key_mattes.frames:
        image = read_exr(key_mattes.path(frame))
        size = image.display_window[3], image.display_window[2]
        if size != geometry.full:
            raise ShapeError(f"{image.path} is {size[1]}x{size[0]} but the plate is {geometry.full[1]}x"
                             f"{geometry.full[0]}; give a key matte in the plate's format")
        matte = read_matte(image, mask_channel_of(image, mask_channel), 0)
        if not matte.any():
            raise ConfigError(f"{image.path}: the key matte is empty; roto the object on this frame or leave "
                              f"the frame out of --key-frames")
        full[frame] = matte
        work = masks.downsample(torch.from_numpy(matte).float()[None, None], geometry.work)
        small.append(geometry.pad(work)[0] * frames.valid[0])
    logger.info("keys: frames %s, object %.1f%% of the key pixels", ",".join(map(str, key_mattes.frames)),
                100 * float(torch.stack(small).mean()))
    return Keys(frames=frames, key_frames=tuple(key_mattes.frames), mattes=torch.stack(small), full=full)


def key_anchors(keys: Keys) -> dict[int, torch.Tensor]:
    """Plate frame index -> (ph, pw) bool key matte: where the temporal constraints start."""
    return {t: keys.mattes[k, 0] > 0 for k, t in enumerate(keys.indices)}


def key_distance(keys: Keys) -> torch.Tensor:
    """(T,) int64: each plate frame's distance in frames to the nearest key frame."""
    times = torch.arange(len(keys.frames.images))
    return (times[:, None] - torch.tensor(keys.indices)[None]).abs().amin(1)
