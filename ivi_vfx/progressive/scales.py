"""The scales of progressive high resolution and the plate at each of them.

Planning the finer scales (`plan_scales`), the size of a level's canvas (`level_size`), resampling
between the pixel grids of two boxes (`resample`), a trained scale (`Level`), and reading a frame's
plate and matte at a scale (`plate_rgb`, `read_matte_over`, `to_level`, `level_hole`).

Boxes are (y0, y1, x0, x1), half-open; an "abs" box is in the plate's absolute pixel coordinates.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ivi_vfx import masks, tiles
from ivi_vfx.hires import HiresConfig
from ivi_vfx.io.exr import ExrImage, read_exr
from ivi_vfx.nets.detail import DetailNet
from ivi_vfx.shot import RGB, Shot

Box = tiles.Box
MIN_PLATE = 512
"""'auto' never adds finer scales to a plate whose longest side is below this (pixels)."""


# --- scales ----------------------------------------------------------------------------------------

def plan_scales(full: tuple[int, int], work: tuple[int, int], cfg: HiresConfig) -> list[float]:
    """The finer scales, as fractions of the full resolution, coarsest first; [] for none.

    Args:
        full: (H, W) of the canvas at full resolution (the plate's data window), in pixels.
        work: (h, w) of the working resolution (unpadded), in pixels.
        cfg: `cfg.scales` decides: 'off', 'auto', a count, or explicit fractions.
    """
    ratio = max(full) / max(work)
    if cfg.scales == "off" or ratio <= 1.0:
        return []
    if cfg.scales == "auto":
        if ratio < cfg.min_ratio or max(full) < MIN_PLATE:
            return []
        count = math.ceil(math.log(ratio) / math.log(cfg.max_step))
    elif cfg.scales.isdigit():
        count = int(cfg.scales)
        if count == 0:
            return []
    else:
        return [float(v) for v in cfg.scales.split(",") if float(v) * ratio > 1.0 + 1e-9] or [1.0]
    # Geometric steps from the working scale (1 / ratio) to 1.
    return [ratio ** (-(count - k) / count) for k in range(1, count + 1)]


def level_size(full: tuple[int, int], scale: float) -> tuple[int, int]:
    """(h, w) of a canvas of `full` pixels at `scale` (1.0 gives `full` exactly)."""
    return (full[0], full[1]) if scale >= 1.0 else (max(1, round(full[0] * scale)), max(1, round(full[1] * scale)))


def resample(src: torch.Tensor, src_box: Box, dst_box: Box, dst_size: tuple[int, int],
             region: Box | None = None) -> torch.Tensor:
    """Bilinear resampling of an image laid over one absolute box onto the pixel grid of another.

    With equal boxes this is F.interpolate(mode='bilinear', align_corners=False); where the
    destination reaches beyond the source (overscan around a display-window prior) the source's
    edge is repeated.

    Args:
        src: (1, C, hs, ws) covering `src_box` (abs pixels).
        src_box, dst_box: abs boxes that the two pixel grids span.
        dst_size: (h, w) pixels of the destination grid over `dst_box`.
        region: the destination pixels wanted, as a box of destination pixels; default all.

    Returns:
        (1, C, region height, region width), src's dtype.
    """
    h, w = dst_size
    r0, r1, c0, c1 = region or (0, h, 0, w)
    sy0, sy1, sx0, sx1 = src_box
    dy0, dy1, dx0, dx1 = dst_box
    # Absolute centre of each destination pixel, then the source's normalised [-1, 1] coordinate.
    ys = dy0 + (torch.arange(r0, r1, dtype=torch.float64) + 0.5) * ((dy1 - dy0) / h)
    xs = dx0 + (torch.arange(c0, c1, dtype=torch.float64) + 0.5) * ((dx1 - dx0) / w)
    v = (2.0 * (ys - sy0) / (sy1 - sy0) - 1.0).float()
    u = (2.0 * (xs - sx0) / (sx1 - sx0) - 1.0).float()
    grid = torch.stack(torch.meshgrid(v, u, indexing="ij")[::-1], dim=-1)[None].to(src.device)  # (1, h, w, 2) as (x, y)
    return F.grid_sample(src.float(), grid, mode="bilinear", padding_mode="border", align_corners=False).to(src.dtype)


@dataclass
class Level:
    """One finer scale: its size and its trained network.

    Attributes:
        scale: fraction of the full resolution (1.0 is the plate's).
        size: (h, w) of the canvas (the plate's data window) at this scale, in pixels.
        net: the trained DetailNet.
    """

    scale: float
    size: tuple[int, int]
    net: DetailNet


# --- reading frames at each scale --------------------------------------------------------------------

def data_box(image: ExrImage) -> Box:
    """The abs box of an image's data window."""
    x, y, w, h = image.data_window
    return (y, y + h, x, x + w)


def display_box(image: ExrImage) -> Box:
    """The abs box of an image's display window."""
    x, y, w, h = image.display_window
    return (y, y + h, x, x + w)


def read_matte_over(shot: Shot, frame: int, window: tuple[int, int, int, int]) -> np.ndarray:
    """(h, w) bool matte of a frame over `window` (x, y, w, h abs): binarised and dilated as shot.read_matte."""
    image = read_exr(shot.mattes.path(frame))
    matte = torch.from_numpy(np.nan_to_num(image.over((shot.mask_channel,), window)[..., 0], nan=0.0))
    return masks.dilate(masks.binarize(matte), shot.dilate).numpy() > 0


def plate_rgb(image: ExrImage, box: Box | None = None) -> np.ndarray:
    """(h, w, 3) float32 scene-linear RGB of the data window (or a box of it), non-finite values tamed.

    NaN becomes 0 and inf the largest half, as shot.plate_rgb_work does, so that no scaling
    spreads them; the composite puts the originals back outside the matte.
    """
    y0, y1, x0, x1 = box or (0, image.pixels.shape[0], 0, image.pixels.shape[1])
    index = [image.channel_index(c) for c in RGB]
    rgb = image.pixels[y0:y1, x0:x1][..., index]  # fancy indexing: a float32 copy of the box only
    return np.nan_to_num(rgb, copy=False, nan=0.0, posinf=65504.0, neginf=-65504.0)


def to_level(rgb: np.ndarray, matte: np.ndarray, size: tuple[int, int]) -> tuple[torch.Tensor, np.ndarray]:
    """A full-resolution frame and matte at a level's size.

    Args:
        rgb: (H, W, 3) float32 scene-linear over the data window.
        matte: (H, W) bool over the data window.
        size: (h, w) of the level.

    Returns:
        (1, 3, h, w) float32 scene-linear (antialiased bilinear), and (h, w) bool matte (a level
        pixel is hole when any full-resolution pixel under it is, as masks.downsample).
    """
    if tuple(size) == matte.shape:
        return torch.from_numpy(rgb).permute(2, 0, 1)[None], matte
    image = F.interpolate(torch.from_numpy(rgb).permute(2, 0, 1)[None], size=size, mode="bilinear",
                          antialias=True, align_corners=False)
    return image, level_hole(matte, size)


def level_hole(matte: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) bool full-resolution matte -> (h, w) bool: a level pixel is hole if any pixel under it is."""
    if tuple(size) == matte.shape:
        return matte
    return masks.downsample(torch.from_numpy(matte)[None, None].float(), size)[0, 0].numpy() > 0


def matte_bounds(hole: np.ndarray) -> Box | None:
    """The bounding box of the True pixels of an (h, w) bool array; None when there are none."""
    rows, cols = np.flatnonzero(hole.any(axis=1)), np.flatnonzero(hole.any(axis=0))
    if not len(rows):
        return None
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
