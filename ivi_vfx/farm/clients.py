"""Submitting written farm files with the farm's own client, where it is installed.

- openjd: `deadline bundle submit --yes [--priority N] DIR` (Deadline Cloud's CLI);
- deadline: `deadlinecommand train.job train_plugin.job`, then, with the `JobID=` it prints,
  `deadlinecommand render_submit.job render_plugin.job` (render.job plus JobDependencies);
- opencue: pycue's `opencue.api.launchSpec(xml)`, where CUEBOT_HOSTS or OPENCUE_CONFIG_FILE says
  where Cuebot is (OpenCue has no command that launches a job spec file).

Each client runs as an argument list, never through a shell. `submit` returns what it ran and what
the client answered, or None where the client is not there; `manual_command` is the command line to
run instead, quoted for this machine's shell.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ivi_vfx.errors import IviError

from . import FarmOptions
from .deadline import RENDER_SUBMIT, SUBMIT_BATCH, SUBMIT_SCRIPT
from .quoting import posix, windows

CLIENT_TIMEOUT_S = 600
"""Longest a client may take (a bundle's job attachments upload before it returns)."""


class SubmitError(IviError):
    """The farm's client refused the job, or could not be run."""


@dataclass
class Submitted:
    """What was submitted: the commands run (argument lists), the client's output, the farm's job ids."""

    commands: list[list[str]] = field(default_factory=list)
    output: str = ""
    job_ids: list[str] = field(default_factory=list)


Run = Callable[[list[str]], subprocess.CompletedProcess]


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SubmitError(f"{argv[0]} could not be run: {exc}") from exc


def _checked(argv: list[str], done: Submitted, run: Run) -> str:
    result = run(argv)
    done.commands.append(argv)
    done.output += result.stdout + result.stderr
    if result.returncode != 0:
        raise SubmitError(f"{shell_line(argv)} failed (exit {result.returncode}): "
                          f"{(result.stderr or result.stdout).strip()[-2000:]}")
    return str(result.stdout)


def shell_line(argv: list[str]) -> str:
    """The argument list as this machine's shell reads it (to show, or to paste)."""
    return windows(argv) if os.name == "nt" else posix(argv)


def deadlinecommand() -> str | None:
    """deadlinecommand on PATH, else in $DEADLINE_PATH (where Deadline's client installer points)."""
    found = shutil.which("deadlinecommand")
    if found is None and os.environ.get("DEADLINE_PATH"):
        found = shutil.which("deadlinecommand", path=os.environ["DEADLINE_PATH"])
    return found


def _job_id(output: str, argv: list[str]) -> str:
    found = re.search(r"^JobID=(\S+)", output, flags=re.MULTILINE)
    if found is None:
        raise SubmitError(f"{shell_line(argv)} printed no JobID=: {output.strip()[-2000:]}")
    return found.group(1)


def submit_deadline(folder: Path, run: Run = _run) -> Submitted | None:
    """Submit the Deadline 10 train job, then the render job depending on it; None without deadlinecommand."""
    exe = deadlinecommand()
    if exe is None:
        return None
    done = Submitted()
    argv = [exe, str(folder / "train.job"), str(folder / "train_plugin.job")]
    train_id = _job_id(_checked(argv, done, run), argv)
    info = (folder / "render.job").read_text(encoding="utf-8")
    (folder / RENDER_SUBMIT).write_text(f"{info}JobDependencies={train_id}\n", encoding="utf-8")
    argv = [exe, str(folder / RENDER_SUBMIT), str(folder / "render_plugin.job")]
    done.job_ids = [train_id, _job_id(_checked(argv, done, run), argv)]
    return done


def openjd_command(folder: Path, options: FarmOptions, exe: str = "deadline") -> list[str]:
    """`deadline bundle submit` of the bundle, with the job's priority."""
    priority = [] if options.priority is None else ["--priority", str(options.priority)]
    return [exe, "bundle", "submit", "--yes", *priority, str(folder)]


def submit_openjd(folder: Path, options: FarmOptions, run: Run = _run) -> Submitted | None:
    """Submit the bundle to Deadline Cloud; None without the `deadline` command."""
    exe = shutil.which("deadline")
    if exe is None:
        return None
    done = Submitted()
    output = _checked(openjd_command(folder, options, exe), done, run)
    done.job_ids = re.findall(r"\bjob-[0-9a-f]{32}\b", output)[-1:]
    return done


def submit_opencue(xml: Path) -> Submitted | None:
    """Launch the job spec with pycue; None without pycue, or without a Cuebot to send it to."""
    if not (os.environ.get("CUEBOT_HOSTS") or os.environ.get("OPENCUE_CONFIG_FILE")):
        return None
    try:
        import opencue  # noqa: PLC0415  (pycue, optional)
    except ImportError:
        return None
    try:
        jobs = opencue.api.launchSpec(xml.read_text(encoding="utf-8"))
    except Exception as exc:  # pycue raises its own exception types and grpc's
        raise SubmitError(f"opencue.api.launchSpec({xml}) failed: {exc}") from exc
    return Submitted(commands=[["opencue.api.launchSpec", str(xml)]], job_ids=[str(job) for job in jobs or []])


def submit(farm: str, written: Path, options: FarmOptions = FarmOptions()) -> Submitted | None:
    """Submit the files `write_job` wrote (`written` is the path it returned); None without the client."""
    folder = written.parent
    if farm == "deadline":
        return submit_deadline(folder)
    if farm == "openjd":
        return submit_openjd(folder, options)
    if farm == "opencue":
        return submit_opencue(written)
    raise ValueError(f"unknown farm {farm!r}")


def manual_command(farm: str, written: Path, options: FarmOptions = FarmOptions()) -> str:
    """What to run to submit the files by hand, on this machine."""
    folder = written.parent
    if farm == "deadline":
        return shell_line([str(folder / (SUBMIT_BATCH if os.name == "nt" else SUBMIT_SCRIPT))])
    if farm == "openjd":
        return shell_line(openjd_command(folder, options))
    if farm == "opencue":
        launch = "import opencue, sys; opencue.api.launchSpec(open(sys.argv[1], encoding='utf-8').read())"
        return f"{shell_line(['python', '-c', launch, str(written)])}   (pycue installed, CUEBOT_HOSTS set)"
    raise ValueError(f"unknown farm {farm!r}")
