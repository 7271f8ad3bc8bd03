"""Deadline 10 job files for a JobSpec: two jobs for the stock CommandLine plugin.

Writes `train.job` + `train_plugin.job` (one task) and `render.job` + `render_plugin.job` (the
frames in chunks of ChunkSize; `<STARTFRAME>-<ENDFRAME>` is each task's range), and `submit.sh`,
which submits the train job with `deadlinecommand`, reads the `JobID=` line it prints, and submits
the render job with `JobDependencies=` that id. The plugin fails a task on a non-zero exit and
reads progress from `Progress: N%` lines (integers), which ivi-render prints in its plain format;
ShellExecute is on because the plugin captures stdout reliably only through the shell.
These are plain key=value files: no Deadline library is needed to write them. Not tried against a
real Deadline repository here (none can be installed); the keys follow Thinkbox's "Manual Job
Submission" documentation.
"""
from __future__ import annotations

import shlex
from pathlib import Path

from ivi_vfx.jobs import JOB_FILE, JobSpec

from . import job_frames
from .commands import describe, first_frame, render_args, train_args

SUBMIT_SCRIPT = "submit.sh"


def _info(values: dict[str, object]) -> str:
    return "".join(f"{key}={value}\n" for key, value in values.items())


def _arguments(args: list[str]) -> str:
    # ShellExecute passes the line to a shell: quote what has spaces with the plugin's <QUOTE> token.
    return " ".join(f"<QUOTE>{a}<QUOTE>" if any(c.isspace() for c in a) else a for a in args)


def job_files(spec: JobSpec, job_file: Path, *, chunk_size: int = 10, device: str = "auto",
              executable: str = "ivi-render") -> dict[str, str]:
    """File name -> contents of the four job and plugin info files."""
    frames = job_frames(spec)
    out = Path(spec.out)
    common = {"Plugin": "CommandLine", "Comment": describe(spec), "BatchName": f"ivi {spec.job_name}"}
    return {
        "train.job": _info({**common, "Name": f"ivi {spec.job_name} train", "Frames": first_frame(frames),
                            "ChunkSize": 1}),
        "train_plugin.job": _info({"Executable": executable, "ShellExecute": "True",
                                   "Arguments": _arguments(train_args(str(job_file), device))}),
        "render.job": _info({**common, "Name": f"ivi {spec.job_name} render", "Frames": frames,
                             "ChunkSize": chunk_size, "OutputDirectory0": str(out.parent),
                             "OutputFilename0": out.name}),
        "render_plugin.job": _info({"Executable": executable, "ShellExecute": "True",
                                    "Arguments": _arguments(render_args(str(job_file), "<STARTFRAME>-<ENDFRAME>",
                                                                        device))}),
    }


def submit_script(folder: Path) -> str:
    """A shell script that submits the train job, then the render job depending on it."""
    q = {name: shlex.quote(str(folder / name)) for name in ("train.job", "train_plugin.job", "render.job",
                                                             "render_plugin.job")}
    return f"""#!/bin/sh
# Submit the IVI-VFX train job, then the render job that waits for it (deadlinecommand on PATH).
set -e
train_id=$(deadlinecommand {q['train.job']} {q['train_plugin.job']} | sed -n 's/^JobID=//p')
[ -n "$train_id" ] || {{ echo "submit.sh: the train job was not accepted" >&2; exit 1; }}
render_info=$(mktemp)
cat {q['render.job']} > "$render_info"
echo "JobDependencies=$train_id" >> "$render_info"
deadlinecommand "$render_info" {q['render_plugin.job']}
rm -f "$render_info"
"""


def write_job(spec: JobSpec, folder: Path, *, chunk_size: int = 10, device: str = "auto") -> Path:
    """Write job.json, the info files and submit.sh into `folder`; returns the script's path."""
    folder = Path(folder).absolute()
    files = job_files(spec, folder / JOB_FILE, chunk_size=chunk_size, device=device)
    folder.mkdir(parents=True, exist_ok=True)
    spec.save(folder / JOB_FILE)
    for name, text in files.items():
        (folder / name).write_text(text)
    script = folder / SUBMIT_SCRIPT
    script.write_text(submit_script(folder))
    script.chmod(0o755)
    return script
