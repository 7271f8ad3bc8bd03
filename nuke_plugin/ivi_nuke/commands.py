"""The `ivi-render` command lines of a request, as argument lists (never a shell string), and their environment.

Argument lists go straight to `subprocess.Popen`, so paths with spaces, quotes or `$` reach
ivi-render exactly as typed.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

from .paths import JobPaths
from .request import InpaintRequest

NUKE_PYTHON_VARS = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONNOUSERSITE")
"""Nuke sets these for its own Python; ivi-render runs in its own environment and must not see them."""


class CommandError(RuntimeError):
    """ivi-render cannot be found or run; the message says how to point the gizmo at it."""


def find_ivi_render(knob_value: str = "", environ: Mapping[str, str] | None = None,
                    which: Callable[[str], str | None] = shutil.which) -> str:
    """The ivi-render to run: the gizmo's `executable` knob, else $IVI_RENDER, else ivi-render on PATH."""
    environ = os.environ if environ is None else environ
    for source, value in (("the executable knob", knob_value), ("$IVI_RENDER", environ.get("IVI_RENDER", ""))):
        if value:
            if not Path(value).is_file():
                raise CommandError(f"{value}: no such file ({source}); give the full path of ivi-render, "
                                   f"e.g. /opt/ivi-vfx/.venv/bin/ivi-render")
            return value
    found = which("ivi-render")
    if found is None:
        raise CommandError("ivi-render is not on Nuke's PATH; set the gizmo's executable knob or the IVI_RENDER "
                           "environment variable to its full path (e.g. /opt/ivi-vfx/.venv/bin/ivi-render)")
    return found


def subprocess_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Nuke's environment without its Python variables, with unbuffered plain progress lines."""
    env = {k: v for k, v in (os.environ if environ is None else environ).items() if k not in NUKE_PYTHON_VARS}
    env["IVI_PROGRESS_FORMAT"] = "plain"  # `Progress: N%`, which progress.parse_progress reads
    env["PYTHONUNBUFFERED"] = "1"  # log lines arrive as they are written, not when a pipe buffer fills
    return env


def local_command(exe: str, request: InpaintRequest, paths: JobPaths) -> list[str]:
    """Train and render the JobSpec on this machine (`ivi-render run job.json`).

    --overwrite only with the overwrite knob (paths.plan_output chose an output with no finished result
    otherwise: frames a stopped run wrote are kept and the rest rendered); --no-resume when the resume knob
    is off (the inputs changed since the last training).
    """
    tail = ["--device", "auto", "--progress-format", "plain"]
    if request.overwrite:
        tail.append("--overwrite")
    if not request.resume:
        tail.append("--no-resume")
    return [exe, "run", str(paths.job_file), *tail]


def predict_command(exe: str, request: InpaintRequest, paths: JobPaths) -> list[str]:
    """Predict mattes on this machine (`ivi-render run predict.json`): the job folder's own mattes are
    written again each time (--overwrite); the propagation resumes from propagate.ckpt unless resume is off."""
    tail = ["--device", "auto", "--progress-format", "plain", "--overwrite"]
    if not request.resume:
        tail.append("--no-resume")
    return [exe, "run", str(paths.predict_file), *tail]


def submit_command(exe: str, request: InpaintRequest, paths: JobPaths) -> list[str]:
    """Write the farm's job files for the JobSpec (`ivi-render submit`); nothing is sent to a scheduler."""
    if request.farm is None:
        raise ValueError("submit_command needs a request that runs on a farm")
    return [exe, "submit", "--farm", request.farm, "--bundle", str(paths.bundle), "--job", str(paths.job_file)]
