"""Every option of `ivi-render`, defined once, and the JobSpec they describe.

A job option's parameter name is the JobSpec field it sets (``--max-speed`` -> `max_speed`), so
`job_spec` builds the job from them without a table; the subcommands stack the groups they take.
Options left unset are None: the preset (or the job file) decides them where the job runs.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ivi_vfx.config import PRESET_NAMES, PRESETS
from ivi_vfx.errors import ConfigError
from ivi_vfx.io.sequence import parse_frames
from ivi_vfx.jobs import FILL_KEYS, PROPAGATION_KEYS, JobSpec

from .progress import PROGRESS_FORMATS

F = Callable[..., Any]

JOB_KEYS = tuple(f.name for f in dataclasses.fields(JobSpec) if f.name not in ("name", "writes"))
"""The JobSpec fields that options set, each through the option of the same name."""


def flag(key: str) -> str:
    """The option that sets a JobSpec field: ``max_speed`` -> ``--max-speed``."""
    return "--" + key.replace("_", "-")


def _frames(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A frame range, checked now (a usage error), kept as the text a JobSpec and a farm write."""
    if value is not None:
        try:
            parse_frames(value)
        except ConfigError as exc:
            raise click.BadParameter(str(exc)) from exc
    return value


def stack(*decorators: F) -> F:
    """Several click decorators as one, applied in the order given (the help lists them so)."""
    def apply(f: F) -> F:
        for decorator in reversed(decorators):
            f = decorator(f)
        return f
    return apply


_FINAL = PRESETS["final"]

# --- the inputs ---------------------------------------------------------------------------------------

job_file = click.option("--job", "job_file", type=click.Path(exists=True, path_type=Path), default=None,
                        metavar="FILE", help="A JobSpec (job.json, or a job folder holding one); the options "
                                             "given with it change it.")
plate = click.option("--plate", metavar="PATTERN", help="Plate sequence, e.g. plate.####.exr or plate.%04d.exr.")
mask = click.option("--mask", metavar="PATTERN", help="Matte sequence (1 = fill), same frames and format as the plate.")
key_mask = click.option(
    "--key-mask", metavar="PATTERN",
    help="Instead of --mask: the object's roto on key frames only (1 = object), e.g. roto.####.exr; the matte of "
         "every frame is predicted from it (mask propagation).")
key_frames = click.option("--key-frames", callback=_frames, metavar="FRAMES",
                          help="The frames whose roto --key-mask holds, e.g. 1001 or 1001,1060.")
frames = click.option("--frames", callback=_frames, metavar="RANGE",
                      help="Frames to process, e.g. 1001-1100 or 1001-1050,1060 (default: every plate frame on disk; "
                           "for render, every trained frame).")
mask_channel = click.option("--mask-channel", metavar="NAME",
                            help="Channel of the matte or key roto (default: A, or the file's only channel).")
inputs = stack(plate, mask, key_mask, key_frames, frames, mask_channel)
"""The plate and its matte: a matte sequence, or the roto of a few key frames."""

out = click.option("--out", metavar="PATTERN",
                   help="Output sequence, e.g. clean.####.exr (for `propagate`, the mattes: matte.####.exr).")
overwrite = click.option("--overwrite", is_flag=True, help="Replace output frames that already exist.")
checkpoint_dir = click.option(
    "--checkpoint-dir", type=click.Path(file_okay=False, path_type=Path), default=None, metavar="DIR",
    help="The job folder: job.json and the checkpoints (default: .ivi/<name>/ beside the output, <name> its "
         "file stem).")
resume = click.option("--resume/--no-resume", default=True, show_default=True,
                      help="Continue from a compatible checkpoint in the job folder.")
device = click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
progress_format = click.option(
    "--progress-format", type=click.Choice(PROGRESS_FORMATS), default="plain", show_default=True,
    envvar="IVI_PROGRESS_FORMAT", show_envvar=True,
    help="Progress lines on stdout: 'plain' (Progress: N%, for Deadline and Nuke), 'openjd' "
         "(openjd_progress: N, for Open Job Description and Deadline Cloud) or 'both'.")

# --- both stages ----------------------------------------------------------------------------------------

preset = click.option(
    "--preset", type=click.Choice(PRESET_NAMES), default=None,
    help="What the run is for, for both stages: 'quick' (a look in minutes), 'final' (the default) or 'paper' "
         "(the reference method, hours on a GPU); each has a CPU and a GPU variant. 'preview' and 'cpu' are "
         "the earlier names of quick and final.")
