"""EXR reading and writing on real files, checked with the independent OpenEXR reader."""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np
import OpenEXR
import OpenImageIO as oiio
import pytest

from exr_helpers import read_with_openexr, write_test_exr
from ivi_vfx.errors import ChannelError, ExrReadError, ExrWriteError, OutputExistsError, ShapeError
from ivi_vfx.io import exr as exr_module
from ivi_vfx.io.exr import check_writable, output_spec, read_exr, read_header, write_exr


def rand(shape: tuple[int, ...], seed: int = 0, dtype: type = np.float16) -> np.ndarray:
    """Values as stored (rounded to dtype), returned as float32."""
    rng = np.random.default_rng(seed)
    return rng.uniform(-0.5, 4.0, shape).astype(dtype).astype(np.float32)


def half_codes(h: int, w: int, c: int, start: int) -> np.ndarray:
    """(h, w, c) float16 of the consecutive half codes from ``start`` (mod 2**16), shuffled across channels.

    Consecutive runs cover NaN payloads, +-inf, -0, subnormals, negatives and values > 1.
    """
    codes = (start + np.arange(h * w * c, dtype=np.uint32)) % 65536
    codes = np.random.default_rng(start).permutation(codes)
    return codes.astype(np.uint16).view(np.float16).reshape(h, w, c)


