"""`ivi-render`: the command group, logging, errors and exit codes.

Exit codes: 0 success; 1 an error in the input or environment (the message names the file and
the fix); 2 a usage error (click); 130 interrupted (Ctrl-C); 143 stopped by SIGTERM after a
checkpoint (run the same command again to resume).
"""
from __future__ import annotations

import logging
import sys
from typing import Any

import click

from ivi_vfx import __version__, runtime
from ivi_vfx.errors import IviError, StopRequested

from . import demo, inpaint, preview, propagate, render, run, submit, train

EXIT_ERROR, EXIT_INTERRUPTED, EXIT_TERMINATED = 1, 130, 143


class IviGroup(click.Group):
    """Turns engine errors into one line on stderr and a non-zero exit, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except StopRequested as exc:
            click.echo(f"ivi-render: {exc}", err=True)
            ctx.exit(EXIT_TERMINATED)
        except IviError as exc:
            click.echo(f"ivi-render: error: {exc}", err=True)
            ctx.exit(EXIT_ERROR)
        except KeyboardInterrupt:
            click.echo("ivi-render: interrupted", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except Exception as exc:
            if not runtime.is_out_of_memory(exc):  # training names its own sizes (DeviceMemoryError)
                raise
            click.echo(f"ivi-render: error: {runtime.out_of_memory_message(exc)}", err=True)
            ctx.exit(EXIT_ERROR)


@click.group(cls=IviGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (repeatable).")
@click.option("-q", "--quiet", count=True, help="Less log output (repeatable).")
@click.version_option(__version__, prog_name="ivi-render")
def cli(verbose: int, quiet: int) -> None:
    """IVI-VFX: remove objects from EXR plates by internal video inpainting."""
    level = min(max(logging.INFO - 10 * (verbose - quiet), logging.DEBUG), logging.CRITICAL)
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s",
                        datefmt="%H:%M:%S", force=True)


for _command in (inpaint.inpaint, train.train, render.render, run.run, submit.submit, propagate.propagate,
                 demo.demo, preview.preview):
    cli.add_command(_command)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="ivi-render")
