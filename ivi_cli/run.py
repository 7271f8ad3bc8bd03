"""`ivi-render run`: a whole JobSpec on this machine (train or resume, then render every frame)."""
from __future__ import annotations

from pathlib import Path

import click

from ivi_vfx.jobs import JobSpec
from ivi_vfx.pipeline import run_job

from . import options
from .stop import StopFlag
from .progress import Progress


@click.command()
@click.argument("job_file", type=click.Path(exists=True, path_type=Path), metavar="JOB.json")
@click.option("--overwrite", is_flag=True, help="Render again frames whose output is already complete.")
@click.option("--resume/--no-resume", default=True, show_default=True,
              help="Continue from a compatible checkpoint in the job's folder.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@options.progress_format
def run(job_file: Path, overwrite: bool, resume: bool, device: str, progress_format: str) -> None:
    """Run a job file: train into its checkpoint folder, then render the frames not yet complete.

    Running it again after a stop or a kill continues where it was.

    \b
    Example:
      ivi-render run sh010/job.json
    """
    spec = JobSpec.load(job_file)
    stop = StopFlag().install()
    with Progress(fmt=progress_format) as progress:
        result = run_job(spec, device=device, resume=resume, overwrite=overwrite, on_progress=progress,
                         should_stop=stop)
    click.echo(f"wrote {len(result.written)} frames, {len(result.skipped)} already complete: {spec.out}", err=True)