def only_file(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


# --- reading ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("pixel_type, dtype", [("half", np.float16), ("float", np.float32)])
@pytest.mark.parametrize("tile", [None, (16, 8)])
@pytest.mark.parametrize("compression", ["zip", "piz", "none"])
def test_read_matches_what_was_written(tmp_path: Path, pixel_type: str, dtype: type, tile: tuple | None,
                                       compression: str) -> None:
    pixels = rand((20, 30, 4), dtype=dtype)
    path = tmp_path / "a.exr"
    write_test_exr(path, pixels, pixel_type=pixel_type, compression=compression, tile=tile)
    image = read_exr(path)
    assert image.path == path
    assert image.pixels.dtype == np.float32 and image.pixels.shape == (20, 30, 4)
    assert np.array_equal(image.pixels, pixels)
    assert image.channel_names == ("R", "G", "B", "A")
    assert image.data_window == image.display_window == (0, 0, 30, 20)
    assert str(image.spec.format) == pixel_type
    assert image.spec.get_string_attribute("compression") == compression
    assert image.spec.tile_width == (tile[0] if tile else 0)
    assert read_header(path).get_string_attribute("compression") == compression


def test_channels_by_name_in_any_order(tmp_path: Path) -> None:
    names = ("mask.Y", "Z", "B", "A", "R", "G")
    pixels = np.stack([np.full((4, 5), i + 1, np.float32) for i in range(len(names))], -1)
    write_test_exr(tmp_path / "a.exr", pixels, channels=names)
    image = read_exr(tmp_path / "a.exr")
    assert set(image.channel_names) == set(names)
    assert image.channel_names[:4] == ("R", "G", "B", "A")  # OIIO moves RGBA first: never index by position
    for i, name in enumerate(names):
        assert np.all(image.channel(name) == i + 1), name
    assert np.array_equal(image.display(["mask.Y", "R"])[0, 0], [1, 5])


def test_missing_channel_names_file_and_channels(tmp_path: Path) -> None:
    write_test_exr(tmp_path / "m.exr", np.zeros((2, 2, 2)), channels=("R", "mask.Y"))
    image = read_exr(tmp_path / "m.exr")
    with pytest.raises(ChannelError) as info:
        image.channel("A")
    message = str(info.value)
    assert str(tmp_path / "m.exr") in message and "'A'" in message and "R, mask.Y" in message
    assert isinstance(info.value, KeyError)
    with pytest.raises(ChannelError):
        image.display(["R", "Q"])


def test_data_window_inside_display_window(tmp_path: Path) -> None:
    """Nuke's bbox: a 5x4 block at (2, 3) of a 10x8 format."""
    pixels = rand((4, 5, 3), seed=1)
    write_test_exr(tmp_path / "bbox.exr", pixels, channels=("R", "G", "B"), data_window=(2, 3),
                   display_window=(0, 0, 10, 8))
    image = read_exr(tmp_path / "bbox.exr")
    assert image.data_window == (2, 3, 5, 4)
    assert image.display_window == (0, 0, 10, 8)
    assert image.pixels.shape == (4, 5, 3)
    full = image.display(["B", "R"])
    assert full.shape == (8, 10, 2) and full.dtype == np.float32
    assert np.array_equal(full[3:7, 2:7], pixels[..., [2, 0]])
    outside = np.ones((8, 10), bool)
    outside[3:7, 2:7] = False
    assert np.all(full[outside] == 0)


def test_data_window_beyond_display_window(tmp_path: Path) -> None:
    """Overscan: 12x10 of data at (-2, -1) around an 8x6 format; the extra is cropped."""
    pixels = rand((10, 12, 1), seed=2)
    write_test_exr(tmp_path / "over.exr", pixels, channels=("Y",), data_window=(-2, -1),
                   display_window=(0, 0, 8, 6), pixel_type="float")
    image = read_exr(tmp_path / "over.exr")
    assert image.data_window == (-2, -1, 12, 10)
    assert np.array_equal(image.display(["Y"]), pixels[1:7, 2:10])


def test_display_window_not_at_origin(tmp_path: Path) -> None:
    pixels = rand((3, 3, 1), seed=3)
    write_test_exr(tmp_path / "o.exr", pixels, channels=("Y",), data_window=(11, 21), display_window=(10, 20, 4, 4))
    full = read_exr(tmp_path / "o.exr").display(["Y"])
    assert np.array_equal(full[1:, 1:], pixels) and np.all(full[0] == 0) and np.all(full[:, 0] == 0)


def test_truncated_exr_is_a_read_error(tmp_path: Path) -> None:
    path = tmp_path / "plate.1003.exr"
    write_test_exr(path, rand((64, 64, 4)), compression="none")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    read_header(path)  # the header is intact: only reading the pixels shows the damage
    with pytest.raises(ExrReadError, match="truncated") as info:
        read_exr(path)
    assert str(path) in str(info.value) and "re-render or replace it" in str(info.value)


def test_truncated_header_is_a_read_error(tmp_path: Path) -> None:
    path = tmp_path / "plate.1003.exr"
    write_test_exr(path, rand((8, 8, 4)))
    path.write_bytes(path.read_bytes()[:40])
    for reader in (read_exr, read_header):
        with pytest.raises(ExrReadError, match="EXR_ERR_") as info:
            reader(path)
        assert str(path) in str(info.value) and "\n" not in str(info.value)


def _header_length(data: bytes) -> int:
    """Bytes of an EXR's magic, version and attributes (name, type, size, value; an empty name ends them)."""
    at = 8
    while data[at]:
        at = data.index(b"\x00", data.index(b"\x00", at) + 1) + 1  # past the name and the type name
        at += 4 + int.from_bytes(data[at:at + 4], "little")
    return at + 1


def test_every_flipped_header_byte_is_read_or_named(tmp_path: Path) -> None:
    """A damaged header makes OIIO's bindings raise more than they document (UnicodeDecodeError on a
    name or a message that is no longer UTF-8): whatever fails, the error names the file."""
    good = tmp_path / "good.exr"
    write_test_exr(good, rand((8, 8, 4)), compression="none")
    data = good.read_bytes()
    header = _header_length(data)
    path = tmp_path / "plate.1001.exr"
    failures = set()
    for offset in range(header):
        for bit in (0x80, 0x01):
            damaged = bytearray(data)
            damaged[offset] ^= bit
            path.write_bytes(bytes(damaged))
            for reader in (read_exr, read_header):
                try:
                    reader(path)
                except ExrReadError as exc:
                    assert str(path) in str(exc) and "\n" not in str(exc)
                    failures.add(offset)
    assert len(failures) > header // 4  # most flips are caught, the rest read as a valid file

def test_a_channel_name_that_is_not_utf8_is_a_read_error(tmp_path: Path) -> None:
    """OIIO hands such a name back with surrogate escapes ('\\udcc1'): the frame read, trained, and its render
    failed on writing the name back (RuntimeError: basic_string), after earlier frames were written."""
    path = tmp_path / "plate.1003.exr"
    write_test_exr(path, rand((8, 8, 4)))
    data = bytearray(path.read_bytes())
    data[data.index(b"channels\x00chlist\x00") + len(b"channels\x00chlist\x00") + 4] ^= 0x80  # 'A' -> 0xc1
    path.write_bytes(bytes(data))
    for reader in (read_exr, read_header):
        with pytest.raises(ExrReadError, match="a channel name is not valid text") as info:
            reader(path)
        assert str(path) in str(info.value)


def test_text_file_named_exr_is_a_read_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.exr"
    path.write_text("not an image\n")
    for reader in (read_exr, read_header):
        with pytest.raises(ExrReadError, match="not an EXR") as info:
            reader(path)
        assert str(path) in str(info.value)


def test_other_image_formats_are_refused(tmp_path: Path) -> None:
    png = tmp_path / "a.png"
    assert oiio.ImageBuf(np.zeros((4, 4, 3), np.float32)).write(str(png))
    path = tmp_path / "a.exr"
    png.rename(path)  # a PNG named .exr: OIIO would happily read it
    with pytest.raises(ExrReadError, match="is a png image, not an EXR") as info:
        read_exr(path)
    assert str(path) in str(info.value)


def test_missing_file_and_folder_are_read_errors(tmp_path: Path) -> None:
    with pytest.raises(ExrReadError, match="does not exist") as info:
        read_exr(tmp_path / "nope.exr")
    assert str(tmp_path / "nope.exr") in str(info.value)
    with pytest.raises(ExrReadError, match="is a folder"):
        read_header(tmp_path)


# --- output_spec and round trips -------------------------------------------------------------------


def half_bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, np.float16).view(np.uint16)


