"""Where a Render press puts its files, and whether a result is on disk.

Everything goes into the job's folder beside the output, the one that ivi-render uses for the
same job (ivi_vfx/jobs.py: ``.ivi/<name>/``), so that a farm node that sees the output folder also
sees the baked inputs: ``<out dir>/.ivi/<name>/`` holds ``job.json``, the bakes under ``nuke/``
(``plate.####.exr``, ``matte.####.exr``), the farm bundle ``farm/``, and what ivi-render writes
there itself (the checkpoints).
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import knobs
from .request import InpaintRequest, RequestError

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
    clean: str = ""
    """Baked clean reference pattern."""
    mattes: str = ""
    """The predicted mattes (JobSpec.predicted_mattes of the job file): where Predict mattes writes them."""
    predict_file: Path = Path()
    """Predict mattes' own JobSpec (``writes: mattes``, same folder)."""
    predict_stamp: Path = Path()
    """What the predicted mattes were made from (request.predict_stamp), written when Predict ends well."""
    report: Path = Path()
    """The training's report/ (metrics.csv, plot.png, preview.png: ivi_vfx/report.py)."""


def job_paths(request: InpaintRequest) -> JobPaths:
    """The job folder and its files for a request."""
    folder = Path(request.out).parent / ".ivi" / request.name
    bakes = folder / "nuke"
    return JobPaths(folder=folder, bakes=bakes, plate=str(bakes / "plate.####.exr"),
                    matte=str(bakes / "matte.####.exr"), job_file=folder / "job.json", bundle=folder / "farm",
                    clean=str(bakes / "clean.####.exr"), mattes=str(folder / "mattes" / "matte.####.exr"),
                    predict_file=folder / "predict.json", predict_stamp=folder / "predicted.json",
                    report=folder / "report")


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


# --- versions ------------------------------------------------------------------------------------------

VERSION = re.compile(r"(?<![A-Za-z0-9])v(\d{2,})(?![0-9])")
"""A version token, ``v003`` (two digits or more), in a folder or file name."""


def version_of(pattern: str) -> int | None:
    """The version of an output (its last v### token), or None when it has none."""
    found = VERSION.findall(pattern)
    return int(found[-1]) if found else None


def with_version(pattern: str, number: int) -> str:
    """Every v### token of the path set to `number`, each keeping its width (``v003`` -> ``v004``)."""
    return VERSION.sub(lambda m: f"v{number:0{len(m.group(1))}d}", pattern)


@dataclass(frozen=True)
class OutputPlan:
    """What a Render writes to: the output (maybe versioned up) and whether ivi-render replaces frames."""

    out: str
    overwrite: bool
    note: str = ""
    """Said on the status line: why the output changed, or what is kept."""


def plan_output(out: str, first: int, last: int, *, overwrite: bool, resume: bool,
                exists: Callable[[str], bool] | None = None) -> OutputPlan:
    """Never replace a result without a version.

    - overwrite on: the frames are rendered again (--overwrite).
    - no frame on disk: as it is.
    - some frames on disk, resume on: the same job stopped while rendering; it finishes the missing ones.
    - a finished result (or any frame, with resume off): with a v### token, the next version with no frame on
      disk; without one, RequestError naming both fixes.
    """
    exists = exists or (lambda path: Path(path).is_file())

    def present(pattern: str) -> list[int]:
        return [f for f in range(first, last + 1) if exists(frame_path(pattern, f))]

    if overwrite:
        return OutputPlan(out, True, "overwrite on: the frames on disk are rendered again")
    on_disk = present(out)
    count = last - first + 1
    if not on_disk:
        return OutputPlan(out, False)
    if resume and len(on_disk) < count:
        return OutputPlan(out, False, f"{len(on_disk)} of {count} frames already written; rendering the rest")
    version = version_of(out)
    if version is None:
        raise RequestError(f"{knobs.OUTPUT}: {len(on_disk)} of {count} frames of {out} exist; put a version in it "
                           f"(e.g. clean_v001.####.exr: Render then versions up and keeps this one), or turn on "
                           f"'{knobs.OVERWRITE}' to replace them")
    number = version + 1
    while present(with_version(out, number)):
        number += 1
    new = with_version(out, number)
    return OutputPlan(new, False, f"v{version:03d} kept; writing v{number:03d}")
