"""Folder names that a command line must carry as text: what artists and shot names bring to a farm.

Each would run a command if a shell read it unquoted or inside double quotes: `$( )`, backticks and
`;` run `touch CANARY...` in the task's working folder; `%PATH%` and `%TEMP%` would expand in cmd.exe;
quotes, spaces, `#`, `%`, a backslash before a quote and letters beyond ASCII must arrive as they are.
A frame pattern's own folder holds no `#` or `@` (ivi-render's patterns read those as frame tokens),
so `#` goes into the bundle and job folders.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

SHOT = "it's \"q\" $(touch CANARY) `touch CANARY2` a;touch CANARY3;b 100% %PATH% é漢"
"""The shot's folder: plate, mattes and output (no '#': a pattern's folder)."""
BUNDLE = "farm #1 it's $(touch CANARY4) `touch CANARY5`; %TEMP% ü"
"""The bundle folder (job.json, the farm's files)."""
JOB_FOLDER = "job #2 a\\\"b $(touch CANARY6) 漢\\"
"""The job folder (--checkpoint-dir): a backslash before a quote, and one at the end."""
CANARIES = ("CANARY", "CANARY2", "CANARY3", "CANARY4", "CANARY5", "CANARY6")
SETTINGS = ["--preset", "quick", "--steps", "2", "--work-size", "32", "--device", "cpu"]
"""Tiny training: the tests prove the commands run, not the fill."""


def canaries(*folders: Path) -> list[Path]:
    """Every canary file under the folders (and in the current folder): none, if nothing ran."""
    found = [p for folder in folders for p in folder.rglob("CANARY*") if p.name in CANARIES]
    return found + [Path(name) for name in CANARIES if Path(name).exists()]


def farm_env(**extra: str) -> dict[str, str]:
    """A farm node's environment: ivi-render on PATH, one torch thread, unbuffered output."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return {**os.environ, "PATH": path, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", **extra}
