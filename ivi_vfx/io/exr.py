"""EXR frames in and out through OpenImageIO, keeping everything a compositor relies on.

Reading gives float32 pixels over the file's data window plus the header as OIIO reads it (windows,
channel names and types, compression, tiling, metadata). Writing takes a header derived from the
input frame (``output_spec``) so the clean plate keeps the plate's windows, pixel types, tiling,
timecode and custom attributes, with a lossless compression so untouched pixels pass through
bit-exact (half -> float32 -> half is exact for every half code, NaN and inf included).

OIIO never raises: ``ImageInput.open``/``ImageOutput.create`` return None (message in
``oiio.geterror()``) and ``open``/``read_image``/``write_image`` return False/None (message in
``.geterror()``). Every call is checked here and turned into an ``ExrReadError``/``ExrWriteError``
that names the file and the fix.
"""
from __future__ import annotations

import contextlib
import logging
import os
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import OpenImageIO as oiio

from ivi_vfx.errors import ChannelError, ExrReadError, ExrWriteError, IviError, OutputExistsError, ShapeError

logger = logging.getLogger(__name__)

# Lossless for every pixel type. pxr24 is lossless for half (and uint) but rounds float32 to 24 bits,
# so it only counts as lossless when every channel is half; b44/b44a/dwaa/dwab are lossy.
LOSSLESS_COMPRESSIONS = frozenset({"none", "rle", "zips", "zip", "piz"})
FALLBACK_COMPRESSION = "zip"
_EXR_FORMAT = "openexr"  # OIIO's format name; also picks the writer regardless of the file's suffix


@dataclass
class ExrImage:
    """One EXR frame in memory.

    Attributes:
        path: the file it was read from.
        spec: the header as read (windows, channel names and types, compression, tiling, metadata).
        pixels: (h, w, c) float32 over the DATA window, channels in ``spec.channelnames`` order
            (OIIO puts R, G, B, A first, then the rest in file order). Half data is exact in float32.
    """

    path: Path
    spec: oiio.ImageSpec
    pixels: np.ndarray

    @property
    def channel_names(self) -> tuple[str, ...]:
        """The channel names, in the order of the last axis of ``pixels``."""
        return tuple(self.spec.channelnames)

    @property
    def data_window(self) -> tuple[int, int, int, int]:
        """(x, y, width, height) of the stored pixels, in pixels; x, y may be negative (overscan)."""
        s = self.spec
        return s.x, s.y, s.width, s.height

    @property
    def display_window(self) -> tuple[int, int, int, int]:
        """(x, y, width, height) of the format (Nuke's 'format'), in pixels."""
        s = self.spec
        return s.full_x, s.full_y, s.full_width, s.full_height

    def channel_index(self, name: str) -> int:
        """Index of channel ``name`` along the last axis of ``pixels``.

        Raises:
            ChannelError: no such channel; the message names the file and the channels it has.
        """
        names = self.channel_names
        if name not in names:
            # The one user-chosen channel is the matte's, so the fix names its option.
            example = names[0] if names else "A"
            raise ChannelError(f"{self.path} has no channel '{name}' (it has: {', '.join(names)}); "
                               f"choose one of those (for a matte: --mask-channel {example})")
        return names.index(name)

    def channel(self, name: str) -> np.ndarray:
        """(h, w) float32 view of one channel over the data window."""
        return self.pixels[..., self.channel_index(name)]

    def display(self, names: Sequence[str]) -> np.ndarray:
        """Channels ``names`` over the DISPLAY window.

        Pixels of the display window outside the data window are 0; data outside the display
        window (overscan) is cropped away.

        Returns:
            (H, W, len(names)) float32, H and W the display window's height and width.

        Raises:
            ChannelError: a name is not a channel of the file.
        """
        return self.over(names, self.display_window)

    def over(self, names: Sequence[str], window: tuple[int, int, int, int]) -> np.ndarray:
        """Channels ``names`` over any ``window`` (x, y, width, height) in absolute pixel coordinates.

        Pixels of the window outside the data window are 0; data outside the window is cropped away.
        ``display`` is this over the display window; high-resolution filling uses it over another
        frame's data window (a matte under a plate with overscan).

        Returns:
            (height, width, len(names)) float32.

        Raises:
            ChannelError: a name is not a channel of the file.
        """
        indices = [self.channel_index(n) for n in names]
        fx, fy, fw, fh = window
        dx, dy, dw, dh = self.data_window
        out = np.zeros((fh, fw, len(indices)), np.float32)
        # The overlap of the two windows, in absolute pixel coordinates.
        x0, y0 = max(dx, fx), max(dy, fy)
        x1, y1 = min(dx + dw, fx + fw), min(dy + dh, fy + fh)
        if x1 > x0 and y1 > y0:
            out[y0 - fy:y1 - fy, x0 - fx:x1 - fx] = self.pixels[y0 - dy:y1 - dy, x0 - dx:x1 - dx][..., indices]
        return out


