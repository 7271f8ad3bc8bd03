"""Options shared by the subcommands, so every subcommand spells them the same way."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ivi_vfx.config import PRESET_NAMES
from ivi_vfx.errors import ConfigError
from ivi_vfx.io.sequence import compact, parse_frames
from ivi_vfx.jobs import PROPAGATION_KEYS, JobSpec

from .progress import PROGRESS_FORMATS

F = Callable[..., Any]


def frames_callback(ctx: click.Context, param: click.Parameter, value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        return list(parse_frames(value))
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from exc


def _stack(*decorators: F) -> F:
    def apply(f: F) -> F:
        for decorator in reversed(decorators):
            f = decorator(f)
        return f
    return apply


def _inputs(required: bool) -> F:
    return _stack(
        click.option("--plate", required=required, metavar="PATTERN",
                     help="Plate sequence, e.g. plate.####.exr or plate.%04d.exr."),
        click.option("--mask", required=required, metavar="PATTERN",
                     help="Matte sequence (1 = fill), same frames and format as the plate."),
        click.option("--frames", callback=frames_callback, metavar="RANGE",
                     help="Frames to process, e.g. 1001-1100 or 1001-1050,1060 (default: every plate frame on disk)."),
        click.option("--mask-channel", metavar="NAME",
                     help="Channel of the matte (default: A, or the file's only channel)."),
    )


inputs = _inputs(required=True)
optional_inputs = _inputs(required=False)

keys = _stack(
    click.option("--key-mask", metavar="PATTERN",
                 help="The object's roto on key frames only (1 = object), e.g. roto.####.exr; mattes for every "
                      "frame are predicted from it (mask propagation)."),
    click.option("--key-frames", callback=frames_callback, metavar="FRAMES",
                 help="The frames whose roto --key-mask holds, e.g. 1001 or 1001,1060."),
)
"""The keyframe roto that mask propagation starts from."""

propagation = _stack(
    click.option("--track", type=click.FloatRange(0, 1, max_open=True), default=None, metavar="SHARE",
                 help="Mask propagation's temporal constraint: keep the parts of a frame's matte within this share of "
                      "the frame of the previous frame's matte, outward from the keys; 0 treats each frame on its own "
                      "(default 0.04)."),
    click.option("--max-speed", type=click.FloatRange(min=0), default=None, metavar="SHARE",
                 help="Mask propagation: the object's fastest motion, as a share of the frame per frame; farther from "
                      "where it was is taught as background, and dropped from the mattes; 0 for no limit (the "
                      "default). Set it for a slow object, e.g. 0.03."),
    click.option("--rounds", type=click.IntRange(min=0), default=None,
                 help="Mask propagation: self-training rounds on the other frames' backgrounds, sweeping outward from "
                      "the keys; 0 trains on the keys alone (the default). Best with --max-speed."),
)
"""How mask propagation follows the object from the keys (PropagateConfig.track, max_speed, rounds)."""

training = _stack(
    click.option("--preset", type=click.Choice(PRESET_NAMES), default=None,
                 help="What the run is for: 'quick' (a look in minutes), 'final' (the default) or 'paper' (the "
                      "reference method, hours on a GPU); each has a CPU and a GPU variant. 'preview' and "
                      "'cpu' are the earlier names of quick and final."),
    click.option("--steps", type=click.IntRange(min=0), default=None, help="Training steps (default: the preset's)."),
    click.option("--budget", type=click.FloatRange(min=0), default=None, metavar="MINUTES",
                 help="Most minutes of training, 0 for no limit (default: the preset's); training ends at "
                      "--steps or here, whichever comes first."),
    click.option("--finetune-steps", type=click.IntRange(min=0), default=None, metavar="N",
                 help="The last N of the steps fine-tune with the anti-ambiguity and stabilisation terms "
                      "(default: the preset's; 0 = reconstruction only)."),
    click.option("--encoder", default=None, metavar="random|vgg19:FILE",
                 help="Features of the anti-ambiguity term: 'random' (default, no download) or "
                      "'vgg19:FILE' with torchvision VGG19 weights."),
    click.option("--work-size", type=click.IntRange(min=16), default=None, metavar="PIXELS",
                 help="Longest side of the working resolution (default: the preset's)."),
    click.option("--dilate", type=click.IntRange(min=0), default=None, metavar="PIXELS",
                 help="Grow the matte by this many pixels before filling (default 0)."),
    click.option("--seed", type=int, default=None, help="Random seed (default 0)."),
    click.option("--device", default="auto", show_default=True,
                 help="auto, cpu, cuda or cuda:N."),
)

def _hires(job: bool) -> F:
    """The progressive high-resolution options; for a job (`job`), unset ones keep the job file's values."""
    def default(value: Any) -> Any:
        return None if job else value

    return _stack(
        click.option("--scales", default=default("auto"), show_default=not job, metavar="auto|off|N|F,F,1",
                     help="Progressive high resolution: finer scales trained on patches around the matte and run "
                          "in tiles. 'auto' (default) adds them when the plate is at least 3 times the working "
                          "size; a count, or the scales as fractions of the full resolution ending with 1 (0.25,1)."),
        click.option("--patch-size", type=click.IntRange(min=0), default=default(0), metavar="PIXELS",
                     help="Training patch side at the finer scales (default 0: 64 on a CPU, 128 on a GPU)."),
        click.option("--scale-steps", type=click.IntRange(min=0), default=default(0), metavar="N",
                     help="Training steps of each finer scale (default 0: 300 or 2 minutes on a CPU, 2000 on a GPU)."),
        click.option("--tile-size", type=click.IntRange(min=0), default=default(0), metavar="PIXELS",
                     help="Inference tile side at the finer scales; memory grows with it, not with the plate "
                          "(default 0: 384 on a CPU, 1024 on a GPU)."),
    )


