"""Reading `ivi-render`'s output: progress lines and the status line a compositor sees.

`ivi-render` prints ``Progress: N%`` (integers, flushed) on stdout when it is not on a terminal;
``openjd_progress: N`` too under ``--progress-format openjd|both``; log lines on stderr.
"""
from __future__ import annotations

import re

PROGRESS = re.compile(r"^\s*(?:Progress:\s*(\d+(?:\.\d+)?)\s*%|openjd_progress:\s*(\d+(?:\.\d+)?))\s*$")

EXIT_MEANING = {1: "bad input", 2: "usage error", 130: "interrupted", 143: "stopped (checkpoint kept)",
                -15: "stopped", -9: "killed"}
"""ivi-render's exit codes (README), and the negative codes Popen reports for a signal."""


def parse_progress(line: str) -> int | None:
    """The percentage of a progress line (0..100), or None for any other line."""
    match = PROGRESS.match(line)
    if match is None:
        return None
    value = float(match.group(1) or match.group(2))
    return int(min(max(value, 0.0), 100.0))


def error_line(log: list[str]) -> str:
    """The line that explains a failure: ivi-render's ``ivi-render: error: ...``, else the last line."""
    for line in reversed(log):
        if line.startswith("ivi-render:"):
            return line.strip()
    return log[-1].strip() if log else ""


def status_text(state: str, progress: int = 0, returncode: int | None = None, log: list[str] | None = None,
                where: str = "this machine") -> str:
    """The gizmo's status line and the panel's state column for a job."""
    if state == "queued":
        return "queued: starts when the job before it ends well"
    if state == "baking":
        return f"baking inputs to EXR: {progress}%" if progress else "baking inputs to EXR..."
    if state == "running":
        return f"running on {where}: {progress}%"
    if state == "done":
        return "done: clean plate written"
    if state == "submitted":
        return f"farm files written ({where}); submit them with your farm's tool"
    if state == "cancelled":
        return "cancelled; Render again resumes from the checkpoint"
    if state == "failed":
        meaning = EXIT_MEANING.get(returncode or 0, "failed")
        detail = error_line(log or [])
        return f"failed (exit {returncode}: {meaning}){': ' + detail if detail else ''}"
    return state
