"""`ivi-render render`: render frames of a trained job from its job folder (a farm's chunk task)."""
from __future__ import annotations

from pathlib import Path

import click

from ivi_vfx.io.sequence import parse_frames
from ivi_vfx.jobs import JobSpec
from ivi_vfx.pipeline import render_job

from . import options
from .progress import job_run


@click.command()
@options.job_file
@options.checkpoint_dir
@options.plate
@options.mask
@options.clean
@options.out
@options.frames
@options.overwrite
@options.device
@options.progress_format
def render(job_file: Path | None, checkpoint_dir: Path | None, plate: str | None, mask: str | None, clean: str | None,
           out: str | None, frames: str | None, overwrite: bool, device: str, progress_format: str) -> None:
    """Render a chunk of frames from a trained job folder; idempotent.

    Frames already complete are skipped (unless --overwrite), so a retried or repeated chunk costs
    nothing, and a render killed at any point leaves only whole frames behind. --checkpoint-dir,
    --plate, --mask, --clean and --out replace the job file's paths (a farm node's own view of them).

    \b
    Examples:
      ivi-render render --job sh010/job.json --frames 1001-1010
      ivi-render render --checkpoint-dir sh010/.ivi/clean --frames 1011-1020
    """
    if job_file is None and checkpoint_dir is None:
        raise click.UsageError("give --job FILE or --checkpoint-dir DIR (or both: the job, and its job folder)")
    spec = JobSpec.load(job_file or checkpoint_dir)  # type: ignore[arg-type]
    if checkpoint_dir is not None:
        spec = spec.replace(checkpoint_dir=str(checkpoint_dir))  # the folder may have moved since training
    given = (("plate", plate), ("mask", mask), ("clean", clean), ("out", out))
    spec = spec.replace(**{key: value for key, value in given if value})
    with job_run(progress_format) as (progress, stop):
        result = render_job(spec, None if frames is None else list(parse_frames(frames)), device=device,
                            overwrite=overwrite, on_progress=progress, should_stop=stop)
    click.echo(f"wrote {len(result.written)} frames, {len(result.skipped)} already complete: {spec.out}", err=True)
