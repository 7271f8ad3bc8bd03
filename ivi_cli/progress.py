"""Progress for people and for farms: a bar on a terminal, progress lines otherwise.

Formats (``--progress-format``, or the IVI_PROGRESS_FORMAT environment variable):
- ``plain``: ``Progress: N%`` (Deadline's CommandLine plugin regex, our Nuke panel);
- ``openjd``: ``openjd_progress: N`` (Open Job Description's stdout protocol, Deadline Cloud),
  and ``openjd_fail: <reason>`` before a failing exit;
- ``both``: both lines.
Always integers (Deadline's stock regex ignores decimals), one line per change, flushed at once
because pipes are block-buffered.
"""
from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import TextIO

import click

from ivi_vfx.errors import IviError

from .stop import StopFlag

PROGRESS_FORMATS = ("plain", "openjd", "both")


class Progress:
    """Reports a fraction done (0..1).

    On a terminal, in the plain format, it draws a bar on stderr; elsewhere (a farm, Nuke's
    subprocess pipe) it prints the format's lines on stdout.
    """

    def __init__(self, stream: TextIO | None = None, tty: bool | None = None, fmt: str = "plain") -> None:
        if fmt not in PROGRESS_FORMATS:
            raise ValueError(f"progress format {fmt!r} is not one of {PROGRESS_FORMATS}")
        self.stream = stream or sys.stdout
        self.fmt = fmt
        self.tty = (sys.stderr.isatty() if tty is None else tty) and fmt == "plain"
        self.last = -1
        self.bar = click.progressbar(length=100, file=sys.stderr, label="ivi-render") if self.tty else None

    def __enter__(self) -> Progress:
        if self.bar is not None:
            self.bar.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.bar is not None:
            self.bar.__exit__(kind, exc, tb)
        if isinstance(exc, IviError) and self.fmt != "plain":
            # OpenJD shows this line as the task's failure reason.
            self._write(f"openjd_fail: {' '.join(str(exc).split())}")

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    def __call__(self, fraction: float) -> None:
        percent = int(100 * min(max(fraction, 0.0), 1.0))
        if percent == self.last:
            return
        if self.bar is not None:
            self.bar.update(percent - max(self.last, 0))
        else:
            if self.fmt in ("plain", "both"):
                self._write(f"Progress: {percent}%")
            if self.fmt in ("openjd", "both"):
                self._write(f"openjd_progress: {percent}")
        self.last = percent


def quality_note(fit: object) -> str:
    """', quality estimate 24.1 dB (converged)' from a FitResult, or '' when the run measured none."""
    estimate = getattr(fit, "estimate_db", None)
    if estimate is None:
        return ""
    converged = " (converged)" if getattr(fit, "converged", False) else ""
    return f", quality estimate {estimate:.1f} dB hole PSNR{converged}"


@contextmanager
def job_run(fmt: str = "plain") -> Iterator[tuple[Progress, StopFlag]]:
    """What every command that trains or renders runs inside: progress lines and the SIGTERM flag."""
    stop = StopFlag().install()
    with Progress(fmt=fmt) as progress:
        yield progress, stop
