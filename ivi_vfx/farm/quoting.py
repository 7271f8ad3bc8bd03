"""Command lines for the program that will read them: POSIX shells, Windows CreateProcess, cmd batch files.

Every farm command starts as an argument list and becomes a string only here, quoted for what parses
it on the farm node, so that a path an artist or a shot name chose (spaces, quotes, ``$( )``,
backticks, ``;``, ``#``, ``%``, letters beyond ASCII) reaches ivi-render as one argument and never
runs as a command:

- `posix`: for ``sh -c`` (Deadline's CommandLine plugin with ShellExecute, OpenCue's RQD, submit.sh):
  every argument through `shlex.quote`, which single-quotes anything but plain words.
- `windows`: for CreateProcess, whose child (the C runtime, Python's own) splits the line by the
  Microsoft C rules; `subprocess.list2cmdline` is their inverse. No cmd.exe reads it, so ``%`` and
  ``^`` stay literal.

`check_path` refuses what no quoting carries: control characters (a newline ends a key=value line
of a Deadline info file; XML and job files normalise carriage returns).
"""
from __future__ import annotations

import re
import shlex
import subprocess
from collections.abc import Iterable, Sequence

from ivi_vfx.errors import ConfigError

SHELLS = ("posix", "windows")
"""How a farm node reads a command line: a POSIX shell, or Windows CreateProcess (no cmd.exe)."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def posix(argv: Sequence[str]) -> str:
    """The argument list as one line for a POSIX shell (sh, bash, dash, zsh, ksh): `shlex.quote` each."""
    return " ".join(shlex.quote(a) for a in argv)


def windows(argv: Sequence[str]) -> str:
    """The argument list as one CreateProcess command line (the Microsoft C runtime's rules)."""
    return subprocess.list2cmdline(list(argv))


def line(argv: Sequence[str], shell: str) -> str:
    """The argument list quoted for `shell` (one of SHELLS)."""
    if shell not in SHELLS:
        raise ValueError(f"unknown shell {shell!r}; the shells are: {', '.join(SHELLS)}")
    return posix(argv) if shell == "posix" else windows(argv)


def check_path(what: str, value: str, also: Iterable[tuple[str, str]] = ()) -> str:
    """`value` (a path of the job), or ConfigError naming `what` and the character no farm file can carry.

    Args:
        also: (regular expression, why) pairs that a farm adds: text that its own tool would rewrite
            inside any argument (Deadline's ``<QUOTE>`` tokens, OpenCue's ``#FRAME#``).
    """
    if _CONTROL.search(value):
        raise ConfigError(f"{what} {value!r} holds a control character (a newline, a tab...), which a farm's job "
                          f"files cannot carry; rename it")
    for pattern, why in also:
        found = re.search(pattern, value, flags=re.IGNORECASE)
        if found:
            raise ConfigError(f"{what} {value!r} holds {found.group(0)!r}, which {why}; rename it")
    return value