seed = click.option("--seed", type=int, default=None, help="Random seed of both stages (default 0).")
dilate = click.option("--dilate", type=click.IntRange(min=0), default=None, metavar="PIXELS",
                      help="Grow the matte by this many pixels: the matte that is filled, or for `propagate` "
                           "the mattes written (default 0).")

# --- the fill (inpainting) stage ----------------------------------------------------------------------

fill = stack(
    click.option("--steps", type=click.IntRange(min=0), default=None,
                 help="The fill's training steps (default: the preset's)."),
    click.option("--budget", type=click.FloatRange(min=0), default=None, metavar="MINUTES",
                 help=f"Most minutes of the fill's training, 0 for no limit (default: the preset's, "
                      f"{_FINAL.cpu.budget:g} on a CPU for final); training ends at --steps or here, whichever "
                      f"comes first."),
    click.option("--finetune-steps", type=click.IntRange(min=0), default=None, metavar="N",
                 help="The last N of the steps fine-tune with the anti-ambiguity and stabilisation terms "
                      "(default: the preset's; 0 = reconstruction only)."),
    click.option("--encoder", default=None, metavar="random|vgg19:FILE",
                 help="Features of the anti-ambiguity term: 'random' (default, no download) or "
                      "'vgg19:FILE' with torchvision VGG19 weights."),
    click.option("--work-size", type=click.IntRange(min=16), default=None, metavar="PIXELS",
                 help="Longest side of the fill's working resolution (default: the preset's)."),
)
"""The fill's training (TrainConfig)."""

clean = click.option("--clean", metavar="PATTERN",
                     help="Clean reference frames, the first source of carried pixels: a clean pass shot without "
                          "the object, or frames painted clean, numbered as the plate frames they show, in its "
                          "format.")
carry = stack(
    click.option("--carry/--no-carry", default=None,
                 help="Known pixels first: carry into each frame's matte what other frames show, along the "
                      "background's optical flow, so the network invents only what the shot never shows "
                      "(default: on; off for --preset paper). The output's confidence.Y says which is which."),
    clean,
    click.option("--clean-frames", callback=_frames, metavar="FRAMES",
                 help="The frames of --clean to use, e.g. 1001 or 1001,1040 (default: every one on disk that "
                      "is a frame of the plate)."),
)
"""The known-pixel carry and its clean references (carry/)."""

hires = stack(
    click.option("--scales", default=None, metavar="auto|off|N|F,F,1",
                 help="Progressive high resolution: finer scales trained on patches around the matte and run "
                      "in tiles. 'auto' (default) adds them when the plate is at least 3 times the working "
                      "size; a count, or the scales as fractions of the full resolution ending with 1 (0.25,1)."),
    click.option("--patch-size", type=click.IntRange(min=0), default=None, metavar="PIXELS",
                 help="Training patch side at the finer scales (default 0: 64 on a CPU, 128 on a GPU)."),
    click.option("--scale-steps", type=click.IntRange(min=0), default=None, metavar="N",
                 help="Training steps of each finer scale (default 0: 300 or 2 minutes on a CPU, 2000 on a GPU)."),
    click.option("--tile-size", type=click.IntRange(min=0), default=None, metavar="PIXELS",
                 help="Inference tile side at the finer scales; memory grows with it, not with the plate "
                      "(default 0: 384 on a CPU, 1024 on a GPU)."),
)
"""Progressive high resolution (HiresConfig)."""

# --- the mask propagation stage (a keyframe job) ------------------------------------------------------

