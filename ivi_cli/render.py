"""`ivi-render render`: render frames of a trained job from its checkpoint folder (a farm's chunk task)."""
from __future__ import annotations

from pathlib import Path

import click

from ivi_vfx.jobs import JobSpec
from ivi_vfx.pipeline import render_job

from . import options
from .stop import StopFlag
from .progress import Progress


@click.command()
@click.option("--job", "job_file", type=click.Path(exists=True, path_type=Path), default=None, metavar="FILE",
              help="The job's JobSpec (job.json); its checkpoint folder must hold a trained model.")
@click.option("--checkpoint-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              metavar="DIR", help="A checkpoint folder written by `ivi-render train` (instead of --job).")
@click.option("--frames", callback=options.frames_callback, metavar="RANGE",
              help="Frames to render, e.g. 1001-1010 (a farm chunk); default every trained frame.")
@click.option("--overwrite", is_flag=True, help="Render again frames whose output is already complete.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@options.progress_format
def render(job_file: Path | None, checkpoint_dir: Path | None, frames: list[int] | None, overwrite: bool,
           device: str, progress_format: str) -> None:
    """Render a chunk of frames from a trained checkpoint folder; idempotent.

    Frames already complete are skipped (unless --overwrite), so a retried or repeated chunk costs
    nothing, and a render killed at any point leaves only whole frames behind.

    \b
    Examples:
      ivi-render render --job sh010/job.json --frames 1001-1010
      ivi-render render --checkpoint-dir sh010/.ivi/clean --frames 1011-1020
    """
    if (job_file is None) == (checkpoint_dir is None):
        raise click.UsageError("give either --job FILE or --checkpoint-dir DIR")
    spec = JobSpec.load(job_file or checkpoint_dir)  # type: ignore[arg-type]
    if checkpoint_dir is not None:
        spec = spec.replace(checkpoint=str(checkpoint_dir))  # the folder may have moved since training
    stop = StopFlag().install()
    with Progress(fmt=progress_format) as progress:
        result = render_job(spec, frames, device=device, overwrite=overwrite, on_progress=progress,
                            should_stop=stop)
    click.echo(f"wrote {len(result.written)} frames, {len(result.skipped)} already complete: {spec.out}", err=True)
