"""`ivi-render submit`: write a farm job for a JobSpec (Open Job Description, OpenCue, Deadline 10)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ivi_vfx import farm as farms

from . import options


@click.command()
@click.option("--farm", type=click.Choice(list(farms.FARMS)), default="openjd", show_default=True,
              help="; ".join(f"{name}: {what}" for name, what in farms.FARMS.items()) + ".")
@click.option("--bundle", type=click.Path(file_okay=False, path_type=Path), required=True, metavar="DIR",
              help="Folder to write the job files into.")
@click.option("--chunk-size", type=click.IntRange(min=1), default=10, show_default=True,
              help="Frames per Render task.")
@options.job_file
@options.job
def submit(farm: str, bundle: Path, chunk_size: int, job_file: Path | None, device: str, **values: Any) -> None:
    """Write a farm job: one Train task (a GPU), then Render tasks over frame chunks that depend on it.

    Takes the same input options as `inpaint`, or a JobSpec file. Paths are made absolute, for farm
    nodes that see the same storage. Nothing is sent to a scheduler: submit the files with the
    farm's own tool (`deadline bundle submit DIR`, `cuerun`, `deadlinecommand`), or run an OpenJD
    bundle here with `openjd run DIR/template.json --step Render --run-dependencies`.

    \b
    Example:
      ivi-render submit --farm openjd --bundle sh010/farm --plate sh010/plate.####.exr \\
                        --mask sh010/roto.####.exr --out sh010/clean.####.exr --chunk-size 10
    """
    spec = options.job_spec(job_file, **values).absolute()
    if spec.writes != "clean":
        raise click.UsageError(f"{job_file}: a job that writes mattes runs on one machine (`ivi-render run`); "
                               f"a farm job trains once and renders a clean plate in chunks")
    spec.train_config(device)  # a bad preset or value fails here, not on the farm
    click.echo(str(farms.writer(farm)(spec, bundle, chunk_size=chunk_size, device=device)))
