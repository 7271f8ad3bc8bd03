"""The progressive high-resolution stage's settings (progressive/), and their JSON round trip."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ivi_vfx.config import JsonConfig, on_gpu


@dataclass
class HiresConfig(JsonConfig):
    """Progressive high-resolution inpainting (issue 7): finer scales on top of the working-resolution fill.

    Each finer scale is a small residual network trained on patches drawn mostly around the matte's
    boundary, that takes the upsampled coarser fill as a prior for the hole; inference runs over
    overlapping tiles that touch the matte. 0 in a size or count field means "chosen from the device".
    """

    scales: str = "auto"
    """'auto' (on when the plate is at least `min_ratio` times the working size), 'off', a number of
    finer scales ('2'), or their sizes as fractions of the full resolution, ending with 1 ('0.25,0.5,1')."""
    patch_size: int = 0
    """Side of the square training patches at each finer scale, in pixels; 0: 64 on a CPU, 128 on a GPU."""
    tile_size: int = 0
    """Side of the inference tiles' cores, in pixels; 0: 384 on a CPU, 1024 on a GPU. Memory (host or GPU)
    of a tile grows with its square, never with the plate."""
    overlap: int = 32
    """Pixels that neighbouring tiles share and blend over."""
    scale_steps: int = 0
    """Training steps of each finer scale; 0: 300 on a CPU, 2000 on a GPU."""
    budget: float = 0.0
    """Most minutes of training for each finer scale; 0: no limit, except with automatic steps on a CPU,
    where it is 2 (steps given explicitly are run in full, which makes a run reproducible)."""
    batch_size: int = 8
    """Patches per step."""
    width: int = 24
    """Channels of the finer-scale network's layers."""
    lr: float = 1e-3
    """Adam learning rate of the finer-scale networks."""
    boundary_share: float = 0.8
    """Share of the patches centred on the matte's boundary band (the rest anywhere near the matte)."""
    min_ratio: float = 3.0
    """With scales 'auto': the plate's longest side must be at least this many times the working size
    (and at least 512 pixels) for finer scales to be added."""
    max_step: float = 4.0
    """With 'auto' or a count: the largest size ratio between two consecutive scales."""
    seed: int = 0
    """Seed of the patch draws and the networks' initial weights."""
    log_every: int = 50
    """Steps between two log lines."""

    def _checks(self) -> list[tuple[bool, str]]:
        return [
            (_valid_scales(self.scales), "scales must be 'auto', 'off', a count such as 2, or fractions of the "
                                         "full resolution ending with 1 such as 0.25,0.5,1"),
            (self.patch_size == 0 or self.patch_size >= 16, "patch_size must be 0 (auto) or at least 16 pixels"),
            (self.overlap >= 0, "overlap must be 0 or more pixels"),
            (self.tile_size == 0 or self.tile_size > max(self.overlap, 16),
             "tile_size must be 0 (auto) or larger than overlap and 16"),
            (self.scale_steps >= 0 and self.budget >= 0, "scale_steps and budget must be 0 (auto) or more"),
            (self.batch_size >= 1 and self.width >= 4, "batch_size must be at least 1 and width at least 4"),
            (self.lr > 0, "lr must be positive"),
            (0.0 <= self.boundary_share <= 1.0, "boundary_share must lie between 0 and 1"),
            (self.min_ratio >= 1.0 and self.max_step > 1.0, "min_ratio must be at least 1 and max_step above 1"),
            (self.log_every >= 1, "log_every must be at least 1"),
        ]

    RENAMED = {"patch": "patch_size", "tile": "tile_size", "steps": "scale_steps"}
    """Fields of scales.ckpt files before they were named as their options (--patch-size ...)."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HiresConfig:
        """JsonConfig.from_dict, reading the earlier field names too."""
        return super().from_dict({cls.RENAMED.get(k, k): v for k, v in data.items()})

    def for_device(self, device: str) -> HiresConfig:
        """A copy with the automatic (0) sizes and lengths chosen for `device` ('cpu', 'cuda', ...)."""
        gpu = on_gpu(device)
        return dataclasses.replace(
            self, patch_size=self.patch_size or (128 if gpu else 64),
            tile_size=self.tile_size or (1024 if gpu else 384),
            scale_steps=self.scale_steps or (2000 if gpu else 300),
            budget=self.budget or (2.0 if not gpu and not self.scale_steps else 0.0))


def _valid_scales(text: str) -> bool:
    if text in ("auto", "off") or text.isdigit():
        return True
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        return False
    return all(0 < a < b for a, b in zip(values, values[1:])) and values[-1] == 1.0 and values[0] > 0
