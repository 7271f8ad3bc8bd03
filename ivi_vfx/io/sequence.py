"""Frame-number patterns (``plate.####.exr``) and frame ranges (``1001-1100``), resolved on disk.

Patterns follow Nuke: one ``#`` per digit (``plate.####.exr`` is 4 digits, ``plate.#.exr`` is
unpadded), ``@`` likewise, or printf ``%04d``. fileseq parses them with ``PAD_STYLE_HASH1``; its
default style reads ``####`` as 16 digits. Frame numbers wider than the padding are used as they are
(``plate.####.exr`` names frame 12345 ``plate.12345.exr``), as Nuke does.

File names that start with ``.`` are reserved for the temporary files of atomic writes and never
count as frames.
"""
from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import fileseq

from ivi_vfx.errors import ConfigError, MissingFramesError, SequenceNotFoundError

logger = logging.getLogger(__name__)

PAD_STYLE = fileseq.PAD_STYLE_HASH1  # Nuke semantics: one '#' per digit
_EXAMPLE_PATTERN = "plate.####.exr"
_EXAMPLE_RANGE = "1001-1100, 1001,1005,1010 or 1001-1100x2"


@dataclass(frozen=True)
class FrameSequence:
    """A frame pattern and the frame numbers it covers.

    Attributes:
        pattern: the pattern as the user gave it, e.g. ``/shots/sh010/plate.####.exr``.
        frames: the frame numbers, ascending and unique (never empty).
    """

    pattern: str
    frames: tuple[int, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "pattern", os.fspath(self.pattern))  # a Path works too
        _parse_pattern(self.pattern)  # ConfigError now rather than on first use
        frames = _normalise_frames(self.frames, self.pattern)
        object.__setattr__(self, "frames", frames)  # frozen: normalise in place once

    def path(self, frame: int) -> Path:
        """The file path of one frame, padded as the pattern says (``1001`` -> ``plate.1001.exr``)."""
        return Path(_parse_pattern(self.pattern).frame(int(frame)))

    def paths(self) -> list[Path]:
        """The file paths of every frame, in frame order."""
        return [self.path(f) for f in self.frames]

    def __len__(self) -> int:
        return len(self.frames)


def parse_frames(spec: str) -> tuple[int, ...]:
    """Parse a frame range as farms and Nuke write it.

    Args:
        spec: ``'1001-1100'``, ``'1,3,5'``, ``'1-10x2'`` (every 2nd), ``'1001'``, or any mix joined by commas.

    Returns:
        The frame numbers, ascending and unique.

    Raises:
        ConfigError: the text is not a frame range, names sub-frames, or is empty.
    """
    text = str(spec).strip()
    if not text:
        raise ConfigError(f"the frame range is empty; write it like {_EXAMPLE_RANGE}")
    try:
        frame_set = fileseq.FrameSet(text)
    except (fileseq.FileSeqException, ValueError, TypeError) as exc:  # ParseException is a FileSeqException
        # fileseq's message is a regex dump; say what is accepted instead.
        raise ConfigError(f"cannot read the frame range {text!r}; write it like {_EXAMPLE_RANGE}") from exc
    frames = list(frame_set)
    if any(f != int(f) for f in frames):  # fileseq 2+ accepts sub-frames ('1.5') as Decimals
        raise ConfigError(f"the frame range {text!r} names sub-frames; use whole frame numbers like {_EXAMPLE_RANGE}")
    if not frames:
        raise ConfigError(f"the frame range {text!r} holds no frames; write it like {_EXAMPLE_RANGE}")
    return tuple(sorted({int(f) for f in frames}))


def find_sequence(pattern: str, frames: Sequence[int] | None = None) -> FrameSequence:
    """Resolve a pattern against the disk.

    Args:
        pattern: e.g. ``/shots/sh010/plate.####.exr`` (``#``/``@`` one per digit, or ``%04d``).
        frames: the frames wanted; None takes every frame on disk with the pattern's exact padding.

    Returns:
        The sequence; with ``frames`` given, exactly those frames (sorted, unique).

    Raises:
        ConfigError: the pattern has no frame number token, or ``frames`` is empty.
        SequenceNotFoundError: the folder is missing, or (frames=None) no file matches.
        MissingFramesError: some of ``frames`` are not on disk; ``.missing`` lists them.
    """
    pattern = os.fspath(pattern)
    seq = _parse_pattern(pattern)
    folder = _folder(seq)
    if not folder.is_dir():
        raise SequenceNotFoundError(f"{pattern}: the folder {folder} does not exist; check the path of the pattern")
    on_disk = _frames_on_disk(seq, folder)
    if frames is None:
        if not on_disk:
            raise SequenceNotFoundError(_nothing_found_message(pattern, seq, folder))
        logger.debug("%s: found %d frames (%s)", pattern, len(on_disk), compact(on_disk))
        return FrameSequence(pattern, tuple(on_disk))
    wanted = _normalise_frames(frames, pattern)
    missing = sorted(set(wanted) - set(on_disk))
    if missing:
        raise MissingFramesError(_missing_message(pattern, folder, missing, on_disk), missing)
    return FrameSequence(pattern, wanted)


