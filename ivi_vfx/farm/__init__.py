"""Farm templates built from a JobSpec: they write files and never call a scheduler.

Each farm gets the same two-stage job: one Train task (a GPU) that writes the checkpoint folder,
then Render tasks over frame chunks that depend on it, run in any order, any number of times.
- openjd.py: an Open Job Description job bundle (AWS Deadline Cloud, `openjd run` locally);
- opencue.py: OpenCue job XML through PyOutline (extra `opencue`);
- deadline.py: Deadline 10 job and plugin info files for the CommandLine plugin.
"""
from __future__ import annotations

from ivi_vfx.io.sequence import compact, find_sequence
from ivi_vfx.jobs import JobSpec

FARMS = ("openjd", "opencue", "deadline")


def job_frames(spec: JobSpec) -> str:
    """The job's frames as a range string, resolved on disk when the job says 'every frame'.

    Submitting checks the plate now, so a wrong pattern fails at the artist's desk, not on the farm.
    """
    return compact(find_sequence(spec.plate, spec.frame_list()).frames)