def test_round_trip_keeps_half_bits_and_the_header(tmp_path: Path) -> None:
    """read -> output_spec -> write: every half code (NaN, inf, -0, negatives, > 1) and all metadata survive."""
    h, w = 40, 48  # 40*48*4 = 7680 codes per file; 9 offsets cover all 65536
    src, dst = tmp_path / "in.exr", tmp_path / "out" / "clean.1001.exr"
    attrs = {"smpte:TimeCode": ("timecode", (0x01020304, 0)), "studio/shot": "sh010", "studio/focus": 35.5}
    seen = set()
    for offset in range(9):
        values = half_codes(h, w, 4, start=offset * h * w * 4)
        seen.update(half_bits(values).ravel().tolist())
        write_test_exr(src, values, compression="piz", tile=(16, 16), data_window=(-4, 2),
                       display_window=(0, 0, 40, 40), attrs=attrs)
        image = read_exr(src)
        spec = output_spec(image.spec, image.channel_names)
        write_exr(dst, image.pixels, spec, overwrite=True)
        header, channels = read_with_openexr(dst)
        for c, name in enumerate("RGBA"):
            assert channels[name].dtype == np.float16
            assert np.array_equal(half_bits(channels[name]), half_bits(values[..., c])), name
    assert len(seen) == 65536
    assert header["compression"] == OpenEXR.PIZ_COMPRESSION
    assert header["type"] == OpenEXR.tiledimage
    assert (header["tiles"].xSize, header["tiles"].ySize) == (16, 16)
    assert [list(v) for v in header["dataWindow"]] == [[-4, 2], [43, 41]]
    assert [list(v) for v in header["displayWindow"]] == [[0, 0], [39, 39]]
    tc = header["timeCode"]
    assert (tc.hours, tc.minutes, tc.seconds, tc.frame) == (1, 2, 3, 4)
    assert header["studio/shot"] == "sh010"
    assert header["studio/focus"] == pytest.approx(35.5)
    assert sorted(channels) == ["A", "B", "G", "R"]
    assert only_file(dst.parent) == ["clean.1001.exr"]  # no temp file left behind


