"""`ivi-render submit`: write a farm job for a JobSpec (Open Job Description, OpenCue, Deadline 10), and
submit it with the farm's own client where that is installed."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ivi_vfx import farm as farms
from ivi_vfx.farm import clients
from ivi_vfx.farm.deadline import WORKERS

from . import options

farm_options = options.stack(
    click.option("--ivi-render", "ivi_render", default="ivi-render", show_default=True, metavar="COMMAND",
                 help="The ivi-render command on the farm nodes: a name on their PATH, or a full path."),
    click.option("--priority", type=click.IntRange(0, 100), default=None,
                 help="Job priority, 0-100 (Deadline 10, Deadline Cloud, OpenCue; default: the farm's)."),
    click.option("--pool", default=None, help="Deadline 10: the Pool of both jobs."),
    click.option("--group", default=None, help="Deadline 10: the Group of the render job (and of the train job, "
                                               "without --gpu-group)."),
    click.option("--gpu-group", default=None, help="Deadline 10: the Group of the train job, workers with a GPU."),
    click.option("--workers", type=click.Choice(WORKERS), default="posix", show_default=True,
                 help="Deadline 10: the workers' OS. posix (Linux, macOS) runs each task through sh and reports "
                      "progress; windows runs ivi-render directly (CreateProcess quoting, no cmd.exe), without "
                      "progress in the Monitor (the stock plugin reads stdout only through a shell)."),
    click.option("--show", default=None, help="OpenCue: the show (default: $SHOW, else PyOutline's default show)."),
    click.option("--shot", default=None, help="OpenCue: the shot (default: $SHOT, else the job's name, the output's "
                                              "file stem)."),
    click.option("--user", default=None, help="OpenCue: the job's user (default: the login name)."),
    click.option("--gpu-memory", default=None, metavar="SIZE",
                 help="OpenCue: GPU memory of the train layer, e.g. 24g (default: estimated from the preset)."),
)
"""How the farm runs and routes the job (FarmOptions); each farm reads its own."""


@click.command()
@click.option("--farm", type=click.Choice(list(farms.FARMS)), default="openjd", show_default=True,
              help="; ".join(f"{name}: {what}" for name, what in farms.FARMS.items()) + ".")
@click.option("--bundle", type=click.Path(file_okay=False, path_type=Path), required=True, metavar="DIR",
              help="Folder to write the job files into.")
@click.option("--chunk-size", type=click.IntRange(min=1), default=10, show_default=True,
              help="Frames per Render task.")
@click.option("--bundle-only", is_flag=True,
              help="Write the files and print the command that submits them; submit nothing.")
@farm_options
@options.job_file
@options.job
def submit(farm: str, bundle: Path, chunk_size: int, bundle_only: bool, ivi_render: str, priority: int | None,
           pool: str | None, group: str | None, gpu_group: str | None, workers: str, show: str | None,
           shot: str | None, user: str | None, gpu_memory: str | None, job_file: Path | None, device: str,
           **values: Any) -> None:
    """Write a farm job (one Train task on a GPU, then Render tasks over frame chunks that depend on it)
    and submit it.

    Takes the same input options as `inpaint`, or a JobSpec file. Paths are made absolute, for farm
    nodes that see the same storage (or map it). The files' path goes to stdout. Then, unless
    --bundle-only, the farm's own client submits them where it is installed (`deadline bundle
    submit` for openjd, `deadlinecommand` for deadline, pycue with CUEBOT_HOSTS set for opencue),
    and what ran is printed; where it is not, the command to run is printed instead. An OpenJD
    bundle also runs here: `openjd run DIR/template.json --step Render --run-dependencies`.

    \b
    Example:
      ivi-render submit --farm deadline --bundle sh010/farm --plate sh010/plate.####.exr \\
                        --mask sh010/roto.####.exr --out sh010/clean.####.exr --chunk-size 10 \\
                        --pool gpu --gpu-group rtx --group render --priority 60
    """
    spec = options.job_spec(job_file, **values).absolute()
    if spec.writes != "clean":
        raise click.UsageError(f"{job_file}: a job that writes mattes runs on one machine (`ivi-render run`); "
                               f"a farm job trains once and renders a clean plate in chunks")
    spec.train_config(device)  # a bad preset or value fails here, not on the farm
    settings = farms.FarmOptions(chunk_size=chunk_size, device=device, ivi_render=ivi_render, priority=priority,
                                 pool=pool, group=group, gpu_group=gpu_group, workers=workers, show=show, shot=shot,
                                 user=user, gpu_memory=gpu_memory)
    written = farms.writer(farm)(spec, bundle, settings)
    click.echo(str(written))
    done = None if bundle_only else clients.submit(farm, written, settings)
    if done is None:
        why = "--bundle-only" if bundle_only else f"no {farm} client here"
        click.echo(f"not submitted ({why}); to submit, run: {clients.manual_command(farm, written, settings)}",
                   err=True)
        return
    for argv in done.commands:
        click.echo(f"ran: {clients.shell_line(argv)}", err=True)
    if done.output.strip():
        click.echo(done.output.rstrip(), err=True)
    click.echo(f"submitted to {farm}" + (f": {', '.join(done.job_ids)}" if done.job_ids else ""), err=True)
