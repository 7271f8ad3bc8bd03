"""Frame sequences on disk through fileseq: `plate.####.exr`, `plate.%04d.exr`, `plate.@@@@.exr`.

Nuke's convention holds: one `#` (or `@`) per digit, so fileseq is always asked for
PAD_STYLE_HASH1 (its default reads `#` as four digits, and `####` as sixteen).
"""
from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import fileseq

from ivi_vfx.errors import ConfigError, MissingFramesError, SequenceNotFoundError

logger = logging.getLogger(__name__)

PAD_STYLE = fileseq.PAD_STYLE_HASH1
_TOKEN = re.compile(r"#+|@+|%0?\d*d")


def compact(frames: Sequence[int]) -> str:
    """Frame numbers as a short range string: [1004, 1007, 1008, 1009] -> '1004,1007-1009'."""
    return fileseq.FrameSet.from_iterable(sorted(frames)).frameRange()


def parse_frames(spec: str) -> tuple[int, ...]:
    """A frame range as farms and Nuke write it ('1001-1100', '1,3,5', '1-10x2') -> sorted unique frames."""
    try:
        frames = fileseq.FrameSet(str(spec).strip())
    except (fileseq.ParseException, ValueError) as exc:
        raise ConfigError(f"frame range {spec!r} is not valid; write it like 1001-1100 or 1001,1005-1010") from exc
    if not len(frames):
        raise ConfigError(f"frame range {spec!r} holds no frame; write it like 1001-1100")
    return tuple(sorted(set(frames)))


def _parse(pattern: str) -> fileseq.FileSequence:
    if not _TOKEN.search(Path(pattern).name):
        raise ConfigError(f"{pattern} has no frame number token; write it like plate.####.exr or plate.%04d.exr")
    return fileseq.FileSequence(pattern, pad_style=PAD_STYLE)


@dataclass(frozen=True)
class FrameSequence:
    """A frame pattern and the frames of it that a job uses.

    Attributes:
        pattern: the pattern as the user gave it.
        frames: frame numbers, ascending.
    """

    pattern: str
    frames: tuple[int, ...]

    def path(self, frame: int) -> Path:
        """The file of one frame, padded as the pattern says."""
        return Path(_parse(self.pattern).frame(frame))

    def paths(self) -> list[Path]:
        return [self.path(f) for f in self.frames]

    def __len__(self) -> int:
        return len(self.frames)


def _on_disk(pattern: str) -> tuple[int, ...]:
    """Every frame number of `pattern` found on disk with the pattern's exact padding."""
    seq = _parse(pattern)
    folder = Path(seq.dirname() or ".")
    if not folder.is_dir():
        raise SequenceNotFoundError(f"{pattern}: the folder {folder} does not exist; check the path")
    digits = seq.zfill()
    # The number must fill the padding exactly (or exceed it without leading zeros), as Nuke reads it.
    rx = re.compile(re.escape(seq.basename()) + r"(-?\d+)" + re.escape(seq.extension()) + r"\Z")
    frames = []
    for entry in folder.iterdir():
        m = rx.match(entry.name)
        if not m or entry.name.startswith("."):
            continue
        number = m.group(1).lstrip("-")
        if len(number) == digits or (len(number) > digits and not number.startswith("0")):
            frames.append(int(m.group(1)))
    return tuple(sorted(frames))


def find_sequence(pattern: str, frames: Sequence[int] | None = None) -> FrameSequence:
    """The frames of `pattern` on disk: all of them, or exactly `frames` (every one must exist).

    Raises:
        ConfigError: the pattern has no frame token.
        SequenceNotFoundError: the folder is missing or no file matches.
        MissingFramesError: some of `frames` are not on disk (listed).
    """
    found = _on_disk(pattern)
    if not found:
        raise SequenceNotFoundError(f"no frames match {pattern}; check the path and the padding "
                                    f"(#### is 4 digits: plate.1001.exr)")
    if frames is None:
        return FrameSequence(pattern, found)
    wanted = tuple(sorted(set(frames)))
    missing = sorted(set(wanted) - set(found))
    if missing:
        raise MissingFramesError(
            f"{pattern}: frames {compact(missing)} are missing (on disk: {compact(found)}); render them, "
            f"or pass --frames with a range that exists", missing)
    return FrameSequence(pattern, wanted)


def output_sequence(pattern: str, frames: Sequence[int]) -> FrameSequence:
    """An output pattern over the given frames (nothing on disk is checked)."""
    _parse(pattern)
    return FrameSequence(pattern, tuple(sorted(set(frames))))