def test_round_trip_float_and_mixed_channel_types(tmp_path: Path) -> None:
    """Per-channel types survive; a new channel takes the template's format."""
    rgbz = rand((6, 7, 4), seed=4, dtype=np.float32)
    rgbz[..., 3] = 1 / 3  # not representable in half: proves Z stays float
    rgbz[..., :3] = rgbz[..., :3].astype(np.float16)
    write_test_exr(tmp_path / "in.exr", rgbz, channels=("R", "G", "B", "Z"),
                   pixel_type=("half", "half", "half", "float"), compression="zips", attrs={"note": "x"})
    image = read_exr(tmp_path / "in.exr")
    assert [str(t) for t in image.spec.channelformats] == ["half", "half", "half", "float"]
    names = ("R", "G", "B", "A", "Z")
    spec = output_spec(image.spec, names)
    assert spec.alpha_channel == 3 and spec.z_channel == 4
    assert str(spec.format) == "float"  # the template's format: the widest type
    pixels = np.concatenate([image.display(["R", "G", "B"]), np.full((6, 7, 1), 0.25, np.float32),
                             image.display(["Z"])], -1)
    write_exr(tmp_path / "out.exr", pixels, spec)
    header, channels = read_with_openexr(tmp_path / "out.exr")
    assert {n: c.dtype for n, c in channels.items()} == {
        "R": np.float16, "G": np.float16, "B": np.float16, "A": np.float32, "Z": np.float32}
    assert np.all(channels["Z"] == np.float32(1 / 3)) and np.all(channels["A"] == 0.25)
    assert np.array_equal(channels["G"].astype(np.float32), rgbz[..., 1])
    assert header["compression"] == OpenEXR.ZIPS_COMPRESSION and header["note"] == "x"
    assert header["type"] == OpenEXR.scanlineimage


def test_output_spec_leaves_the_template_alone(tmp_path: Path) -> None:
    write_test_exr(tmp_path / "in.exr", rand((4, 4, 3)), channels=("R", "G", "B"))
    template = read_exr(tmp_path / "in.exr").spec
    assert template.getattribute("oiio:subimages") == 1
    spec = output_spec(template, ("R", "G", "B", "A"))
    assert spec.nchannels == 4 and tuple(spec.channelnames) == ("R", "G", "B", "A")
    assert str(spec.format) == "half" and len(spec.channelformats) == 0
    assert spec.getattribute("oiio:subimages") is None
    assert template.nchannels == 3 and template.alpha_channel == -1
    with pytest.raises(ValueError):
        output_spec(template, ("R", "R"))


def test_output_spec_dates_a_frame_by_its_source_not_the_moment_of_writing(tmp_path: Path) -> None:
    """OIIO stamps DateTime with the time of writing when the header has none: a frame written again differed."""
    write_test_exr(tmp_path / "in.exr", rand((4, 4, 3)), channels=("R", "G", "B"))
    os.utime(tmp_path / "in.exr", (1e9, 1e9))  # 2001
    template = read_header(tmp_path / "in.exr")
    template.erase_attribute("DateTime")  # OIIO dated the test's own file; a plate from elsewhere may have none
    for name in ("a.exr", "b.exr"):
        write_exr(tmp_path / name, rand((4, 4, 3)), output_spec(template, ("R", "G", "B"), source=tmp_path / "in.exr"))
    dates = {read_header(tmp_path / name).get_string_attribute("DateTime") for name in ("a.exr", "b.exr")}
    assert dates == {time.strftime("%Y:%m:%d %H:%M:%S", time.localtime(1e9))}
    # The template's own date is kept.
    template.attribute("DateTime", "2024:05:06 07:08:09")
    assert output_spec(template, ("R",), source=tmp_path / "in.exr").get_string_attribute("DateTime") \
        == "2024:05:06 07:08:09"


@pytest.mark.parametrize("compression, pixel_type, expected, warns", [
    ("dwaa:45", "half", "zip", True),
    ("dwab", "half", "zip", True),
    ("b44", "half", "zip", True),
    ("pxr24", "half", "pxr24", False),
    ("pxr24", "float", "zip", True),
    ("rle", "float", "rle", False),
])
def test_lossy_compression_becomes_zip(tmp_path: Path, caplog: pytest.LogCaptureFixture, compression: str,
                                       pixel_type: str, expected: str, warns: bool) -> None:
    write_test_exr(tmp_path / "in.exr", rand((8, 8, 4)), compression=compression, pixel_type=pixel_type)
    template = read_header(tmp_path / "in.exr")
    with caplog.at_level(logging.WARNING, logger="ivi_vfx.io.exr"):
        spec = output_spec(template, ("R", "G", "B", "A"))
    assert spec.get_string_attribute("compression") == expected
    assert bool(caplog.records) == warns
    if warns:
        assert spec.getattribute("openexr:dwaCompressionLevel") is None


