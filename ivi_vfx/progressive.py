"""Progressive high-resolution inpainting: finer scales on top of the working-resolution fill.

The generator trains and fills at a working resolution (a few hundred pixels); scaled up to a 2K
or 4K plate, its fill is soft beside the grain around it. The paper's answer (section 4.1) was
never released (shared/research/paper_impl.md section 4); this is ours:

1. Scales. From the working resolution up to the full one, in steps of at most `max_step`
   (a 4K plate over a 256-pixel working size: about 1/4, then 1). Scale 0 is the working one.
2. One small residual network per finer scale (`DetailNet`): it sees the upsampled coarser fill
   (the prior), the plate with the hole cut out, and the hole, and adds the detail the prior
   lacks. Its last layer starts at zero, so before any training it returns the prior exactly.
3. Training on patches of the plate at that scale, drawn mostly around the matte's boundary
   (the paper's boundary-aware sampling): there the known pixels are the texture the hole must
   continue. A patch's prior is the patch itself, scaled down by the step to the coarser scale
   and back up (what an ideal coarser fill would be); its training hole is another frame's matte
   near its boundary (or the whole patch), and the L1 loss counts the hole minus the frame's own
   matte (where the truth is unknown), as the reference recipe does.
4. Inference over a grid of overlapping tiles (tiles.py), only those touching the matte, each
   seeing a halo as wide as the network's receptive field and blended without seams. The prior
   of a tile is sampled from the coarser scale's fill for that tile only.

Memory does not grow with resolution times length: the plate stays on disk and each frame is read
when needed (through io/exr.py); training keeps, per frame and scale, only the matte's
neighbourhood as float16; the finest scale is never held as a whole frame beyond the frame
read and its composite. GPU memory is bounded by the patch and tile sizes.

Scales are laid over the plate's DATA window, so overscan (a data window larger than the display
window) is filled like the rest: the working-resolution prior, which covers the display window,
extends into it by repeating its edge, and the finer scales fill it from the plate around.

Boxes are (y0, y1, x0, x1), half-open; an "abs" box is in the plate's absolute pixel coordinates.
"""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ivi_vfx import checkpoint, masks, tiles
from ivi_vfx.config import HiresConfig
from ivi_vfx.errors import CheckpointError, StopRequested
from ivi_vfx.io.exr import ExrImage, read_exr, read_header
from ivi_vfx.nets import Generator
from ivi_vfx.nets.generator import GatedConv
from ivi_vfx.render import Compose, composite_region
from ivi_vfx.shot import RGB, Shot

logger = logging.getLogger(__name__)

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


# --- the finer scales' network -----------------------------------------------------------------------

