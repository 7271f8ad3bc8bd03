"""`ivi-render inpaint`: the one-shot job, train on the shot then render it."""
from __future__ import annotations

from pathlib import Path

import click

from ivi_vfx.config import HiresConfig, preset_config, propagate_config
from ivi_vfx.errors import ConfigError
from ivi_vfx.pipeline import inpaint as run_inpaint
from ivi_vfx.pipeline import inpaint_from_keys
from ivi_vfx.train import resolve_device

from . import options
from .stop import StopFlag
from .progress import Progress, quality_note


@click.command()
@options.optional_inputs
@options.keys
@options.propagation
@options.output
@options.training
@options.hires
@click.option("--checkpoint", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Checkpoint file (default: .ivi/ beside the output). A compatible one is resumed.")
@click.option("--resume/--no-resume", default=True, show_default=True,
              help="Continue from a compatible checkpoint.")
@options.progress_format
def inpaint(plate: str | None, mask: str | None, frames: list[int] | None, mask_channel: str | None,
            key_mask: str | None, key_frames: list[int] | None, track: float | None, max_speed: float | None,
            rounds: int | None, out: str, overwrite: bool,
            preset: str | None, steps: int | None, budget: float | None, finetune_steps: int | None,
            encoder: str | None, work_size: int | None, dilate: int | None, seed: int | None,
            device: str, scales: str, patch_size: int, scale_steps: int, tile_size: int, checkpoint: Path | None,
            resume: bool, progress_format: str) -> None:
    """Fill the matte of a plate sequence and write the clean plate (alpha = the matte).

    The matte is a sequence (--mask), or is predicted for every frame from the object's roto on a
    few key frames (--key-mask with --key-frames), in which case alpha is the predicted matte.

    \b
    Examples:
      ivi-render inpaint --plate sh010/plate.####.exr --mask sh010/roto.####.exr \\
                         --out sh010/clean.####.exr --frames 1001-1100
      ivi-render inpaint --plate sh010/plate.####.exr --key-mask sh010/roto.####.exr \\
                         --key-frames 1001,1060 --out sh010/clean.####.exr
      ivi-render inpaint --plate sh020/plate_4k.####.exr --mask sh020/roto.####.exr \\
                         --out sh020/clean.####.exr --scales 2 --tile-size 512
    """
    if plate is None:
        raise click.UsageError("give --plate")
    if (mask is None) == (key_mask is None) or (key_mask is None) != (key_frames is None):
        raise click.UsageError("give either --mask, or --key-mask with --key-frames")
    if key_mask is None and {track, max_speed, rounds} != {None}:
        raise click.UsageError("--track, --max-speed and --rounds are mask propagation's: give them with --key-mask")
    on = str(resolve_device(device))
    cfg = preset_config(preset, on).rescheduled(steps).replace(
        budget=budget, finetune_steps=finetune_steps, encoder=encoder, work_size=work_size, dilate=dilate, seed=seed)
    try:
        hires = HiresConfig(scales=scales, patch=patch_size, tile=tile_size, steps=scale_steps).validate()
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--scales/--patch-size/--scale-steps/--tile-size") from exc
    stop = StopFlag().install()
    with Progress(fmt=progress_format) as progress:
        common = dict(frames=frames, mask_channel=mask_channel, device=device, checkpoint=checkpoint, resume=resume,
                      overwrite=overwrite, on_progress=progress, should_stop=stop, hires=hires)
        if key_mask is not None:
            propagation = propagate_config(preset, on).replace(seed=seed, track=track, max_speed=max_speed,
                                                                rounds=rounds)
            result = inpaint_from_keys(plate, key_mask, key_frames or [], out, cfg, propagation, **common)
        else:
            result = run_inpaint(plate, mask, out, cfg, **common)
    click.echo(f"wrote {len(result.written)} frames{quality_note(result.fit)}: {out}", err=True)
