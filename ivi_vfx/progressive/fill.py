"""Rendering with the finer scales: the working-resolution fill refined scale by scale, over tiles.

`coarse_fill` is the generator's fill (the first prior); `_run_level` fills one scale over the
tiles that touch its hole (tiles.py); `progressive_fill` runs every scale for a frame; `Progressive`
is the render.Compose that composites it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ivi_vfx import tiles
from ivi_vfx.hires import HiresConfig
from ivi_vfx.io.exr import ExrImage
from ivi_vfx.nets import Generator
from ivi_vfx.progressive.scales import Box, Level, data_box, display_box, plate_rgb, read_matte_over, resample, to_level
from ivi_vfx.render import composite_region, network_fill
from ivi_vfx.shot import Shot


@torch.no_grad()
def coarse_fill(model: Generator, shot: Shot, frame: int, device: torch.device | str) -> torch.Tensor:
    """(1, 3, h, w) float32 network-domain working-resolution fill of a frame (unpadded, over the display window)."""
    t = shot.index(frame)
    hole = shot.holes[t:t + 1]
    fill = torch.where(hole > 0, network_fill(model, shot, t, device), shot.images[t:t + 1].float())
    return fill[..., : shot.geometry.work[0], : shot.geometry.work[1]]


@torch.no_grad()
def _run_level(level: Level, prior: torch.Tensor, prior_box: Box, canvas: Box, plate: torch.Tensor | None,
               original: ExrImage | None, shot: Shot, hole: np.ndarray, cfg: HiresConfig,
               device: torch.device | str) -> tuple[Box, np.ndarray] | None:
    """Fill one scale's hole over the tiles that touch it.

    Args:
        prior: (1, 3, hp, wp) network-domain fill of the coarser scale, laid over `prior_box` (abs).
        canvas: the abs box of the data window that this scale's pixels span.
        plate: (1, 3, h, w) network-domain plate at this scale, or None at full resolution, where
            each tile is read from `original` instead (no whole-frame copy).
        hole: (h, w) bool at this scale.

    Returns:
        The bounds of the tiles run (this scale's pixels) and (3, bh, bw) float32 network-domain
        output over it; None when the hole is empty.
    """
    height, width = level.size
    halo = level.net.radius
    chosen = tiles.touching(tiles.grid(height, width, cfg.tile_size, cfg.overlap, halo), hole)
    if not chosen:
        return None

    def run(tile: tiles.Tile) -> np.ndarray:
        y0, y1, x0, x1 = tile.context
        if plate is not None:
            image = plate[..., y0:y1, x0:x1]
        else:
            assert original is not None
            image = shot.shaper.encode(torch.from_numpy(plate_rgb(original, tile.context)).permute(2, 0, 1)[None])
        tile_hole = torch.from_numpy(np.ascontiguousarray(hole[y0:y1, x0:x1]))[None, None].float()
        tile_prior = resample(prior, prior_box, canvas, level.size, tile.context)
        out = level.net(tile_prior.to(device), (image * (1.0 - tile_hole)).to(device), tile_hole.to(device))
        return out[0].float().cpu().numpy()

    return tiles.run_tiled(run, chosen, height, width, cfg.overlap, channels=3)


def progressive_fill(model: Generator, levels: list[Level], shot: Shot, original: ExrImage, frame: int,
                     cfg: HiresConfig, device: torch.device | str = "cpu") -> tuple[np.ndarray, np.ndarray, Box]:
    """A frame's fill at full resolution through every scale.

    Args:
        original: the plate frame as read (its data window is the canvas).
        cfg: a `for_device` copy of the progressive settings (tile and overlap).

    Returns:
        matte: (H, W) bool over the data window, the pixels to fill;
        fill: (bh, bw, 3) float32 scene-linear over `box`;
        box: data-window pixels that `fill` covers (every matte pixel lies inside it).
    """
    x, y, w, h = original.data_window
    canvas = data_box(original)
    matte = read_matte_over(shot, frame, (x, y, w, h))
    if not matte.any():
        return matte, np.zeros((0, 0, 3), np.float32), (0, 0, 0, 0)
    prior, prior_box = coarse_fill(model, shot, frame, device), display_box(original)
    rgb_full: np.ndarray | None = None
    for k, level in enumerate(levels):
        final = k == len(levels) - 1
        if final:
            plate, hole = None, matte
        else:
            if rgb_full is None:
                rgb_full = plate_rgb(original)  # one float32 copy, for the (small) intermediate scales
            linear, hole = to_level(rgb_full, matte, level.size)
            plate = shot.shaper.encode(linear)
        result = _run_level(level, prior, prior_box, canvas, plate, original, shot, hole, cfg, device)
        if final:
            if result is None:  # cannot happen: the matte is not empty
                raise RuntimeError("the finest scale found no tile under a non-empty matte")
            box, out = result
            fill = shot.shaper.decode(torch.from_numpy(out)).permute(1, 2, 0).numpy()
            return matte, np.ascontiguousarray(fill), box
        assert plate is not None
        filled = plate.clone()
        if result is not None:
            (y0, y1, x0, x1), out = result
            inside = torch.from_numpy(np.ascontiguousarray(hole[y0:y1, x0:x1]))
            filled[0, :, y0:y1, x0:x1] = torch.where(inside, torch.from_numpy(out), filled[0, :, y0:y1, x0:x1])
        prior, prior_box = filled, canvas
        if k == len(levels) - 2:
            rgb_full = None  # the finest scale reads its tiles from the frame itself
    raise RuntimeError("no finer scale to fill")  # levels is never empty here


@dataclass
class Progressive:
    """What renders a shot progressively: the working-resolution generator and the finer scales."""

    model: Generator
    levels: list[Level]
    shot: Shot
    cfg: HiresConfig
    device: torch.device | str = "cpu"

    def __call__(self, original: ExrImage, frame: int) -> tuple[np.ndarray, tuple[str, ...]]:
        """render.Compose: a whole output frame (pixels over the data window, channel names)."""
        matte, fill, box = progressive_fill(self.model, self.levels, self.shot, original, frame, self.cfg,
                                            self.device)
        return composite_region(original, fill, matte, box)
