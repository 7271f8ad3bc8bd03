"""`ivi-render run`: a whole JobSpec on this machine (train or resume, then render every frame)."""
from __future__ import annotations

from pathlib import Path

import click

from ivi_vfx.jobs import JobSpec
from ivi_vfx.pipeline import run_job

from . import options
from .progress import job_run


@click.command()
@click.argument("job_file", type=click.Path(exists=True, path_type=Path), metavar="JOB.json")
@options.overwrite
@options.resume
@options.device
@options.progress_format
def run(job_file: Path, overwrite: bool, resume: bool, device: str, progress_format: str) -> None:
    """Run a job file: train into its job folder, then render the frames not yet complete.

    Running it again after a stop or a kill continues where it was; complete frames are kept
    unless --overwrite.

    \b
    Example:
      ivi-render run sh010/job.json
    """
    spec = JobSpec.load(job_file)
    with job_run(progress_format) as (progress, stop):
        result = run_job(spec, device=device, resume=resume, overwrite=overwrite, on_progress=progress,
                         should_stop=stop)
    click.echo(f"wrote {len(result.written)} frames, {len(result.skipped)} already complete: {spec.out}", err=True)