def read_exr(path: str | os.PathLike[str]) -> ExrImage:
    """Read every channel of an EXR (first part only) as float32 over its data window.

    Raises:
        ExrReadError: the file is missing, not an image, not an EXR, deep, or truncated/corrupt.
    """
    path = Path(path)
    with _read_errors_named(path):
        inp = _open_input(path)
        try:
            spec = oiio.ImageSpec(inp.spec())  # a copy that outlives the reader
            pixels = inp.read_image(0, 0, 0, spec.nchannels, oiio.FLOAT)
            # A truncated file opens fine (the header is intact) and only fails here.
            if pixels is None or inp.has_error:
                raise ExrReadError(_unreadable(path, _error_text(inp.geterror) or "no pixel data"))
        finally:
            inp.close()
        pixels = np.ascontiguousarray(pixels, dtype=np.float32).reshape(spec.height, spec.width, spec.nchannels)
    return ExrImage(path, spec, pixels)


def read_header(path: str | os.PathLike[str]) -> oiio.ImageSpec:
    """Read an EXR's header only (fast; does not detect truncated pixel data).

    Raises:
        ExrReadError: the file is missing, not an image, not an EXR, or deep.
    """
    path = Path(path)
    with _read_errors_named(path):
        inp = _open_input(path)
        try:
            return oiio.ImageSpec(inp.spec())
        finally:
            inp.close()


def output_spec(template: oiio.ImageSpec, channel_names: Sequence[str], *,
                source: str | os.PathLike[str] | None = None) -> oiio.ImageSpec:
    """The header to write a derived frame with: the template's, with other channels.

    Keeps all metadata (timecode, FPS, camera matrices, custom attributes), the data and display
    windows and the tiling. `DateTime` (EXR's capDate) stays the template's; a template without one
    takes `source`'s modification time, since OIIO would otherwise stamp the moment of writing and a
    frame written again from the same inputs would differ by those bytes. Each channel keeps its
    template pixel type; a channel the template lacks takes the template's format. The compression
    stays the template's if it is lossless for the channel types, else it becomes zip (with a
    warning) so untouched pixels pass through bit-exact.

    Args:
        template: the header of the input frame, e.g. ``read_exr(...).spec``.
        channel_names: the channels to write, in the order of the pixels' last axis.
        source: the file the template was read from (its DateTime when it has none), or None.

    Returns:
        A new spec; the template is not changed.
    """
    names = tuple(channel_names)
    if not names or len(set(names)) != len(names):
        raise ValueError(f"output channels must be unique and non-empty, got {names}")
    types = _channel_types(template)
    out_types = [types.get(name, template.format) for name in names]

    spec = oiio.ImageSpec(template)  # copies windows, tiling and every attribute
    spec.nchannels = len(names)
    spec.channelnames = names
    widest = max(out_types, key=lambda t: t.size())
    spec.set_format(widest)  # also clears channelformats
    if any(t != widest for t in out_types):
        spec.channelformats = tuple(out_types)
    spec.alpha_channel = names.index("A") if "A" in names else -1
    spec.z_channel = names.index("Z") if "Z" in names else -1
    spec.erase_attribute("oiio:subimages")  # describes the input file, and we write one part
    if source is not None and not spec.get_string_attribute("DateTime", ""):
        # Local time, the form OIIO writes DateTime in.
        spec.attribute("DateTime", time.strftime("%Y:%m:%d %H:%M:%S", time.localtime(os.stat(source).st_mtime)))
    _set_lossless_compression(spec, template, out_types)
    return spec


