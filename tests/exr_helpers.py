"""Test helpers: write tiny EXRs with OpenImageIO, read EXRs back with the OpenEXR package."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import OpenEXR
import OpenImageIO as oiio


def write_test_exr(path: Path, pixels: np.ndarray, channels: tuple[str, ...] = ("R", "G", "B", "A"),
                   pixel_type: str = "half", compression: str = "zip", tile: tuple[int, int] | None = None,
                   data_window: tuple[int, int] | None = None,
                   display_window: tuple[int, int, int, int] | None = None,
                   attrs: dict[str, Any] | None = None) -> None:
    """Write (h, w, c) pixels; data_window is the (x, y) origin of the pixels, display_window (x, y, w, h)."""
    pixels = np.ascontiguousarray(pixels, np.float32)
    h, w, c = pixels.shape
    spec = oiio.ImageSpec(w, h, c, pixel_type)
    spec.channelnames = tuple(channels[:c])
    spec.alpha_channel = list(channels).index("A") if "A" in channels[:c] else -1
    spec.attribute("compression", compression)
    if data_window:
        spec.x, spec.y = data_window
    if display_window:
        spec.full_x, spec.full_y, spec.full_width, spec.full_height = display_window
    if tile:
        spec.tile_width, spec.tile_height = tile
    for key, value in (attrs or {}).items():
        if isinstance(value, tuple) and value[0] == "timecode":
            spec.attribute(key, oiio.TypeTimeCode, value[1])
        else:
            spec.attribute(key, value)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec), out.geterror()
    assert out.write_image(pixels), out.geterror()
    out.close()


def read_with_openexr(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The header and the channels ({name: (h, w) array in the file's type}) as the OpenEXR package reads them."""
    f = OpenEXR.File(str(path), separate_channels=True)
    return f.header(), {name: ch.pixels for name, ch in f.channels().items()}