def test_dwaa_plate_is_written_zip_and_exact(tmp_path: Path) -> None:
    write_test_exr(tmp_path / "in.exr", rand((8, 16, 4)), compression="dwaa")
    image = read_exr(tmp_path / "in.exr")
    write_exr(tmp_path / "out.exr", image.pixels, output_spec(image.spec, image.channel_names))
    header, channels = read_with_openexr(tmp_path / "out.exr")
    assert header["compression"] == OpenEXR.ZIP_COMPRESSION
    assert np.array_equal(channels["R"].astype(np.float32), image.channel("R"))


# --- writing ---------------------------------------------------------------------------------------


def simple_spec(h: int = 4, w: int = 5, c: int = 3) -> oiio.ImageSpec:
    spec = oiio.ImageSpec(w, h, c, "half")
    spec.channelnames = ("R", "G", "B", "A")[:c]
    spec.attribute("compression", "zip")
    return spec


def test_write_refuses_to_overwrite_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "clean.1001.exr"
    write_exr(path, np.zeros((4, 5, 3), np.float32), simple_spec())
    with pytest.raises(OutputExistsError, match="--overwrite") as info:
        write_exr(path, np.ones((4, 5, 3), np.float32), simple_spec())
    assert str(path) in str(info.value)
    assert np.all(read_exr(path).pixels == 0)
    write_exr(path, np.ones((4, 5, 3), np.float16), simple_spec(), overwrite=True)
    assert np.all(read_exr(path).pixels == 1)
    assert only_file(tmp_path) == ["clean.1001.exr"]


def test_wrong_shape_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(ShapeError, match="clean.1001.exr"):
        write_exr(tmp_path / "clean.1001.exr", np.zeros((4, 5, 4), np.float32), simple_spec())
    with pytest.raises(ShapeError):
        write_exr(tmp_path / "clean.1001.exr", np.zeros((5, 4, 3), np.float32), simple_spec())
    assert only_file(tmp_path) == []


def test_failed_write_leaves_no_output_and_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(exr_module.os, "replace", broken_replace)
    with pytest.raises(ExrWriteError, match="No space left") as info:
        write_exr(tmp_path / "clean.1001.exr", np.zeros((4, 5, 3), np.float32), simple_spec())
    assert "clean.1001.exr" in str(info.value)
    assert only_file(tmp_path) == []


def test_oiio_failure_is_a_write_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """OIIO cannot open the temp file (here: a folder sits at its name): ExrWriteError, nothing written."""
    monkeypatch.setattr(exr_module.secrets, "token_hex", lambda n: "fixed")
    (tmp_path / f".clean.1001.exr.{os.getpid()}-fixed.tmp").mkdir()
    with pytest.raises(ExrWriteError, match="choose another --out") as info:
        write_exr(tmp_path / "clean.1001.exr", np.zeros((4, 5, 3), np.float32), simple_spec())
    assert str(tmp_path / "clean.1001.exr") in str(info.value)
    assert not (tmp_path / "clean.1001.exr").exists()


def test_write_creates_missing_folders(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "clean.1001.exr"
    write_exr(path, np.zeros((4, 5, 3), np.float32), simple_spec())
    assert read_exr(path).pixels.shape == (4, 5, 3)


def test_parent_is_a_file(tmp_path: Path) -> None:
    """Fails even for root: a path whose parent is a regular file."""
    (tmp_path / "blocker").write_text("x")
    folder = tmp_path / "blocker" / "out"
    for attempt in (lambda: check_writable(folder),
                    lambda: write_exr(folder / "clean.1001.exr", np.zeros((4, 5, 3), np.float32), simple_spec())):
        with pytest.raises(ExrWriteError, match="choose another --out") as info:
            attempt()
        assert str(folder) in str(info.value)


def test_unwritable_folder(tmp_path: Path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running as root: permissions do not stop writes")
        with pytest.raises(ExrWriteError, match="permissions") as info:
            check_writable(folder)
        assert str(folder) in str(info.value)
        with pytest.raises(ExrWriteError) as info:
            write_exr(folder / "clean.1001.exr", np.zeros((4, 5, 3), np.float32), simple_spec())
        assert "clean.1001.exr" in str(info.value)
        with pytest.raises(ExrWriteError, match=str(folder / "sub")):
            check_writable(folder / "sub")
    finally:
        folder.chmod(0o700)


def test_check_writable_creates_and_leaves_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "x" / "y"
    check_writable(folder)
    assert folder.is_dir() and only_file(folder) == []