def write_exr(path: str | os.PathLike[str], pixels: np.ndarray, spec: oiio.ImageSpec, *,
              overwrite: bool = False, parts_from: str | os.PathLike[str] | None = None) -> None:
    """Write one EXR atomically: to a hidden temp file in the same folder, then renamed into place.

    A killed or failed write never leaves a partial frame under ``path``; the temp file
    (``.<name>.<random>.tmp``) never matches a frame pattern and is removed on failure.

    Args:
        path: the file to write (always EXR, whatever its suffix).
        pixels: (h, w, c) float pixels over ``spec``'s data window, channels in ``spec.channelnames``
            order; converted by OIIO to each channel's type in ``spec`` (half, float).
        spec: the header, usually from ``output_spec``.
        overwrite: replace an existing file.
        parts_from: an input EXR whose parts after the first are copied after ``pixels`` as they are
            (raw pixel data: bit for bit whatever their types, uint included), so that a multipart
            frame's other parts pass through; None, or a single-part file, writes one part.

    Raises:
        ExrReadError: a part of ``parts_from`` cannot be read (names it).
        ShapeError: ``pixels`` does not match the spec's data window and channel count.
        OutputExistsError: ``path`` exists and ``overwrite`` is False.
        ExrWriteError: the folder cannot be created or written, or OIIO fails to write.
    """
    path = Path(path)
    pixels = _checked_pixels(path, pixels, spec)
    if path.is_dir():
        raise ExrWriteError(f"cannot write {path}: it is a folder; choose another --out")
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} exists; pass --overwrite to replace it, or choose another --out")
    _make_folder(path.parent)
    tmp = path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
    try:
        _write_file(tmp, pixels, spec, path, None if parts_from is None else Path(parts_from))
        try:
            os.replace(tmp, path)
        except OSError as exc:
            raise ExrWriteError(f"cannot move the finished {tmp.name} to {path} ({exc.strerror or exc}); "
                                f"check the permissions of {path.parent} or choose another --out") from exc
    except BaseException:
        with contextlib.suppress(OSError):  # never hide the real error behind a cleanup error
            tmp.unlink(missing_ok=True)  # also on KeyboardInterrupt: no stray temp files
        raise
    logger.debug("wrote %s", path)


