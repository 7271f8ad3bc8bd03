"""`ivi-render preview`: a contact sheet (plate | fill | matte [| confidence]) of chosen frames of a job."""
from __future__ import annotations

from pathlib import Path

import click

from ivi_vfx.io.sequence import parse_frames
from ivi_vfx.jobs import JobSpec
from ivi_vfx.sheet import write_contact_sheet

from . import options


@click.command()
@click.argument("job", type=click.Path(exists=True, path_type=Path), metavar="JOB")
@options.frames
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE.png",
              help="The contact sheet (default: report/sheet.png in the job folder).")
@click.option("--width", type=click.IntRange(min=32), default=320, show_default=True, metavar="PIXELS",
              help="Width of each picture in the sheet.")
def preview(job: Path, frames: str | None, out: Path | None, width: int) -> None:
    """Write a contact sheet of a job's output frames: plate | fill | matte, and the confidence when the output
    has a confidence.Y channel. JOB is a job.json or its job folder.

    Without --frames, five frames spread over the output frames on disk. The training's own report
    (metrics.csv, plot.png, preview.png) is in the job folder's report/ as it trains.

    \b
    Examples:
      ivi-render preview sh010/.ivi/clean
      ivi-render preview sh010/.ivi/clean/job.json --frames 1001,1050,1100 --out sh010/sheet.png
    """
    spec = JobSpec.load(job)
    if job.is_dir():
        spec = spec.replace(checkpoint_dir=str(job))  # the folder may have moved since training
    path = write_contact_sheet(spec, None if frames is None else list(parse_frames(frames)), out, width)
    click.echo(str(path))
