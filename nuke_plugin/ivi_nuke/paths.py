"""Where a Render press puts its files, and whether a result is on disk.

Everything goes into the job's folder beside the output, the one that ivi-render uses for the
same job (ivi_vfx/jobs.py: ``.ivi/<name>/``), so that a farm node that sees the output folder also
sees the baked inputs: ``<out dir>/.ivi/<name>/`` holds ``job.json``, the bakes under ``nuke/``
(``plate.####.exr``, ``matte.####.exr``), the farm bundle ``farm/``, and what ivi-render writes
there itself (the checkpoints).
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
    """The job folder (JobSpec.folder of the job file written here)."""
    bakes: Path
    """The baked inputs' folder inside it (ivi_vfx.jobs.BAKES)."""
    plate: str
    """Baked plate pattern (``####``: both Nuke's Write and ivi-render read it)."""
    matte: str
    job_file: Path
    bundle: Path
    """Farm bundle folder (`ivi-render submit --bundle`)."""


def job_paths(request: InpaintRequest) -> JobPaths:
    """The job folder and its files for a request."""
    folder = Path(request.out).parent / ".ivi" / request.name
    bakes = folder / "nuke"
    return JobPaths(folder=folder, bakes=bakes, plate=str(bakes / "plate.####.exr"),
                    matte=str(bakes / "matte.####.exr"), job_file=folder / "job.json", bundle=folder / "farm")


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
