"""Where a Render press puts its files, and whether a result is on disk.

Everything goes beside the output, so that a farm node that sees the output folder also sees the
baked inputs: ``<out dir>/.ivi/<name>.nuke/`` holds ``plate.####.exr``, ``matte.####.exr``,
``job.json`` and the farm bundle ``farm/``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .request import InpaintRequest

_TOKEN = re.compile(r"(#+)|%0?(\d*)d|(@+)")


@dataclass(frozen=True)
class JobPaths:
    """The files of one request."""

    folder: Path
    plate: str
    """Baked plate pattern (``####``: both Nuke's Write and ivi-render read it)."""
    matte: str
    job_file: Path
    bundle: Path
    """Farm bundle folder (`ivi-render submit --bundle`)."""


def job_paths(request: InpaintRequest) -> JobPaths:
    """The bake folder and its files for a request."""
    folder = Path(request.out).parent / ".ivi" / f"{request.name}.nuke"
    return JobPaths(folder=folder, plate=str(folder / "plate.####.exr"), matte=str(folder / "matte.####.exr"),
                    job_file=folder / "job.json", bundle=folder / "farm")


def frame_path(pattern: str, frame: int) -> str:
    """One frame's file name: ``clean.####.exr``, ``clean.%04d.exr`` or ``clean.@@@@.exr`` -> ``clean.1001.exr``."""
    def pad(match: re.Match[str]) -> str:
        hashes, width, ats = match.groups()
        digits = len(hashes or ats or "") or int(width or 0)
        return f"{frame:0{digits}d}"
    name = Path(pattern).name
    if not _TOKEN.search(name):
        raise ValueError(f"{pattern}: no frame token (####, %04d or @); add one")
    return str(Path(pattern).with_name(_TOKEN.sub(pad, name, count=1)))


def missing_frames(pattern: str, first: int, last: int) -> list[int]:
    """The frames of first..last whose file is not on disk (an empty list: the result is complete)."""
    return [f for f in range(first, last + 1) if not Path(frame_path(pattern, f)).is_file()]


def result_exists(pattern: str, first: int, last: int) -> bool:
    """True when every output frame of the range is on disk (ivi-render writes whole frames only)."""
    return not missing_frames(pattern, first, last)