hires = _hires(job=False)
"""Progressive high-resolution options (ivi_vfx.progressive)."""


def _output(required: bool) -> F:
    return _stack(
        click.option("--out", required=required, metavar="PATTERN", help="Output sequence, e.g. clean.####.exr."),
        click.option("--overwrite", is_flag=True, help="Replace output frames that already exist."),
    )


output = _output(required=True)

progress_format = click.option(
    "--progress-format", type=click.Choice(PROGRESS_FORMATS), default="plain", show_default=True,
    envvar="IVI_PROGRESS_FORMAT", show_envvar=True,
    help="Progress lines on stdout: 'plain' (Progress: N%, for Deadline and Nuke), 'openjd' "
         "(openjd_progress: N, for Open Job Description and Deadline Cloud) or 'both'.")

job_inputs = _stack(
    click.option("--job", "job_file", type=click.Path(exists=True, path_type=Path), default=None, metavar="FILE",
                 help="A JobSpec (job.json, or a checkpoint folder holding one); the options below change it."),
    _inputs(required=False),
    keys,
    propagation,
    click.option("--out", metavar="PATTERN", help="Output sequence, e.g. clean.####.exr."),
    training,
    _hires(job=True),
    click.option("--checkpoint-dir", type=click.Path(file_okay=False, path_type=Path), default=None, metavar="DIR",
                 help="Checkpoint folder: job.json and model.ckpt (default: .ivi/<name>/ beside the output)."),
)
"""The options that describe a job: a JobSpec file, or inpaint's options, or both (the options win)."""

JOB_KEYS = ("plate", "mask", "out", "key_mask", "key_frames", "frames", "mask_channel", "preset", "steps", "budget",
            "finetune_steps", "encoder", "work_size", "dilate", "seed", "scales", "patch_size", "scale_steps",
            "tile_size", "track", "max_speed", "rounds")


def job_spec(job_file: Path | None, checkpoint_dir: Path | None, **values: Any) -> JobSpec:
    """The JobSpec that job_inputs describe; UsageError when neither a job file nor the inputs are given."""
    changes = {key: values[key] for key in JOB_KEYS if values.get(key) is not None}
    for key in ("frames", "key_frames"):
        if changes.get(key) is not None:
            changes[key] = compact(changes[key])
    if checkpoint_dir is not None:
        changes["checkpoint"] = str(checkpoint_dir)
    if job_file is None:
        missing = [f"--{key}" for key in ("plate", "out") if key not in changes]
        if "mask" not in changes and "key_mask" not in changes:
            missing.insert(1, "--mask (or --key-mask with --key-frames)")
        if missing:
            raise click.UsageError(f"give --job FILE, or {', '.join(missing)} (as for ivi-render inpaint)")
    data: dict[str, Any] = {}
    if job_file is not None:
        data = dataclasses.asdict(JobSpec.load(job_file))
        if "mask" in changes or "key_mask" in changes:  # the command line's matte replaces the file's
            data.update(mask=None, key_mask=None, key_frames=None, **dict.fromkeys(PROPAGATION_KEYS))
    try:
        spec = JobSpec(**{**data, **changes})
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    try:
        spec.hires_config()
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--scales/--patch-size/--scale-steps/--tile-size") from exc
    return spec