propagation = stack(
    click.option("--propagate-steps", type=click.IntRange(min=0), default=None, metavar="N",
                 help="Mask propagation's training steps (default: the preset's)."),
    click.option("--propagate-budget", type=click.FloatRange(min=0), default=None, metavar="MINUTES",
                 help=f"Most minutes of mask propagation's training, 0 for no limit (default: the preset's, "
                      f"{_FINAL.propagate_cpu.budget:g} on a CPU for final, spent before the fill's)."),
    click.option("--propagate-work-size", type=click.IntRange(min=16), default=None, metavar="PIXELS",
                 help="Longest side of mask propagation's working resolution (default: the preset's)."),
    click.option("--threshold", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=None,
                 help=f"Object probability above which a pixel is matte (default: the preset's, "
                      f"{_FINAL.propagate_cpu.threshold:g} for final, 0.5 for paper)."),
    click.option("--object-weight", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=None,
                 help="Weight of object pixels in the loss; above 0.5 favours covering the object (default 0.8)."),
    click.option("--track", type=click.FloatRange(0, 1, max_open=True), default=None, metavar="SHARE",
                 help="Temporal constraint: keep the parts of a frame's matte within this share of the frame of "
                      "the previous frame's matte, outward from the keys; 0 treats each frame on its own "
                      "(default 0.04)."),
    click.option("--max-speed", type=click.FloatRange(min=0), default=None, metavar="SHARE",
                 help="The object's fastest motion, as a share of the frame per frame; farther from where it was "
                      "is taught as background, and dropped from the mattes; 0 for no limit (the default). Set "
                      "it for a slow object, e.g. 0.03."),
    click.option("--rounds", type=click.IntRange(min=0), default=None,
                 help="Self-training rounds on the other frames' backgrounds, sweeping outward from the keys; "
                      "0 trains on the keys alone (the default). Best with --max-speed."),
    click.option("--flow-follow/--no-flow-follow", default=None,
                 help="Carry each frame's matte along the object's own optical flow to the next, and keep the "
                      "network's matte near it (default: off; see docs/mattes.md)."),
    click.option("--departure", type=click.FloatRange(0, 1, max_open=True), default=None, metavar="SHARE",
                 help="Away from the carried matte, keep the network's matte only where its motion departs from "
                      "the background's by this share of the frame per frame, e.g. 0.004; 0 switches the cue "
                      "off (the default)."),
    click.option("--background-match", type=click.FloatRange(0, 2, max_open=True), default=None, metavar="DIFF",
                 help="Where the network calls object but the frames near it, aligned by the background's "
                      "motion, show the same picture (a colour difference under DIFF), it is background "
                      "(default 0.1; 0 for the network alone, the paper preset's; see docs/mattes.md)."),
)
"""Mask propagation, a keyframe job's first stage (PropagateConfig); only with --key-mask."""

job = stack(inputs, out, preset, fill, carry, hires, propagation, dilate, seed, device, checkpoint_dir)
"""Every option that describes a job (a JobSpec), for inpaint, train and submit."""


def job_spec(job_file: Path | None = None, *, writes: str = "clean", offers_job: bool = True,
             **values: Any) -> JobSpec:
    """The JobSpec that the options describe: the job file's (when given), changed by the options set.

    Args:
        writes: what a job made from options alone writes (JobSpec.writes).
        offers_job: the command takes --job (the message for missing inputs says so).

    Raises:
        click.UsageError: neither a job file nor the inputs, or options that do not make a job.
    """
    changes = {key: values[key] for key in JOB_KEYS if values.get(key) is not None}
    if changes.get("checkpoint_dir") is not None:
        changes["checkpoint_dir"] = str(changes["checkpoint_dir"])
    data: dict[str, Any] = {"writes": writes}
    if job_file is not None:
        data = dataclasses.asdict(JobSpec.load(job_file))
        if "mask" in changes or "key_mask" in changes:  # the command line's matte replaces the file's
            data.update(mask=None, key_mask=None, key_frames=None, **dict.fromkeys(PROPAGATION_KEYS))
    data.update(changes)
    missing = [flag(key) for key in ("plate", "out") if not data.get(key)]
    if not data.get("mask") and not data.get("key_mask"):
        missing.insert(1, "--key-mask with --key-frames" if writes == "mattes" else
                       "--mask (or --key-mask with --key-frames)")
    elif data.get("key_mask") and not data.get("key_frames"):
        missing.insert(1, "--key-mask with --key-frames")
    if missing:
        either = "--job FILE, or " if offers_job else ""
        raise click.UsageError(f"give {either}{', '.join(missing)}")
    _check_stage_options(data)
    try:
        spec = JobSpec(**data)
        spec.hires_config()
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    return spec


def _check_stage_options(data: dict[str, Any]) -> None:
    """Name, as options, the settings of a stage that the job does not run."""
    if data.get("key_mask") is None:
        given = [flag(key) for key in PROPAGATION_KEYS if data.get(key) is not None]
        if given:
            raise click.UsageError(f"{', '.join(given)}: mask propagation's settings; give them with --key-mask "
                                   f"and --key-frames")
    if data.get("writes") == "mattes":
        given = [flag(key) for key in FILL_KEYS if data.get(key) is not None]
        if given:
            raise click.UsageError(f"{', '.join(given)}: the fill's settings, and propagate fills nothing; "
                                   f"its own are --propagate-steps, --propagate-budget and --propagate-work-size")