def output_sequence(pattern: str, frames: Sequence[int]) -> FrameSequence:
    """The sequence to write: ``pattern`` over ``frames``, with no disk check.

    Raises:
        ConfigError: the pattern has no frame number token, does not end in ``.exr``, or ``frames`` is empty.
    """
    pattern = os.fspath(pattern)
    seq = _parse_pattern(pattern)
    if seq.extension().lower() != ".exr":
        # The writer always writes EXR; a .png name holding EXR data would confuse every tool downstream.
        raise ConfigError(f"{pattern}: the output must be EXR; name it like clean.####.exr")
    return FrameSequence(pattern, _normalise_frames(frames, pattern))


@functools.lru_cache(maxsize=256)
def _parse_pattern(pattern: str) -> fileseq.FileSequence:
    """Parse and validate a pattern once (cached: ``FrameSequence.path`` runs per frame).

    The cached object is only ever read (``.frame()``, ``.dirname()``...), never changed.
    """
    name = Path(pattern).name
    if name.startswith("."):
        raise ConfigError(f"{pattern}: file names starting with '.' are reserved for temporary files; "
                          f"rename the files and write the pattern like {_EXAMPLE_PATTERN}")
    try:
        seq = fileseq.FileSequence(pattern, pad_style=PAD_STYLE)
    except (fileseq.FileSeqException, ValueError) as exc:
        raise ConfigError(f"cannot read the frame pattern {pattern!r} (one frame token only); "
                          f"write it like {_EXAMPLE_PATTERN}") from exc
    if seq.frameSet() is not None:
        # fileseq reads 'plate.1001.exr' / 'plate.1001-1100#.exr' as frame numbers, not a token.
        raise ConfigError(f"{pattern} names frame numbers instead of a frame number token; "
                          f"write it like {_EXAMPLE_PATTERN} and choose frames with --frames")
    if not seq.padding():
        raise ConfigError(f"{pattern} has no frame number token; write it like {_EXAMPLE_PATTERN}")
    return seq


def _normalise_frames(frames: Iterable[int], pattern: str) -> tuple[int, ...]:
    """Frames as sorted unique ints; ConfigError when there are none."""
    out = tuple(sorted({int(f) for f in frames}))
    if not out:
        raise ConfigError(f"{pattern}: no frames were asked for; pass --frames like {_EXAMPLE_RANGE}")
    return out


def _folder(seq: fileseq.FileSequence) -> Path:
    return Path(seq.dirname() or ".")


def _candidates(seq: fileseq.FileSequence, folder: Path) -> dict[str, int]:
    """File name -> frame number for every non-hidden file shaped like the pattern, any padding."""
    rx = re.compile(re.escape(seq.basename()) + r"(-?\d+)" + re.escape(seq.extension()) + r"\Z")
    found = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith("."):  # temp files of atomic writes, never frames
                continue
            match = rx.match(entry.name)
            if match and entry.is_file():
                found[entry.name] = int(match.group(1))
    return found


def _frames_on_disk(seq: fileseq.FileSequence, folder: Path) -> list[int]:
    """Ascending frames whose file name has exactly the pattern's padding (plate.01001.exr is not ####)."""
    return sorted(f for name, f in _candidates(seq, folder).items() if Path(seq.frame(f)).name == name)


def compact(frames: Iterable[int]) -> str:
    """Frame numbers as a short range string: [1004, 1007, 1008, 1009] -> '1004,1007-1009'."""
    return fileseq.FrameSet.from_iterable(sorted(frames)).frameRange()


def _nothing_found_message(pattern: str, seq: fileseq.FileSequence, folder: Path) -> str:
    message = f"no file matches {pattern} in {folder}"
    others = sorted(_candidates(seq, folder))
    if others:
        # Usually a padding mismatch: plate.#.exr against plate.1001.exr is fine, plate.####.exr against
        # plate.01001.exr is not.
        return (f"{message}, but {len(others)} file(s) like {others[0]} have other frame padding; "
                f"write the pattern with one # per digit (e.g. {_EXAMPLE_PATTERN} for 4 digits)")
    return f"{message}; check the folder, the name and the frame padding (one # per digit)"


def _missing_message(pattern: str, folder: Path, missing: list[int], on_disk: list[int]) -> str:
    there = f" (on disk: {compact(on_disk)})" if on_disk else " (none of its frames are on disk)"
    return (f"{Path(pattern).name}: frames {compact(missing)} are missing in {folder}{there}; "
            f"render them or pass --frames to choose a range that exists")
