"""`ivi-render train`: train a job into its job folder (the farm's GPU task)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ivi_vfx.pipeline import train_job

from . import options
from .progress import job_run, quality_note


@click.command()
@options.job_file
@options.job
@options.resume
@options.progress_format
def train(job_file: Path | None, device: str, resume: bool, progress_format: str, **values: Any) -> None:
    """Train on a shot and write the job folder (job.json + model.ckpt) that `render` reads.

    SIGTERM (a farm's pre-emption) writes a checkpoint and exits 143; the same command resumes.
    Under torchrun, the processes train data-parallel and one checkpoint comes out.

    \b
    Examples:
      ivi-render train --plate sh010/plate.####.exr --mask sh010/roto.####.exr --out sh010/clean.####.exr
      ivi-render train --job sh010/job.json
      torchrun --nproc-per-node 2 --no-python ivi-render train --job sh010/job.json
    """
    spec = options.job_spec(job_file, **values)
    with job_run(progress_format) as (progress, stop):
        result = train_job(spec, device=device, resume=resume, on_progress=progress, should_stop=stop)
    click.echo(f"trained {result.step} steps{quality_note(result)}: {spec.folder}", err=True)
