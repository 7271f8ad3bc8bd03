"""Farm templates built from a JobSpec: they write files and never call a scheduler.

Each farm gets the same two-stage job: one Train task (a GPU) that writes the checkpoint folder,
then Render tasks over frame chunks that depend on it, run in any order, any number of times.
- openjd.py: an Open Job Description job bundle (AWS Deadline Cloud, `openjd run` locally);
- opencue.py: OpenCue job XML through PyOutline (extra `opencue`);
- deadline.py: Deadline 10 job and plugin info files for the CommandLine plugin.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from ivi_vfx.io.sequence import compact, find_sequence
from ivi_vfx.jobs import JobSpec

Writer = Callable[..., Path]
"""write_job(spec, folder, *, chunk_size, device) -> the file to submit: every farm module has one."""

FARMS: dict[str, str] = {
    "openjd": "an Open Job Description bundle (Deadline Cloud, `openjd run`)",
    "opencue": "OpenCue job XML (PyOutline, extra 'opencue')",
    "deadline": "Deadline 10 CommandLine job files and submit.sh",
}
"""Each farm's name (its module here) and what it writes."""


def writer(farm: str) -> Writer:
    """The farm's write_job, imported when asked for (a farm's extra is needed only by its own jobs)."""
    if farm not in FARMS:
        raise ValueError(f"unknown farm {farm!r}; the farms are: {', '.join(FARMS)}")
    return importlib.import_module(f"{__name__}.{farm}").write_job


def job_frames(spec: JobSpec) -> str:
    """The job's frames as a range string, resolved on disk when the job says 'every frame'.

    Submitting checks the plate now, so a wrong pattern fails at the artist's desk, not on the farm.
    """
    return compact(find_sequence(spec.plate, spec.frame_list()).frames)
