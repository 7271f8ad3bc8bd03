"""`ivi-render submit`: write a farm job for a JobSpec (Open Job Description, OpenCue, Deadline 10)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ivi_vfx.farm import FARMS

from . import options


@click.command()
@click.option("--farm", type=click.Choice(FARMS), default="openjd", show_default=True,
              help="openjd: an Open Job Description bundle (Deadline Cloud, `openjd run`); opencue: job XML "
                   "(PyOutline, extra 'opencue'); deadline: Deadline 10 CommandLine job files.")
@click.option("--bundle", type=click.Path(file_okay=False, path_type=Path), required=True, metavar="DIR",
              help="Folder to write the job files into.")
@click.option("--chunk-size", type=click.IntRange(min=1), default=10, show_default=True,
              help="Frames per Render task.")
@options.job_inputs
def submit(farm: str, bundle: Path, chunk_size: int, job_file: Path | None, checkpoint_dir: Path | None,
           device: str, **values: Any) -> None:
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
    spec = options.job_spec(job_file, checkpoint_dir, **values).absolute()
    spec.train_config(device)  # a bad preset or value fails here, not on the farm
    if farm == "openjd":
        from ivi_vfx.farm import openjd  # noqa: PLC0415
        path = openjd.write_bundle(spec, bundle, chunk_size=chunk_size, device=device)
    elif farm == "opencue":
        from ivi_vfx.farm import opencue  # noqa: PLC0415
        path = opencue.write_job(spec, bundle, chunk_size=chunk_size, device=device)
    else:
        from ivi_vfx.farm import deadline  # noqa: PLC0415
        path = deadline.write_job(spec, bundle, chunk_size=chunk_size, device=device)
    click.echo(str(path))
