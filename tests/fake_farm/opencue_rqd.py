"""A replay of how OpenCue runs a layer's command: Cuebot's token substitution, then RQD's command file.

Cuebot replaces `#FRAME_START#`, `#FRAME_END#`, `#IFRAME#`, `#ZFRAME#` (the frame, 4-padded),
`#FRAME_CHUNK#`, `#LAYER#`, `#JOB#` and `#FRAME#` in the layer's `cmd` when it dispatches a frame;
RQD (rqd/rqcore.py, _createCommandFile) writes the command into a temporary file on Linux and runs
that file through the user's shell, which reads it as a POSIX shell script (`sh FILE` here).
"""
from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path


def dispatch(cmd: str, *, start: int, end: int, chunk: int, layer: str, job: str) -> str:
    """The command as Cuebot hands it to RQD for the frames start..end."""
    for token, value in (("#FRAME_START#", str(start)), ("#FRAME_END#", str(end)), ("#IFRAME#", str(start)),
                         ("#ZFRAME#", f"{start:04d}"), ("#FRAME_CHUNK#", str(chunk)), ("#LAYER#", layer),
                         ("#JOB#", job), ("#FRAME#", f"{start:04d}-{layer}")):
        cmd = cmd.replace(token, value)
    return cmd


def run_frame(cmd: str, *, env: dict[str, str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    """RQD on Linux: the command into a file, the file run by a POSIX shell."""
    with tempfile.NamedTemporaryFile("w", prefix="rqd-cmd-", delete=False, encoding="utf-8", dir=cwd) as f:
        f.write(cmd)
    try:
        return subprocess.run(["/bin/sh", f.name], capture_output=True, text=True, env=env, cwd=cwd,
                              timeout=timeout)
    finally:
        Path(f.name).unlink()
