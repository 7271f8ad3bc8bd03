"""`ivi-render inpaint`: the whole job on this machine, from options: train on the shot, then render it."""
from __future__ import annotations

from typing import Any

import click

from ivi_vfx.config import PRESETS
from ivi_vfx.pipeline import run_job

from . import options
from .progress import job_run, quality_note

_FINAL = PRESETS["final"]

HELP = f"""Fill the matte of a plate sequence and write the clean plate (alpha = the matte).

The matte is a sequence (--mask), or is predicted for every frame from the object's roto on a
few key frames (--key-mask with --key-frames), in which case alpha is the predicted matte.
Such a keyframe job runs two stages: mask propagation (the --propagate-* options, --threshold,
--object-weight, --track, --max-speed, --rounds), then the fill (--steps, --budget, --work-size
and the rest). With the final preset on a CPU it spends up to {_FINAL.propagate_cpu.budget:g} minutes on the
first and {_FINAL.cpu.budget:g} on the second, then renders.

The job folder (.ivi/<name>/ beside the output, or --checkpoint-dir) keeps job.json and the
checkpoints: the same command resumes a stopped run, and `ivi-render render --checkpoint-dir`
renders its frames again, bit for bit. Existing output frames are an error without --overwrite.

\b
Examples:
  ivi-render inpaint --plate sh010/plate.####.exr --mask sh010/roto.####.exr \\
                     --out sh010/clean.####.exr --frames 1001-1100
  ivi-render inpaint --plate sh010/plate.####.exr --key-mask sh010/roto.####.exr \\
                     --key-frames 1001,1060 --out sh010/clean.####.exr
  ivi-render inpaint --plate sh020/plate_4k.####.exr --mask sh020/roto.####.exr \\
                     --out sh020/clean.####.exr --scales 2 --tile-size 512
"""


@click.command(help=HELP)
@options.job
@options.overwrite
@options.resume
@options.progress_format
def inpaint(device: str, overwrite: bool, resume: bool, progress_format: str, **values: Any) -> None:
    """The whole job from options (HELP says what it does)."""
    spec = options.job_spec(offers_job=False, **values)
    with job_run(progress_format) as (progress, stop):
        result = run_job(spec, device=device, resume=resume, overwrite=overwrite, existing="refuse",
                         on_progress=progress, should_stop=stop)
    click.echo(f"wrote {len(result.written)} frames{quality_note(result.fit)}: {spec.out}", err=True)
