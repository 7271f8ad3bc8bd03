"""Options shared by the subcommands, so every subcommand spells them the same way."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from ivi_vfx.config import PRESETS
from ivi_vfx.errors import ConfigError
from ivi_vfx.io.sequence import parse_frames

F = Callable[..., Any]


def _frames(ctx: click.Context, param: click.Parameter, value: str | None) -> list[int] | None:
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


inputs = _stack(
    click.option("--plate", required=True, metavar="PATTERN",
                 help="Plate sequence, e.g. plate.####.exr or plate.%04d.exr."),
    click.option("--mask", required=True, metavar="PATTERN",
                 help="Matte sequence (1 = fill), same frames and format as the plate."),
    click.option("--frames", callback=_frames, metavar="RANGE",
                 help="Frames to process, e.g. 1001-1100 or 1001-1050,1060 (default: every plate frame on disk)."),
    click.option("--mask-channel", metavar="NAME",
                 help="Channel of the matte (default: A, or the file's only channel)."),
)

training = _stack(
    click.option("--preset", type=click.Choice(sorted(PRESETS)), default=None,
                 help="Named configuration (default: 'paper' on a GPU, 'cpu' otherwise)."),
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

output = _stack(
    click.option("--out", required=True, metavar="PATTERN", help="Output sequence, e.g. clean.####.exr."),
    click.option("--overwrite", is_flag=True, help="Replace output frames that already exist."),
)
