"""The matte EXRs of every frame: the trained network's prediction, kept by the temporal constraints,
and the user's own roto on the keyframes."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ivi_vfx import masks
from ivi_vfx.config import PropagateConfig
from ivi_vfx.io.exr import output_spec, read_header, write_exr
from ivi_vfx.io.sequence import FrameSequence
from ivi_vfx.mattes.keys import Keys
from ivi_vfx.mattes.tracking import bounded_region, predicted, tracked
from ivi_vfx.nets.unet import UNet


@torch.no_grad()
def predict_matte(model: UNet, keys: Keys, frame: int, cfg: PropagateConfig,
                  device: str | torch.device = "cpu", keep: torch.Tensor | None = None) -> np.ndarray:
    """(H, W) bool full-resolution matte of one frame: the user's roto on a keyframe, else the prediction.

    The probability is scaled up bilinearly before the threshold (a smoother edge than scaling the
    binary matte), then dilated by cfg.dilate full-resolution pixels.

    Args:
        keep: None (the frame on its own), or the (ph, pw) bool working-resolution region that the
            temporal constraint kept (`tracked_mattes`); the probability is zeroed outside it (grown
            by a pixel, so that the scaled-up edge is the probability's own).
    """
    if frame in keys.full:
        matte = torch.from_numpy(keys.full[frame])
    else:
        t = keys.frames.index(frame)
        prob = model.probability(keys.frames.images[t:t + 1].to(device)).cpu()
        if keep is not None:
            prob = prob * masks.dilate(keep.float(), 1)
        matte = keys.frames.geometry.to_full(prob)[0, 0] > cfg.threshold
    return masks.dilate(matte.float(), cfg.dilate).numpy() > 0


def write_mattes(model: UNet, keys: Keys, out: FrameSequence, cfg: PropagateConfig, *,
                 device: str | torch.device = "cpu", overwrite: bool = False,
                 on_frame: Callable[[int, Path], None] | None = None) -> list[Path]:
    """Write one single-channel ('A') matte EXR per frame of `out`, over the plate's display window.

    The header is the plate's (metadata, pixel type, lossless compression), with the data window
    set to the display window.
    """
    # The temporal constraints need every frame's prediction first (they run outward from the keys);
    # one pass of the network gives the matte's threshold and the region's half of it.
    kept = None
    if cfg.track > 0 or cfg.max_speed > 0:
        matte, generous = predicted(model, keys.frames, (cfg.threshold, cfg.threshold / 2), device)
        if cfg.track > 0:
            kept = tracked(matte, keys, cfg)
        if cfg.max_speed > 0:
            # The object moves no faster than max_speed: what lies beyond its region is dropped.
            region = bounded_region(tracked(generous, keys, cfg), keys, cfg)[:, 0] > 0
            kept = region if kept is None else kept & region
    written = []
    for frame in out.frames:
        keep = None if kept is None else kept[keys.frames.index(frame)]
        written_matte = predict_matte(model, keys, frame, cfg, device, keep)
        spec = output_spec(read_header(keys.frames.plate.path(frame)), ("A",))  # the header; no pixels decoded
        spec.x, spec.y, spec.width, spec.height = spec.full_x, spec.full_y, spec.full_width, spec.full_height
        path = out.path(frame)
        write_exr(path, written_matte[..., None].astype(np.float32), spec, overwrite=overwrite)
        written.append(path)
        if on_frame is not None:
            on_frame(frame, path)
    return written
