"""EXR frames through OpenImageIO: channels by name, data/display windows, pixel types, metadata.

A frame is read whole into float32 (half -> float32 is exact for every half code, NaN and inf
included) together with its ImageSpec, which carries everything else: windows, per-channel
types, tiling, compression, timecode and custom attributes. Writing starts from that spec, so
what the tool does not change, it keeps.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import OpenImageIO as oiio

from ivi_vfx.errors import ChannelError, ExrReadError, ExrWriteError, OutputExistsError, ShapeError

logger = logging.getLogger(__name__)

# Compressions that give back the exact bits. pxr24 is exact for half but rounds float32, so it
# counts only when no channel is float32; b44 and dwa are lossy.
LOSSLESS_COMPRESSIONS = frozenset({"none", "rle", "zips", "zip", "piz"})


@dataclass
class ExrImage:
    """One EXR frame.

    Attributes:
        path: where it was read from.
        spec: the header as read (windows, channel names and types, tiling, compression, metadata).
        pixels: (h, w, c) float32 over the data window, channels in `spec.channelnames` order.
    """

    path: Path
    spec: oiio.ImageSpec
    pixels: np.ndarray

    @property
    def channel_names(self) -> tuple[str, ...]:
        return tuple(self.spec.channelnames)

    @property
    def data_window(self) -> tuple[int, int, int, int]:
        """(x, y, width, height) of the stored pixels."""
        return self.spec.x, self.spec.y, self.spec.width, self.spec.height

    @property
    def display_window(self) -> tuple[int, int, int, int]:
        """(x, y, width, height) of the format."""
        return self.spec.full_x, self.spec.full_y, self.spec.full_width, self.spec.full_height

    def channel_index(self, name: str) -> int:
        if name not in self.channel_names:
            raise ChannelError(f"{self.path} has no channel {name!r} (channels: {', '.join(self.channel_names)}); "
                               f"pass --mask-channel with one of those")
        return self.channel_names.index(name)

    def channel(self, name: str) -> np.ndarray:
        """(h, w) one channel over the data window."""
        return self.pixels[..., self.channel_index(name)]

    def display(self, names: Sequence[str]) -> np.ndarray:
        """(H, W, len(names)) float32 over the display window; 0 where no data is stored, data beyond it cropped."""
        index = [self.channel_index(n) for n in names]
        x, y, width, height = self.data_window
        fx, fy, full_width, full_height = self.display_window
        out = np.zeros((full_height, full_width, len(names)), np.float32)
        x0, y0 = max(x, fx), max(y, fy)
        x1, y1 = min(x + width, fx + full_width), min(y + height, fy + full_height)
        if x1 > x0 and y1 > y0:
            out[y0 - fy:y1 - fy, x0 - fx:x1 - fx] = self.pixels[y0 - y:y1 - y, x0 - x:x1 - x][..., index]
        return out


def _open(path: Path) -> oiio.ImageInput:
    if not path.is_file():
        raise ExrReadError(f"{path} does not exist; check the path")
    inp = oiio.ImageInput.open(str(path))
    if inp is None:
        raise ExrReadError(f"cannot read {path} as an EXR ({oiio.geterror().strip()}): the file is truncated or "
                           f"not an EXR; re-render or replace it")
    if inp.format_name() != "openexr":
        inp.close()
        raise ExrReadError(f"{path} is a {inp.format_name()} file, not an EXR; convert it to EXR (e.g. with oiiotool)")
    return inp


def read_header(path: Path | str) -> oiio.ImageSpec:
    """The header of an EXR without its pixels."""
    inp = _open(Path(path))
    try:
        return oiio.ImageSpec(inp.spec())
    finally:
        inp.close()


def read_exr(path: Path | str) -> ExrImage:
    """Read every channel of an EXR's first part over its data window (see ExrImage)."""
    path = Path(path)
    inp = _open(path)
    try:
        spec = oiio.ImageSpec(inp.spec())
        pixels = inp.read_image(0, 0, 0, spec.nchannels, "float")
        # A truncated file opens fine and fails here, with None or an error left on the reader.
        error = inp.geterror() if pixels is None or inp.has_error else ""
    finally:
        inp.close()
    if pixels is None or error:
        raise ExrReadError(f"cannot read the pixels of {path} ({(error or oiio.geterror()).strip()}): the file is "
                           f"truncated or damaged; re-render or replace it")
    pixels = np.asarray(pixels, np.float32).reshape(spec.height, spec.width, spec.nchannels)
    return ExrImage(path=path, spec=spec, pixels=pixels)


def _channel_types(spec: oiio.ImageSpec) -> list[str]:
    formats = spec.channelformats or [spec.format] * spec.nchannels
    return [str(f) for f in formats]


def output_spec(template: oiio.ImageSpec, channel_names: Sequence[str]) -> oiio.ImageSpec:
    """The header to write a changed frame with: the template's all through, with these channels.

    A channel keeps its template type (new ones take the template's main type); windows, tiling,
    timecode and every other attribute are kept; a lossy compression becomes zip, since the
    pixels the tool passes through must keep their exact bits.
    """
    spec = oiio.ImageSpec(template)
    old = dict(zip(template.channelnames, _channel_types(template)))
    types = [old.get(name, str(template.format)) for name in channel_names]
    spec.nchannels = len(channel_names)
    spec.channelnames = tuple(channel_names)
    spec.alpha_channel = list(channel_names).index("A") if "A" in channel_names else -1
    spec.z_channel = -1
    if len(set(types)) == 1:
        spec.set_format(oiio.TypeDesc(types[0]))
        spec.channelformats = ()
    else:
        spec.channelformats = tuple(oiio.TypeDesc(t) for t in types)
    spec.erase_attribute("oiio:subimages")
    compression = str(template.get_string_attribute("compression", "zip"))
    base = compression.split(":")[0]
    lossless = base in LOSSLESS_COMPRESSIONS or (base == "pxr24" and "float" not in types)
    if not lossless:
        logger.warning("the plate is %s-compressed (lossy); writing zip so untouched pixels keep their bits",
                       compression)
        spec.attribute("compression", "zip")
    return spec


def check_writable(folder: Path) -> None:
    """Make sure `folder` exists (creating it) and can take files, before any work is done."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExrWriteError(f"cannot create the output folder {folder} ({exc.strerror}); choose another --out") from exc
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ExrWriteError(f"the output folder {folder} is not writable; fix its permissions or choose another --out")


def write_exr(path: Path | str, pixels: np.ndarray, spec: oiio.ImageSpec, *, overwrite: bool = False) -> None:
    """Write a frame atomically: a hidden temporary file in the same folder, then a rename.

    Args:
        path: the frame's file.
        pixels: (h, w, c) float32 over the spec's data window, channels in the spec's order;
            converted to the spec's (per-channel) pixel types on write.
        spec: the header (see output_spec).
        overwrite: replace an existing file.
    """
    path = Path(path)
    if pixels.shape != (spec.height, spec.width, spec.nchannels):
        raise ShapeError(f"{path}: pixels of shape {pixels.shape} do not fit the header "
                         f"({spec.height}, {spec.width}, {spec.nchannels})")
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} exists; pass --overwrite to replace it, or choose another --out")
    check_writable(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    out = oiio.ImageOutput.create("openexr")
    try:
        ok = out.open(str(tmp), spec) and out.write_image(np.ascontiguousarray(pixels, np.float32))
        error = "" if ok else out.geterror()
        out.close()
        if not ok:
            raise ExrWriteError(f"cannot write {path} ({error.strip()}); check the disk and the --out folder")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