def check_writable(folder: str | os.PathLike[str]) -> None:
    """Fail early, before any work, if outputs cannot be written into ``folder``.

    Creates the folder (and its parents) when missing, then creates and removes a hidden probe file:
    the only test that holds for root, read-only mounts and ACLs alike.

    Raises:
        ExrWriteError: the folder cannot be created or written; the message names it and the fix.
    """
    folder = Path(folder)
    _make_folder(folder)
    try:
        fd, probe = tempfile.mkstemp(prefix=".ivi-write-check.", suffix=".tmp", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ExrWriteError(f"cannot write into the output folder {folder} ({exc.strerror or exc}); "
                            f"fix its permissions or choose another --out") from exc


# --- reading helpers -------------------------------------------------------------------------------


def _open_input(path: Path) -> oiio.ImageInput:
    """An open reader on the first part of an EXR; the caller closes it."""
    if not path.exists():
        raise ExrReadError(f"{path} does not exist; check the path and the frame range")
    if path.is_dir():
        raise ExrReadError(f"{path} is a folder, not an EXR file; check the path")
    inp = oiio.ImageInput.open(str(path))
    if inp is None:
        raise ExrReadError(_unreadable(path, _error_text(oiio.geterror)))
    try:
        _check_input(path, inp)
    except BaseException:
        inp.close()
        raise
    return inp


def _check_input(path: Path, inp: oiio.ImageInput) -> None:
    """Reject what is an image but not a flat EXR (a PNG named .exr, deep data)."""
    fmt = inp.format_name()
    if fmt != _EXR_FORMAT:
        raise ExrReadError(f"{path} is a {fmt} image, not an EXR; convert it "
                           f"(oiiotool {path.name} -d half -o out.exr) or replace it")
    spec = inp.spec()
    try:
        # Every later use of the file needs its channel names as text. The bindings decode a name that is not
        # UTF-8 with surrogate escapes (or raise): such a name cannot be written back, so it is damage.
        for name in spec.channelnames:
            name.encode("utf-8")
    except UnicodeError:
        raise ExrReadError(_unreadable(path, "a channel name is not valid text: the header is damaged")) from None
    if spec.deep:
        raise ExrReadError(f"{path} is a deep EXR; flatten it (Nuke DeepToImage) and write a flat EXR")
    parts = spec.get_int_attribute("oiio:subimages", 1)
    if parts > 1:
        logger.debug("%s has %d parts; the first (channels %s) is read, the others pass through to the output",
                     path, parts, ", ".join(spec.channelnames))


@contextlib.contextmanager
def _read_errors_named(path: Path) -> Iterator[None]:
    """Turn whatever OpenImageIO's bindings raise on a damaged file into an ExrReadError naming it.

    OIIO reports most failures through geterror(), but a damaged header can also make its bindings
    raise (a UnicodeDecodeError when a flipped byte leaves a name or a message that is not UTF-8,
    a MemoryError or ValueError for an absurd size): a user sees the file and the reason either way.
    """
    try:
        yield
    except IviError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure to read a file is that file's problem
        raise ExrReadError(_unreadable(path, f"{type(exc).__name__}: {exc}")) from exc


def _error_text(geterror: Callable[[], str]) -> str:
    """OIIO's pending error message; a damaged header can put bytes that are not UTF-8 into it."""
    try:
        return geterror()
    except UnicodeDecodeError:
        return "the header is damaged (OpenImageIO's message about it is not valid text)"


def _unreadable(path: Path, error: str) -> str:
    return (f"cannot read {path} as an EXR ({_short_error(error, path)}): the file is truncated or not an EXR; "
            f"re-render or replace it")


def _short_error(error: str, path: Path) -> str:
    """OIIO's message on one line: unique lines, without the repeated 'EXR Error (<path>): ' prefix."""
    lines = []
    for line in (error or "unknown error").splitlines():
        line = line.replace(f"EXR Error ({path}): ", "").strip()
        if line and line not in lines:
            lines.append(line)
    text = "; ".join(lines)
    return text if len(text) <= 300 else text[:297] + "..."


# --- writing helpers -------------------------------------------------------------------------------


def _channel_types(spec: oiio.ImageSpec) -> dict[str, oiio.TypeDesc]:
    """Channel name -> its pixel type (channelformats is empty when all channels share spec.format)."""
    formats = list(spec.channelformats) or [spec.format] * spec.nchannels
    return dict(zip(spec.channelnames, formats))


def _set_lossless_compression(spec: oiio.ImageSpec, template: oiio.ImageSpec,
                              types: Sequence[oiio.TypeDesc]) -> None:
    """Keep the template's compression if it loses nothing for these channel types, else use zip."""
    original = template.get_string_attribute("compression", FALLBACK_COMPRESSION)
    name = original.split(":", 1)[0].lower()  # 'dwaa:45' carries a level after the colon
    all_half = all(t == oiio.TypeDesc("half") for t in types)
    if name in LOSSLESS_COMPRESSIONS or (name == "pxr24" and all_half):
        spec.attribute("compression", original)
        return
    logger.warning("compression %s is lossy for these channels; writing %s instead so untouched "
                   "pixels stay bit-exact", original, FALLBACK_COMPRESSION)
    spec.attribute("compression", FALLBACK_COMPRESSION)
    spec.erase_attribute("openexr:dwaCompressionLevel")  # meaningless without dwa


def _checked_pixels(path: Path, pixels: np.ndarray, spec: oiio.ImageSpec) -> np.ndarray:
    """``pixels`` as C-contiguous float32 (h, w, c), or ShapeError naming the file."""
    array = np.asarray(pixels)
    if array.dtype.kind != "f":
        raise TypeError(f"cannot write {path}: pixels must be floating point, got {array.dtype}")
    if array.ndim == 2 and spec.nchannels == 1:
        array = array[..., None]
    expected = (spec.height, spec.width, spec.nchannels)
    if array.shape != expected:
        raise ShapeError(f"cannot write {path}: the pixels are {array.shape} (h, w, c) but its header's data "
                         f"window and channels need {expected}; pass pixels over the header's data window")
    # float16 -> float32 is exact, so half input still round-trips bit-exact.
    return np.ascontiguousarray(array, dtype=np.float32)


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file in the way (FileExists/NotADirectory), no permission, read-only mount
        raise ExrWriteError(f"cannot create the output folder {folder} ({exc.strerror or exc}); "
                            f"remove what is in the way, fix the permissions, or choose another --out") from exc


def other_parts(path: str | os.PathLike[str]) -> list[oiio.ImageSpec]:
    """The headers of an EXR's parts after the first (empty for a single-part file).

    Raises:
        ExrReadError: the file cannot be read (names it).
    """
    path = Path(path)
    with _read_errors_named(path):
        inp = _open_input(path)
        try:
            specs = []
            for part in range(1, inp.spec().get_int_attribute("oiio:subimages", 1)):
                if not inp.seek_subimage(part, 0):
                    raise ExrReadError(_unreadable(path, f"part {part}: {_error_text(inp.geterror)}"))
                specs.append(oiio.ImageSpec(inp.spec()))
            return specs
        finally:
            inp.close()


def _write_file(tmp: Path, pixels: np.ndarray, spec: oiio.ImageSpec, final: Path,
                parts_from: Path | None = None) -> None:
    """Write ``pixels`` to ``tmp`` as EXR, then ``parts_from``'s other parts; ExrWriteError (naming ``final``)
    on any OIIO failure, ExrReadError (naming ``parts_from``) when a part to copy cannot be read."""
    parts = other_parts(parts_from) if parts_from is not None else []
    out = oiio.ImageOutput.create(_EXR_FORMAT)  # by format name: the '.tmp' suffix names no format
    if out is None:
        raise ExrWriteError(f"cannot write {final}: OpenImageIO has no EXR writer ({oiio.geterror()}); "
                            f"reinstall OpenImageIO")
    # OIIO converts float32 to each channel's type in spec (per-channel formats included).
    ok = out.open(str(tmp), [spec, *parts] if parts else spec) and out.write_image(pixels)
    error = out.geterror() if not ok else ""
    if ok and parts:
        assert parts_from is not None
        error = _copy_parts(out, str(tmp), parts_from, parts)
        ok = not error
    closed = out.close()  # flushes the last chunks: a full disk can fail here
    if not ok or not closed:
        error = error or out.geterror() or "closing the file failed"
        raise ExrWriteError(f"cannot write {final} ({error.strip()}); check that {final.parent} is writable "
                            f"and has free space, or choose another --out")


def _copy_parts(out: oiio.ImageOutput, tmp: str, source: Path, parts: Sequence[oiio.ImageSpec]) -> str:
    """Append ``source``'s parts 1..n to an open output, raw; '' when done, else OIIO's error."""
    with _read_errors_named(source):
        inp = _open_input(source)
        try:
            for part, part_spec in enumerate(parts, start=1):
                if not (out.open(tmp, part_spec, "AppendSubimage") and inp.seek_subimage(part, 0)
                        and out.copy_image(inp)):
                    reading = _error_text(inp.geterror)
                    if reading:
                        raise ExrReadError(_unreadable(source, f"part {part}: {reading}"))
                    return _error_text(out.geterror) or f"copying part {part} of {source} failed"
        finally:
            inp.close()
    return ""
