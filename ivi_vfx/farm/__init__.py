"""Farm jobs built from a JobSpec, and their submission with the farm's own client.

Each farm gets the same two-stage job: one Train task (a GPU) that writes the checkpoint folder,
then Render tasks over frame chunks that depend on it, run in any order, any number of times.
- openjd.py: an Open Job Description job bundle (AWS Deadline Cloud, `openjd run` locally);
- opencue.py: OpenCue job XML through PyOutline (extra `opencue`);
- deadline.py: Deadline 10 job and plugin info files for the stock CommandLine plugin;
- commands.py: the two stages' ivi-render argument lists; quoting.py: those lists as the command
  lines each farm's node reads (POSIX shells, Windows CreateProcess);
- clients.py: submitting the written files with `deadline bundle submit`, `deadlinecommand` or
  OpenCue's pycue, where they are installed.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ivi_vfx.io.sequence import compact, find_sequence
from ivi_vfx.jobs import JobSpec

FARMS: dict[str, str] = {
    "openjd": "an Open Job Description bundle (Deadline Cloud, `openjd run`)",
    "opencue": "OpenCue job XML (PyOutline, extra 'opencue')",
    "deadline": "Deadline 10 CommandLine job files, submit.sh and submit.bat",
}
"""Each farm's name (its module here) and what it writes."""


@dataclass(frozen=True)
class FarmOptions:
    """How the farm runs the job, beyond the JobSpec: chunks, device, the farm's routing and naming.

    Settings a farm has no use for are ignored by it (OpenJD has no pool; Deadline no show).
    """

    chunk_size: int = 10
    """Frames per Render task."""
    device: str = "auto"
    """ivi-render's --device on the farm nodes: auto, cpu, cuda or cuda:N."""
    ivi_render: str = "ivi-render"
    """The ivi-render command on the farm nodes: a name on their PATH, or a full path."""
    priority: int | None = None
    """Job priority (Deadline 10: 0-100; Deadline Cloud: 0-100 at submission; OpenCue: the job's priority)."""
    pool: str | None = None
    """Deadline 10: the Pool of both jobs."""
    group: str | None = None
    """Deadline 10: the Group of the Render job (and of Train, without `gpu_group`)."""
    gpu_group: str | None = None
    """Deadline 10: the Group of the Train job, the one that needs a GPU."""
    workers: str = "posix"
    """Deadline 10: the workers' OS: 'posix' (Linux, macOS: through sh) or 'windows' (CreateProcess)."""
    show: str | None = None
    """OpenCue: the show; None: $SHOW, else PyOutline's configured default."""
    shot: str | None = None
    """OpenCue: the shot; None: $SHOT, else the job's name (the output's stem)."""
    user: str | None = None
    """OpenCue: the user; None: PyOutline's (the login name)."""
    gpu_memory: str | None = None
    """OpenCue: GPU memory of the Train layer (``16g``); None: from the preset (opencue.gpu_memory)."""


Writer = Callable[[JobSpec, Path, FarmOptions], Path]
"""write_job(spec, folder, options) -> the file to submit: every farm module has one."""


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
