"""Test helpers: write tiny EXRs with OpenImageIO, read EXRs back with the OpenEXR package.

The OpenEXR package is a second, independent implementation: tests check what ivi_vfx writes with
it rather than with OpenImageIO, the library ivi_vfx itself uses.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import OpenEXR
import OpenImageIO as oiio


def write_test_exr(path: Path | str, pixels: np.ndarray, channels: Sequence[str] = ("R", "G", "B", "A"),
                   pixel_type: str | Sequence[str] = "half", compression: str = "zip",
                   tile: int | tuple[int, int] | None = None, data_window: tuple[int, int] | None = None,
                   display_window: tuple[int, int, int, int] | None = None,
                   attrs: Mapping[str, Any] | None = None) -> None:
    """Write an EXR with OpenImageIO.

    Args:
        path: the file to write (folders are created).
        pixels: (h, w, c) or (h, w) values, converted to ``pixel_type`` by OIIO.
        channels: channel names; the first c are used.
        pixel_type: 'half' or 'float', or one type per channel (mixed types).
        compression: 'zip', 'piz', 'none', 'dwaa', 'dwaa:45', ...
        tile: tile size (n or (w, h)); None writes scanlines.
        data_window: (x, y) origin of the pixels; default (0, 0).
        display_window: (x, y, w, h); default the data window's size at (0, 0).
        attrs: header attributes: str, int, float, or ('timecode', (u32, u32)) for a SMPTE timecode.
    """
    pixels = np.ascontiguousarray(pixels, np.float32)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    h, w, c = pixels.shape
    names = tuple(channels)[:c]
    assert len(names) == c, f"{c} channels of pixels but only names {tuple(channels)}"
    types = [pixel_type] * c if isinstance(pixel_type, str) else list(pixel_type)
    assert len(types) == c, f"{c} channels but pixel types {types}"

    spec = oiio.ImageSpec(w, h, c, max(types, key=lambda t: oiio.TypeDesc(t).size()))
    if len(set(types)) > 1:
        spec.channelformats = tuple(oiio.TypeDesc(t) for t in types)
    spec.channelnames = names
    spec.alpha_channel = names.index("A") if "A" in names else -1
    spec.attribute("compression", compression)
    spec.x, spec.y = data_window or (0, 0)
    spec.full_x, spec.full_y, spec.full_width, spec.full_height = display_window or (0, 0, w, h)
    if tile:
        spec.tile_width, spec.tile_height = (tile, tile) if isinstance(tile, int) else tile
    for key, value in (attrs or {}).items():
        if isinstance(value, tuple) and value[0] == "timecode":
            spec.attribute(key, oiio.TypeTimeCode, tuple(value[1]))
        else:
            spec.attribute(key, value)

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    out = oiio.ImageOutput.create("openexr")  # EXR whatever the suffix
    assert out is not None, oiio.geterror()
    assert out.open(str(path), spec), out.geterror()
    assert out.write_image(pixels), out.geterror()
    assert out.close(), out.geterror()


def read_with_openexr(path: Path | str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read an EXR with the OpenEXR package.

    Returns:
        The header ({'dataWindow': (array([x0, y0]), array([x1, y1])) inclusive, 'compression',
        'timeCode', custom attributes, ...}) and the channels ({name: (h, w) array in the file's
        type: float16 for half, float32 for float}).
    """
    f = OpenEXR.File(str(path), separate_channels=True)
    return dict(f.header()), {name: ch.pixels for name, ch in f.channels().items()}
