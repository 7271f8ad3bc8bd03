"""`ivi-render propagate`: mattes for every frame from the object's roto on one or more keyframes."""
from __future__ import annotations

from pathlib import Path

import click

from ivi_vfx.config import PRESET_NAMES, propagate_config
from ivi_vfx.pipeline import propagate as run_propagate
from ivi_vfx.train import resolve_device

from . import options
from .options import frames_callback
from .stop import StopFlag
from .progress import Progress


@click.command()
@click.option("--plate", required=True, metavar="PATTERN", help="Plate sequence, e.g. plate.####.exr.")
@options.keys
@click.option("--frames", callback=frames_callback, metavar="RANGE",
              help="Frames to write mattes for (default: every plate frame on disk).")
@click.option("--mask-channel", metavar="NAME", help="Channel of the key mattes (default: A, or the only channel).")
@click.option("--out", required=True, metavar="PATTERN", help="Output mattes, e.g. matte.####.exr (channel A).")
@click.option("--overwrite", is_flag=True, help="Replace mattes that already exist.")
@click.option("--preset", type=click.Choice(PRESET_NAMES), default=None,
              help="What the run is for: quick, final (the default) or paper; see ivi-render inpaint --help.")
@click.option("--steps", type=click.IntRange(min=0), default=None, help="Training steps (default: the preset's).")
@click.option("--budget", type=click.FloatRange(min=0), default=None, metavar="MINUTES",
              help="Most minutes of training, 0 for no limit (default: the preset's).")
@click.option("--work-size", type=click.IntRange(min=16), default=None, metavar="PIXELS",
              help="Longest side of the working resolution (default: the preset's).")
@click.option("--threshold", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=None,
              help="Object probability above which a pixel is matte (default 0.5).")
@click.option("--object-weight", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=None,
              help="Weight of object pixels in the loss; above 0.5 favours covering the object (default 0.8).")
@click.option("--dilate", type=click.IntRange(min=0), default=None, metavar="PIXELS",
              help="Grow the predicted mattes by this many pixels (default 0).")
@options.propagation
@click.option("--seed", type=int, default=None, help="Random seed (default 0).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--checkpoint", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Checkpoint file (default: .ivi/ beside the output). A compatible one is resumed.")
@click.option("--resume/--no-resume", default=True, show_default=True, help="Continue from a compatible checkpoint.")
def propagate(plate: str, key_mask: str | None, key_frames: list[int] | None, frames: list[int] | None, mask_channel: str | None,
              out: str, overwrite: bool, preset: str | None, steps: int | None, budget: float | None,
              work_size: int | None, threshold: float | None, object_weight: float | None, dilate: int | None,
              track: float | None, max_speed: float | None, rounds: int | None, seed: int | None, device: str, checkpoint: Path | None, resume: bool) -> None:
    """Train on the key frames' roto, then write the object's matte for every frame.

    \b
    Example:
      ivi-render propagate --plate sh010/plate.####.exr --key-mask sh010/roto.####.exr \\
                           --key-frames 1001,1060 --out sh010/matte.####.exr
    """
    if key_mask is None or key_frames is None:
        raise click.UsageError("give --key-mask and --key-frames")
    cfg = propagate_config(preset, str(resolve_device(device))).replace(
        steps=steps, budget=budget, work_size=work_size, threshold=threshold, object_weight=object_weight,
        dilate=dilate, track=track, max_speed=max_speed, rounds=rounds, seed=seed)
    stop = StopFlag().install()
    with Progress() as progress:
        written = run_propagate(plate, key_mask, key_frames, out, cfg, frames=frames, mask_channel=mask_channel,
                                device=device, checkpoint=checkpoint, resume=resume, overwrite=overwrite,
                                on_progress=progress, should_stop=stop)
    click.echo(f"wrote {len(written)} mattes: {out}", err=True)
