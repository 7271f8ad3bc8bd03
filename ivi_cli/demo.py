"""`ivi-render demo`: the main job on a small shot that it makes itself."""
from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from ivi_vfx import demo as demo_shot
from ivi_vfx.io.exr import read_exr
from ivi_vfx.jobs import JobSpec
from ivi_vfx.pipeline import run_job

from . import options
from .progress import job_run


@click.command()
# The demo's own two: --out is a folder (the shot, the clean plate and the picture go in it), and
# --steps a fixed count, so that the demo takes the same few minutes on every machine.
@click.option("--out", "folder", type=click.Path(file_okay=False, path_type=Path), default=Path("ivi_demo"),
              show_default=True, help="Folder for the shot, the clean plate and the picture.")
@click.option("--steps", type=click.IntRange(min=0), default=1200, show_default=True,
              help="Training steps (in batches of 2, as the final preset on a CPU).")
@options.device
@options.overwrite
def demo(folder: Path, steps: int, device: str, overwrite: bool) -> None:
    """Make a small shot (a disc crossing a panning wall), remove the disc, and show before and after.

    \b
    Example:
      ivi-render demo --out /tmp/ivi_demo
    """
    shot = demo_shot.write_shot(folder / "shot")
    spec = JobSpec(plate=shot.plate, mask=shot.mask, out=str(folder / "clean" / "clean.####.exr"), preset="final",
                   steps=steps)
    with job_run() as (progress, stop):
        run_job(spec, device=device, resume=False, overwrite=overwrite, existing="refuse", on_progress=progress,
                should_stop=stop)
    picks = [shot.frames[0], shot.frames[len(shot.frames) // 2], shot.frames[-1]]
    read = {kind: [read_exr(pattern.replace("####", f"{f:04d}")).pixels for f in picks]
            for kind, pattern in (("plate", shot.plate), ("clean", spec.out), ("truth", shot.truth))}
    picture = folder / "before_after.png"
    demo_shot.write_before_after(picture, [[p[..., :3] for p in read["plate"]], [p[..., :3] for p in read["clean"]]])
    psnr = np.mean([demo_shot.hole_psnr(c[..., :3], t[..., :3], c[..., 3])
                    for c, t in zip(read["clean"], read["truth"])])
    click.echo(f"plate:  {shot.plate}\nmatte:  {shot.mask}\nclean:  {spec.out}\npicture: {picture} "
               f"(top: plate, bottom: clean plate)\nhole PSNR against the truth on the pictured frames: {psnr:.2f} dB")