class DetailNet(nn.Module):
    """A finer scale's network: (prior, masked plate, hole) -> prior + detail.

    Gated convolutions (as the generator's) at full resolution of its scale, dilated to see about
    35 pixels around each output. The last layer starts at zero: an untrained DetailNet returns
    the prior, so a finer scale can only add to the scaled-up fill.

    Forward:
        prior: (B, 3, H, W) network domain, the coarser fill scaled up.
        masked: (B, 3, H, W) network domain, the plate with the hole set to 0.
        hole: (B, 1, H, W) {0, 1}, 1 = fill.
        Returns (B, 3, H, W): prior + detail (only its hole pixels are used).
    """

    RATES = (1, 2, 4, 8, 16)

    def __init__(self, width: int = 24) -> None:
        super().__init__()
        layers: list[nn.Module] = [GatedConv(7, 2 * width, k=5)]
        layers += [GatedConv(width, 2 * width, k=3, rate=r) for r in self.RATES]
        layers += [GatedConv(width, 3, k=3, gated=False)]
        self.body = nn.Sequential(*layers)
        nn.init.zeros_(layers[-1].conv.weight)

    @property
    def radius(self) -> int:
        """Pixels on each side that an output pixel depends on (the halo a tile needs)."""
        return 2 + sum(self.RATES) + 1

    def forward(self, prior: torch.Tensor, masked: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        return prior + self.body(torch.cat([prior, masked, hole], dim=1))


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
    matte = torch.from_numpy(np.nan_to_num(image.over((shot.matte_channel,), window)[..., 0], nan=0.0))
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


def _grow(box: Box, margin: int, size: tuple[int, int]) -> Box:
    """`box` grown by `margin` pixels on each side, clipped to a canvas of `size` (h, w)."""
    y0, y1, x0, x1 = box
    return max(0, y0 - margin), min(size[0], y1 + margin), max(0, x0 - margin), min(size[1], x1 + margin)


def matte_bounds(hole: np.ndarray) -> Box | None:
    """The bounding box of the True pixels of an (h, w) bool array; None when there are none."""
    rows, cols = np.flatnonzero(hole.any(axis=1)), np.flatnonzero(hole.any(axis=0))
    if not len(rows):
        return None
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


# --- training ----------------------------------------------------------------------------------------

@dataclass
class Crop:
    """The neighbourhood of one frame's matte at one scale, kept for training.

    Attributes:
        image: (3, h, w) float16 network-domain plate.
        hole: (h, w) bool matte.
        band: (N, 2) int32 (row, column) of the pixels near the matte's boundary.
    """

    image: np.ndarray
    hole: np.ndarray
    band: np.ndarray


def boundary_band(hole: np.ndarray, width: int) -> np.ndarray:
    """(N, 2) int32 (row, column) of pixels within `width` of the matte's boundary, on either side."""
    t = torch.from_numpy(hole)[None, None].float()
    grown = masks.dilate(t, width)
    shrunk = 1.0 - masks.dilate(1.0 - t, width)
    return ((grown - shrunk)[0, 0] > 0).nonzero().numpy().astype(np.int32)


def collect_crops(shot: Shot, scales: list[float], patch: int) -> list[list[Crop]]:
    """Read every frame once at full resolution and keep each scale's matte neighbourhood.

    Returns:
        crops[k]: the Crops of scale `scales[k]`, one per frame whose matte is not empty there.
    """
    crops: list[list[Crop]] = [[] for _ in scales]
    for frame in shot.frames:
        original = read_exr(shot.plate.path(frame))
        x, y, w, h = original.data_window
        matte = read_matte_over(shot, frame, (x, y, w, h))
        bounds = matte_bounds(matte)
        if bounds is None:
            continue
        for k, scale in enumerate(scales):
            size = level_size((h, w), scale)
            # Only the neighbourhood is needed: scale that part of the frame, with a margin for the filter.
            margin = math.ceil(patch / max(scale, 1e-6)) + 4
            box = _grow(bounds, margin, (h, w))
            # The same box at this scale, aligned to whole level pixels so that the scaled crop is exact.
            ly0, ly1 = math.floor(box[0] * size[0] / h), math.ceil(box[1] * size[0] / h)
            lx0, lx1 = math.floor(box[2] * size[1] / w), math.ceil(box[3] * size[1] / w)
            fy0, fy1 = ly0 * h / size[0], ly1 * h / size[0]
            fx0, fx1 = lx0 * w / size[1], lx1 * w / size[1]
            sub = (math.floor(fy0), math.ceil(fy1), math.floor(fx0), math.ceil(fx1))
            rgb = plate_rgb(original, sub)
            src = torch.from_numpy(rgb).permute(2, 0, 1)[None]
            region = (ly0, ly1, lx0, lx1)
            if scale >= 1.0:
                image = src
            else:
                # Antialiased scaling of the sub-box, then resampled onto the exact level pixels.
                scaled_size = (max(1, round((sub[1] - sub[0]) * scale)), max(1, round((sub[3] - sub[2]) * scale)))
                small = F.interpolate(src, size=scaled_size, mode="bilinear", antialias=True, align_corners=False)
                image = resample(small, sub, (0, h, 0, w), size, region)
            hole = level_hole(matte, size)[ly0:ly1, lx0:lx1]
            encoded = shot.shaper.encode(image)[0].numpy().astype(np.float16)
            crops[k].append(Crop(image=encoded, hole=np.ascontiguousarray(hole),
                                 band=boundary_band(hole, max(2, patch // 4))))
        del original
    return crops


class PatchSampler:
    """Boundary-aware patches of one scale's crops, with their training holes and priors."""

    def __init__(self, crops: list[Crop], patch: int, step: float, cfg: HiresConfig, rng: np.random.Generator) -> None:
        self.crops, self.step, self.cfg, self.rng = crops, step, cfg, rng
        smallest = (min(c.hole.shape[0] for c in crops), min(c.hole.shape[1] for c in crops))
        self.size = (min(patch, smallest[0]), min(patch, smallest[1]))  # a plate smaller than a patch
        self.with_band = [i for i, c in enumerate(crops) if len(c.band)]

    def _box(self, crop: Crop, centre: tuple[int, int]) -> Box:
        ph, pw = self.size
        h, w = crop.hole.shape
        y0 = min(max(centre[0] - ph // 2, 0), h - ph)
        x0 = min(max(centre[1] - pw // 2, 0), w - pw)
        return y0, y0 + ph, x0, x0 + pw

    def _centre(self, crop: Crop, near_boundary: bool) -> tuple[int, int]:
        if near_boundary and len(crop.band):
            row, col = crop.band[self.rng.integers(len(crop.band))]
            return int(row), int(col)
        return int(self.rng.integers(crop.hole.shape[0])), int(self.rng.integers(crop.hole.shape[1]))

    def draw(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One batch.

        Returns:
            target: (B, 3, p, p) network-domain patches.
            prior: (B, 3, p, p) the patches through the coarser scale and back (their ideal prior).
            masked: (B, 3, p, p) target with the training hole set to 0.
            hole: (B, 1, p, p) {0, 1} the training hole (own matte OR another's boundary matte).
            weight: (B, 1, p, p) {0, 1} where the loss counts: the hole minus the own matte.
        """
        targets, holes, owns = [], [], []
        for _ in range(self.cfg.batch_size):
            crop = self.crops[int(self.rng.integers(len(self.crops)))]
            y0, y1, x0, x1 = self._box(crop, self._centre(crop, self.rng.random() < self.cfg.boundary_share))
            targets.append(crop.image[:, y0:y1, x0:x1].astype(np.float32))
            own = crop.hole[y0:y1, x0:x1]
            if self.rng.random() < 0.2 or not self.with_band:
                other = np.ones_like(own)  # the deep inside of a hole: the prior alone must do
            else:
                donor = self.crops[self.with_band[int(self.rng.integers(len(self.with_band)))]]
                dy0, dy1, dx0, dx1 = self._box(donor, self._centre(donor, True))
                other = donor.hole[dy0:dy1, dx0:dx1]
                other = other[::-1] if self.rng.random() < 0.5 else other
                other = other[:, ::-1] if self.rng.random() < 0.5 else other
            holes.append(own | other)
            owns.append(own)
        target = torch.from_numpy(np.stack(targets))
        hole = torch.from_numpy(np.stack(holes))[:, None].float()
        own = torch.from_numpy(np.stack(owns))[:, None].float()
        small = (max(1, round(self.size[0] / self.step)), max(1, round(self.size[1] / self.step)))
        prior = F.interpolate(F.interpolate(target, size=small, mode="bilinear", antialias=True, align_corners=False),
                              size=self.size, mode="bilinear", align_corners=False)
        return target, prior, target * (1.0 - hole), hole, hole * (1.0 - own)


def fit_level(crops: list[Crop], patch: int, step: float, cfg: HiresConfig, level: int,
              device: torch.device, should_stop: Callable[[], bool] | None = None) -> DetailNet:
    """Train one finer scale's DetailNet on its crops (cfg: a `for_device` copy, no automatic zeros).

    `should_stop` is polled after every step; True raises StopRequested (a finer scale trains in
    minutes, so nothing of it is kept: the run that resumes trains it again).
    """
    torch.manual_seed(cfg.seed + 101 * level)
    net = DetailNet(cfg.width).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    sampler = PatchSampler(crops, patch, step, cfg, np.random.default_rng(cfg.seed + 101 * level))
    started, running = time.perf_counter(), []
    for i in range(1, cfg.steps + 1):
        target, prior, masked, hole, weight = (t.to(device) for t in sampler.draw())
        out = net(prior, masked, hole)
        # L1 where the network fills and the truth is known; mean over those pixels' channels.
        loss = ((out - target).abs() * weight).sum() / (3.0 * weight.sum()).clamp(min=1.0)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        running.append(float(loss.detach()))
        if should_stop and should_stop():
            raise StopRequested(f"stopped while training finer scale {level} (step {i} of {cfg.steps}); "
                                f"run the same command again to finish")
        elapsed = time.perf_counter() - started
        out_of_budget = cfg.budget > 0 and elapsed * (i + 1) / i > cfg.budget * 60.0
        if i % cfg.log_every == 0 or i == cfg.steps or out_of_budget:
            logger.info("scale %d step %d/%d loss %.4f %.3f s/step", level, i, cfg.steps,
                        sum(running) / len(running), elapsed / i)
            running = []
        if out_of_budget:
            logger.info("scale %d: the budget of %g min is spent at step %d of %d", level, cfg.budget, i, cfg.steps)
            break
    net.eval()
    return net


def fit_levels(shot: Shot, cfg: HiresConfig, device: torch.device,
               should_stop: Callable[[], bool] | None = None) -> list[Level]:
    """Plan the finer scales of a shot and train one DetailNet for each; [] when none are needed.

    Args:
        cfg: the progressive settings; automatic (0) values are chosen for `device` here.
        should_stop: polled after every step (StopRequested when True).
    """
    cfg = cfg.for_device(device.type)
    header = read_header(shot.plate.path(shot.frames[0]))  # the data window, without reading pixels
    h, w = header.height, header.width
    scales = plan_scales((h, w), shot.geometry.work, cfg)
    if not scales:
        return []
    # The working scale relative to the canvas: the prior's own resolution.
    work_scale = shot.geometry.work[1] / shot.geometry.full[1]
    logger.info("progressive: %d finer scale(s) %s over %dx%d, patches %d px, tiles %d px",
                len(scales), ", ".join(f"{s:.3f}" for s in scales), w, h, cfg.patch, cfg.tile)
    crops = collect_crops(shot, scales, cfg.patch)
    levels = []
    for k, scale in enumerate(scales):
        coarser = scales[k - 1] if k else work_scale
        size = level_size((h, w), scale)
        if not crops[k]:
            net = DetailNet(cfg.width).to(device).eval()  # every matte is empty: the prior as it is
        else:
            net = fit_level(crops[k], cfg.patch, scale / coarser, cfg, k + 1, device, should_stop)
        crops[k] = []  # free this scale's patches before the next
        levels.append(Level(scale=scale, size=size, net=net))
    return levels


# --- inference ---------------------------------------------------------------------------------------

@torch.no_grad()
def coarse_fill(model: Generator, shot: Shot, frame: int, device: torch.device | str) -> torch.Tensor:
    """(1, 3, h, w) float32 network-domain working-resolution fill of a frame (unpadded, over the display window)."""
    t = shot.index(frame)
    image, hole = shot.images[t:t + 1].to(device), shot.holes[t:t + 1].to(device)
    _, refined = model(image, hole)
    fill = torch.where(hole > 0, refined, image).float().cpu()
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
    chosen = tiles.touching(tiles.grid(height, width, cfg.tile, cfg.overlap, halo), hole)
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


def prepare(shot: Shot, model: Generator, cfg: HiresConfig | None, device: torch.device) -> Compose | None:
    """Train the finer scales a shot needs and return what renders it with them; None when it needs none.

    With `cfg` None or 'off', or 'auto' on a plate not much larger than the working size, nothing
    is trained and None keeps the working-resolution renderer.
    """
    if cfg is None:
        return None
    resolved = cfg.for_device(device.type)
    levels = fit_levels(shot, resolved, device)
    if not levels:
        return None
    return Progressive(model=model, levels=levels, shot=shot, cfg=resolved, device=device)


# --- the farm's shape: finer scales trained once, rendered in chunks ---------------------------------

def save_levels(path: Path, levels: list[Level], cfg: HiresConfig, *, full: tuple[int, int], model_step: int) -> None:
    """Write the trained finer scales beside the generator's checkpoint (atomically).

    Args:
        cfg: the settings they were trained with (as given, automatic zeros kept: `for_device` is
            applied again where they render, so a GPU node may tile wider than the CPU that trained).
        full: (H, W) of the plate's data window they were planned for.
        model_step: the generator's step they were trained on: a longer training makes them stale.
    """
    checkpoint.save(path, {
        "kind": "finer-scales", "hires": cfg.to_dict(), "full": list(full), "model_step": int(model_step),
        "levels": [{"scale": float(lv.scale), "size": list(lv.size), "width": cfg.width,
                    "model": lv.net.state_dict()} for lv in levels],
    })


def load_levels(path: Path, device: torch.device | str = "cpu") -> tuple[list[Level], dict[str, Any]]:
    """Read finer scales written by `save_levels`: the levels (eval mode, on `device`) and the file's data."""
    data = checkpoint.load(path, map_location=device)
    if data.get("kind") != "finer-scales":
        raise CheckpointError(f"{path}: not a finer-scales file; delete it and run `ivi-render train` again")
    levels = []
    for entry in data["levels"]:
        net = DetailNet(int(entry["width"]))
        try:
            net.load_state_dict(entry["model"])
        except RuntimeError as exc:
            raise CheckpointError(f"{path}: does not fit this version's finer-scale network ({exc}); "
                                  f"run `ivi-render train` again") from exc
        levels.append(Level(scale=float(entry["scale"]), size=(int(entry["size"][0]), int(entry["size"][1])),
                            net=net.to(device).eval()))
    return levels, data


def levels_current(path: Path, cfg: HiresConfig, model_step: int) -> bool:
    """Whether `path` holds finer scales trained with `cfg` on the generator at `model_step`."""
    if not Path(path).is_file():
        return False
    try:
        data = checkpoint.load(path)
    except CheckpointError:
        return False  # a damaged file is trained again
    return data.get("hires") == cfg.to_dict() and data.get("model_step") == model_step
