"""Frame patterns and ranges against real (empty) files in tmp_path."""
from __future__ import annotations

from pathlib import Path

import pytest

from ivi_vfx.errors import ConfigError, MissingFramesError, SequenceNotFoundError
from ivi_vfx.io.sequence import FrameSequence, compact, find_sequence, output_sequence, parse_frames


def touch(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")


@pytest.fixture
def shot(tmp_path: Path) -> Path:
    """plate.1001-1005 plus files that must never count as frames of plate.####.exr."""
    touch(tmp_path, *(f"plate.{f}.exr" for f in range(1001, 1006)))
    touch(tmp_path,
          ".plate.1006.exr",                      # hidden: a temp file, never a frame
          ".plate.1007.exr.123-abcd1234.tmp",     # the atomic writer's temp name
          "plate.01008.exr",                      # 5-digit padding is not ####
          "plate.1009.jpg", "plate_v2.1010.exr", "plate.1011.exr.bak")
    (tmp_path / "plate.1012.exr").mkdir()          # a folder is not a frame
    return tmp_path


@pytest.mark.parametrize("token", ["####", "%04d", "@@@@"])
def test_finds_every_frame_with_exact_padding(shot: Path, token: str) -> None:
    pattern = str(shot / f"plate.{token}.exr")
    seq = find_sequence(pattern)
    assert seq.pattern == pattern
    assert seq.frames == (1001, 1002, 1003, 1004, 1005)
    assert len(seq) == 5
    assert seq.path(1003) == shot / "plate.1003.exr"
    assert seq.paths() == [shot / f"plate.{f}.exr" for f in range(1001, 1006)]


def test_given_frames_are_checked_and_sorted(shot: Path) -> None:
    seq = find_sequence(str(shot / "plate.####.exr"), [1004, 1002, 1002])
    assert seq.frames == (1002, 1004)


def test_missing_frames_are_listed_compactly(tmp_path: Path) -> None:
    touch(tmp_path, *(f"plate.{f}.exr" for f in (1001, 1002, 1003, 1005, 1006, 1010)))
    with pytest.raises(MissingFramesError) as info:
        find_sequence(str(tmp_path / "plate.####.exr"), range(1001, 1011))
    assert info.value.missing == [1004, 1007, 1008, 1009]
    message = str(info.value)
    assert message.startswith("plate.####.exr: frames 1004,1007-1009 are missing in ")
    assert str(tmp_path) in message
    assert "on disk: 1001-1003,1005-1006,1010" in message
    assert "--frames" in message
    assert isinstance(info.value, FileNotFoundError)  # callers catching builtins still work


def test_hidden_files_never_fill_a_missing_frame(shot: Path) -> None:
    with pytest.raises(MissingFramesError) as info:
        find_sequence(str(shot / "plate.####.exr"), [1005, 1006])
    assert info.value.missing == [1006]


def test_no_match_names_the_pattern_and_the_folder(tmp_path: Path) -> None:
    touch(tmp_path, "other.1001.exr")
    pattern = str(tmp_path / "plate.####.exr")
    with pytest.raises(SequenceNotFoundError) as info:
        find_sequence(pattern)
    assert pattern in str(info.value) and "padding" in str(info.value)


def test_no_match_points_at_a_padding_mismatch(tmp_path: Path) -> None:
    touch(tmp_path, "plate.01001.exr", "plate.01002.exr")
    with pytest.raises(SequenceNotFoundError, match=r"plate\.01001\.exr have other frame padding"):
        find_sequence(str(tmp_path / "plate.####.exr"))
    assert find_sequence(str(tmp_path / "plate.#####.exr")).frames == (1001, 1002)


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(SequenceNotFoundError, match="does not exist") as info:
        find_sequence(str(tmp_path / "nope" / "plate.####.exr"), [1001])
    assert str(tmp_path / "nope") in str(info.value)


@pytest.mark.parametrize("pattern", ["plate.exr", "plate.1001.exr", "plate.1001-1010#.exr", ".plate.####.exr",
                                     "a.####.b.####.exr"])
def test_pattern_without_a_frame_token(tmp_path: Path, pattern: str) -> None:
    with pytest.raises(ConfigError, match=r"plate\.####\.exr"):
        find_sequence(str(tmp_path / pattern))
    with pytest.raises(ConfigError, match=r"plate\.####\.exr"):
        output_sequence(str(tmp_path / pattern), [1001])


def test_unpadded_and_wide_frames(tmp_path: Path) -> None:
    touch(tmp_path, "p.7.exr", "p.1001.exr", "p.0008.exr", "q.9999.exr", "q.10000.exr", "q.-005.exr")
    assert find_sequence(str(tmp_path / "p.#.exr")).frames == (7, 1001)  # 0008 is padded, '#' is not
    assert find_sequence(str(tmp_path / "q.####.exr")).frames == (-5, 9999, 10000)


@pytest.mark.parametrize(("text", "frames"), [
    ("1001-1003", (1001, 1002, 1003)),
    ("1,3,5", (1, 3, 5)),
    ("1-10x2", (1, 3, 5, 7, 9)),
    ("1001", (1001,)),
    (" 5,3,3-4 ", (3, 4, 5)),
    ("1003-1001", (1001, 1002, 1003)),
])
def test_parse_frames(text: str, frames: tuple[int, ...]) -> None:
    assert parse_frames(text) == frames


@pytest.mark.parametrize("text", ["abc", "1-", "1..3", "", "  ", "1.5", "1001-1100;"])
def test_parse_frames_rejects_bad_text_with_the_fix(text: str) -> None:
    with pytest.raises(ConfigError, match="1001-1100"):
        parse_frames(text)


def test_output_sequence_paths_without_disk(tmp_path: Path) -> None:
    seq = output_sequence(str(tmp_path / "out" / "clean.%04d.exr"), [1003, 1001])
    assert seq.frames == (1001, 1003)
    assert seq.paths() == [tmp_path / "out" / "clean.1001.exr", tmp_path / "out" / "clean.1003.exr"]
    assert not (tmp_path / "out").exists()
    assert output_sequence("clean.@@@@@.exr", [42]).path(42) == Path("clean.00042.exr")


def test_output_sequence_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"clean\.####\.exr"):
        output_sequence(str(tmp_path / "clean.####.png"), [1])
    with pytest.raises(ConfigError, match="--frames"):
        output_sequence(str(tmp_path / "clean.####.exr"), [])


def test_frame_sequence_normalises_frames() -> None:
    seq = FrameSequence("plate.####.exr", (3, 1, 2, 1))  # type: ignore[arg-type]
    assert seq.frames == (1, 2, 3)
    assert compact([1004, 1007, 1008, 1009]) == "1004,1007-1009"
