"""`ivi-render propagate`: mattes for every frame from the object's roto on one or more key frames."""
from __future__ import annotations

from typing import Any

import click

from ivi_vfx.pipeline import run_job

from . import options
from .progress import job_run


@click.command()
@options.plate
@options.key_mask
@options.key_frames
@options.frames
@options.mask_channel
@options.out
@options.preset
@options.propagation
@options.dilate
@options.seed
@options.device
@options.checkpoint_dir
@options.overwrite
@options.resume
@options.progress_format
def propagate(device: str, overwrite: bool, resume: bool, progress_format: str,
              **values: Any) -> None:
    """Train on the key frames' roto, then write the object's matte for every frame (channel A).

    The first stage of a keyframe `inpaint`, on its own, so the mattes can be checked (and
    corrected) before the fill; --dilate grows the mattes written. The job folder
    (.ivi/<name>/ beside the mattes) keeps job.json and propagate.ckpt, so a stopped run resumes.

    \b
    Example:
      ivi-render propagate --plate sh010/plate.####.exr --key-mask sh010/roto.####.exr \\
                           --key-frames 1001,1060 --out sh010/matte.####.exr
    """
    spec = options.job_spec(writes="mattes", offers_job=False, **values)
    with job_run(progress_format) as (progress, stop):
        result = run_job(spec, device=device, resume=resume, overwrite=overwrite, existing="refuse",
                         on_progress=progress, should_stop=stop)
    click.echo(f"wrote {len(result.written)} mattes: {spec.out}", err=True)
