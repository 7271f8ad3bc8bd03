"""Progress for people and for farms: a bar on a terminal, `Progress: N%` lines otherwise."""
from __future__ import annotations

import sys
from types import TracebackType
from typing import TextIO

import click


class Progress:
    """Reports a fraction done (0..1).

    On a terminal it draws a bar on stderr. Elsewhere (a farm, Nuke's subprocess pipe) it prints
    `Progress: N%` on stdout, integers only (Deadline's stock regex ignores decimals), one line
    per change, flushed at once because pipes are block-buffered.
    """

    def __init__(self, stream: TextIO | None = None, tty: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        self.tty = sys.stderr.isatty() if tty is None else tty
        self.last = -1
        self.bar = click.progressbar(length=100, file=sys.stderr, label="ivi-render") if self.tty else None

    def __enter__(self) -> Progress:
        if self.bar is not None:
            self.bar.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.bar is not None:
            self.bar.__exit__(kind, exc, tb)

    def __call__(self, fraction: float) -> None:
        percent = int(100 * min(max(fraction, 0.0), 1.0))
        if percent == self.last:
            return
        if self.bar is not None:
            self.bar.update(percent - max(self.last, 0))
        else:
            self.stream.write(f"Progress: {percent}%\n")
            self.stream.flush()
        self.last = percent
