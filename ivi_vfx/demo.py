"""A small shot made from nothing (no downloads), with ground truth, and a before/after picture.

The scene: a camera pans across a wall of coloured panels, stripes and a bright lamp (values
above 1, as a linear plate has), while a textured disc crosses the frame. The disc's matte is
what the demo removes; what lies under it is seen in other frames, which is the case the
method is built for. Everything is scene-linear half float, frames 1001 on, as on a VFX shot.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import OpenImageIO as oiio

from ivi_vfx.errors import ExrWriteError

FIRST_FRAME = 1001


@dataclass(frozen=True)
class DemoShot:
    """Where the demo shot was written."""

    plate: str
    """Plate pattern, RGBA half: the disc composited over the wall."""
    mask: str
    """Matte pattern, one channel A: 1 where the disc is (dilated by 2 px)."""
    truth: str
    """The wall without the disc, RGBA half."""
    frames: tuple[int, ...]


def _wall(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """(height, width, 3) float32 scene-linear: panels, stripes, a gradient and a lamp."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    wall = np.stack([0.05 + 0.10 * y / height, 0.06 + 0.05 * x / width, 0.12 - 0.06 * y / height], -1)
    for _ in range(width // 6):
        h, w = rng.integers(6, height // 2), rng.integers(6, 30)
        y0, x0 = rng.integers(0, height - h), rng.integers(0, width - w)
        wall[y0:y0 + h, x0:x0 + w] = rng.uniform(0.02, 0.6, 3)
    stripes = (np.sin(x / 3.0) > 0.3) & (y > height * 0.8)
    wall[stripes] = (0.7, 0.65, 0.5)
    lamp = (x - width * 0.3) ** 2 + (y - height * 0.2) ** 2 < 9
    wall[lamp] = (6.0, 5.0, 3.0)  # a highlight well above 1
    grain = rng.normal(0, 0.003, wall.shape).astype(np.float32)
    return (wall + grain).astype(np.float32)


def make_shot(height: int = 72, width: int = 128, count: int = 16, seed: int = 7) -> tuple[
        np.ndarray, np.ndarray, np.ndarray]:
    """The demo shot in memory.

    Returns:
        plates (T, H, W, 3), mattes (T, H, W) {0, 1}, truths (T, H, W, 3): float32 scene-linear.
    """
    rng = np.random.default_rng(seed)
    wall = _wall(height, width * 2, rng)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    radius = height * 0.2
    plates, mattes, truths = [], [], []
    for t in range(count):
        s = t / max(count - 1, 1)
        pan = int(round(s * width * 0.6))
        truth = wall[:, pan:pan + width]
        cy, cx = height * (0.5 + 0.15 * np.sin(6.28 * s)), width * (0.15 + 0.7 * s)
        inside = (x - cx) ** 2 + (y - cy) ** 2 < radius ** 2
        checker = ((np.floor((x - cx) / 4) + np.floor((y - cy) / 4)) % 2)[..., None]
        disc = np.where(checker > 0, (0.8, 0.1, 0.1), (0.9, 0.9, 0.2)).astype(np.float32)
        plates.append(np.where(inside[..., None], disc, truth))
        grown = (x - cx) ** 2 + (y - cy) ** 2 < (radius + 2) ** 2
        mattes.append(grown.astype(np.float32))
        truths.append(truth)
    return np.stack(plates), np.stack(mattes), np.stack(truths)


def _write(path: Path, pixels: np.ndarray, channels: tuple[str, ...]) -> None:
    spec = oiio.ImageSpec(pixels.shape[1], pixels.shape[0], len(channels), "half")
    spec.channelnames = channels
    spec.attribute("compression", "zip")
    out = oiio.ImageOutput.create(str(path))
    if out is None or not out.open(str(path), spec) or not out.write_image(np.ascontiguousarray(pixels)):
        raise ExrWriteError(f"cannot write {path}: {oiio.geterror()}; check the --out folder")
    out.close()


def write_shot(folder: Path, **kwargs: int) -> DemoShot:
    """Write the demo shot as EXR sequences under `folder`; returns their patterns."""
    folder.mkdir(parents=True, exist_ok=True)
    plates, mattes, truths = make_shot(**kwargs)
    frames = tuple(range(FIRST_FRAME, FIRST_FRAME + len(plates)))
    ones = np.ones(plates.shape[:3] + (1,), np.float32)
    for i, frame in enumerate(frames):
        _write(folder / f"plate.{frame:04d}.exr", np.concatenate([plates[i], ones[i]], -1), ("R", "G", "B", "A"))
        _write(folder / f"mask.{frame:04d}.exr", mattes[i][..., None], ("A",))
        _write(folder / f"truth.{frame:04d}.exr", np.concatenate([truths[i], ones[i]], -1), ("R", "G", "B", "A"))
    return DemoShot(plate=str(folder / "plate.####.exr"), mask=str(folder / "mask.####.exr"),
                    truth=str(folder / "truth.####.exr"), frames=frames)


def to_display(linear: np.ndarray) -> np.ndarray:
    """Scene-linear RGB -> 8-bit sRGB for a picture (clipped; a viewing transform only)."""
    x = np.clip(np.nan_to_num(linear, nan=0.0), 0.0, 1.0)
    srgb = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)
    return (srgb * 255 + 0.5).astype(np.uint8)


def write_before_after(path: Path, rows: list[list[np.ndarray]], scale: int = 2) -> None:
    """A PNG grid of (H, W, 3) scene-linear images: one row per list (e.g. before, after), frames across."""
    gap = 4
    tiles = [[np.kron(to_display(img), np.ones((scale, scale, 1), np.uint8)) for img in row] for row in rows]
    th, tw = tiles[0][0].shape[:2]
    cols = max(len(r) for r in tiles)
    sheet = np.full((len(tiles) * (th + gap) - gap, cols * (tw + gap) - gap, 3), 32, np.uint8)
    for r, row in enumerate(tiles):
        for c, tile in enumerate(row):
            sheet[r * (th + gap):r * (th + gap) + th, c * (tw + gap):c * (tw + gap) + tw] = tile
    spec = oiio.ImageSpec(sheet.shape[1], sheet.shape[0], 3, "uint8")
    out = oiio.ImageOutput.create(str(path))
    if out is None or not out.open(str(path), spec) or not out.write_image(sheet):
        raise ExrWriteError(f"cannot write {path}: {oiio.geterror()}; check the --out folder")
    out.close()


def hole_psnr(result: np.ndarray, truth: np.ndarray, matte: np.ndarray) -> float:
    """PSNR in dB inside the matte, on display-referred sRGB in [0, 1] (as the quality harness scores)."""
    a = to_display(result).astype(np.float64) / 255
    b = to_display(truth).astype(np.float64) / 255
    mse = float(((a - b) ** 2)[matte > 0].mean()) if matte.any() else 0.0
    return 10 * np.log10(1.0 / max(mse, 1e-12))
