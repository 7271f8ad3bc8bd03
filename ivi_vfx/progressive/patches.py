"""Training the finer scales: boundary-aware patches of the plate, one DetailNet per scale.

`collect_crops` reads every frame once and keeps each scale's matte neighbourhood (`Crop`);
`PatchSampler` draws patches mostly around the matte's boundary with their training holes and
priors; `fit_level` trains one scale, `fit_levels` plans and trains them all.
"""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ivi_vfx import masks
from ivi_vfx.errors import StopRequested
from ivi_vfx.hires import HiresConfig
from ivi_vfx.io.exr import read_exr, read_header
from ivi_vfx.nets.detail import DetailNet
from ivi_vfx.progressive.scales import (
    Box,
    Level,
    level_hole,
    level_size,
    matte_bounds,
    plan_scales,
    plate_rgb,
    read_matte_over,
    resample,
)
from ivi_vfx.shot import Shot

logger = logging.getLogger(__name__)


def _grow(box: Box, margin: int, size: tuple[int, int]) -> Box:
    """`box` grown by `margin` pixels on each side, clipped to a canvas of `size` (h, w)."""
    y0, y1, x0, x1 = box
    return max(0, y0 - margin), min(size[0], y1 + margin), max(0, x0 - margin), min(size[1], x1 + margin)


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
        owned = torch.from_numpy(np.stack(owns))[:, None].float()
        small = (max(1, round(self.size[0] / self.step)), max(1, round(self.size[1] / self.step)))
        prior = F.interpolate(F.interpolate(target, size=small, mode="bilinear", antialias=True, align_corners=False),
                              size=self.size, mode="bilinear", align_corners=False)
        return target, prior, target * (1.0 - hole), hole, hole * (1.0 - owned)


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
    for i in range(1, cfg.scale_steps + 1):
        target, prior, masked, hole, weight = (t.to(device) for t in sampler.draw())
        out = net(prior, masked, hole)
        # L1 where the network fills and the truth is known; mean over those pixels' channels.
        loss = ((out - target).abs() * weight).sum() / (3.0 * weight.sum()).clamp(min=1.0)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        running.append(float(loss.detach()))
        if should_stop and should_stop():
            raise StopRequested(f"stopped while training finer scale {level} (step {i} of {cfg.scale_steps}); "
                                f"run the same command again to finish")
        elapsed = time.perf_counter() - started
        out_of_budget = cfg.budget > 0 and elapsed * (i + 1) / i > cfg.budget * 60.0
        if i % cfg.log_every == 0 or i == cfg.scale_steps or out_of_budget:
            logger.info("scale %d step %d/%d loss %.4f %.3f s/step", level, i, cfg.scale_steps,
                        sum(running) / len(running), elapsed / i)
            running = []
        if out_of_budget:
            logger.info("scale %d: the budget of %g min is spent at step %d of %d", level, cfg.budget, i,
                        cfg.scale_steps)
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
                len(scales), ", ".join(f"{s:.3f}" for s in scales), w, h, cfg.patch_size, cfg.tile_size)
    crops = collect_crops(shot, scales, cfg.patch_size)
    levels = []
    for k, scale in enumerate(scales):
        coarser = scales[k - 1] if k else work_scale
        size = level_size((h, w), scale)
        if not crops[k]:
            net = DetailNet(cfg.width).to(device).eval()  # every matte is empty: the prior as it is
        else:
            net = fit_level(crops[k], cfg.patch_size, scale / coarser, cfg, k + 1, device, should_stop)
        crops[k] = []  # free this scale's patches before the next
        levels.append(Level(scale=scale, size=size, net=net))
    return levels
