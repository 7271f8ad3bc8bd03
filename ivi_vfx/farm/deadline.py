"""Deadline 10 job files for a JobSpec: two jobs for the stock CommandLine plugin.

Writes `train.job` + `train_plugin.job` (one task) and `render.job` + `render_plugin.job` (the
frames in chunks of ChunkSize; `<STARTFRAME>-<ENDFRAME>` is each task's range), `submit.sh` and
`submit.bat`, which submit the train job with `deadlinecommand`, read the `JobID=` line it prints,
and submit the render job with `JobDependencies=` that id (`render_submit.job`, written beside
them). The scripts name the files beside themselves, so no path is written into a script; `ivi-render
submit` does the same from Python where deadlinecommand is installed.

What the stock plugin does with these keys (Thinkbox's CommandLine.py, RenderTasks and
ShellManagedProcess): it applies the repository's path mapping to Executable and Arguments,
replaces `<STARTFRAME>`, `<ENDFRAME>`, `<STARTFRAME%N>`, `<QUOTE>` (a double quote) and `<AUXFILEn>`
anywhere in Arguments, and turns the curly quotes U+201C and U+201D into straight ones; then

- with ShellExecute=True it ignores Executable and runs the shell named by `Shell` (`sh`: the
  plugin's ShellExecutable_sh, /bin/sh by default; `default` would be the worker's $SHELL, which may
  be csh) as `sh -c '<Arguments>'`, and reads `Progress: N%` from its stdout;
- with ShellExecute=False it runs Executable with Arguments as the command line (RunProcess) and,
  as its own comment says, does not capture stdout: no progress.

So for POSIX workers (`workers='posix'`, the default) Arguments is the whole command, the
executable first, every argument `shlex.quote`d, with ShellExecute=True and Shell=sh; for Windows
workers (`'windows'`) it is the arguments alone by the CreateProcess rules (subprocess.list2cmdline),
with ShellExecute=False: no cmd.exe ever reads it, so `%` and `^` are safe, and the task's progress
is not reported (its success or failure is, by exit code). Paths holding a plugin token or a curly
quote are refused, since the plugin would rewrite them. Either way every task names the job's paths
on its command line, where Deadline's path mapping sees them.

Job info keys (Plugin, Name, BatchName, Comment, Frames, ChunkSize, Pool, Group, Priority,
JobDependencies, OutputDirectory0, OutputFilename0) and plugin info keys (Executable, Arguments,
ShellExecute, Shell) follow Thinkbox's "Manual Job Submission" documentation and the plugin's source.
The files are UTF-8. Not tried against a real Deadline repository here (none can be installed).
"""
from __future__ import annotations

from pathlib import Path

from ivi_vfx.errors import ConfigError
from ivi_vfx.jobs import JOB_FILE, JobSpec

from . import FarmOptions, job_frames
from .commands import check_device, describe, first_frame, job_paths, render_args, train_args
from .quoting import check_path, posix, windows

SUBMIT_SCRIPT = "submit.sh"
SUBMIT_BATCH = "submit.bat"
INFO_FILES = ("train.job", "train_plugin.job", "render.job", "render_plugin.job")
RENDER_SUBMIT = "render_submit.job"
"""render.job with the train job's id as JobDependencies, written when the jobs are submitted."""
JOB_INFO_KEYS = frozenset({"Plugin", "Name", "BatchName", "Comment", "Frames", "ChunkSize", "Pool", "Group",
                           "Priority", "JobDependencies", "OutputDirectory0", "OutputFilename0"})
"""The job info keys written (Thinkbox, Manual Job Submission: Job Info File)."""
PLUGIN_INFO_KEYS = frozenset({"Executable", "Arguments", "ShellExecute", "Shell"})
"""The CommandLine plugin info keys written (its CommandLine.py reads each)."""
REWRITTEN = (
    (r"<(?:STARTFRAME|ENDFRAME)(?:%\d+)?>|<QUOTE>|<AUXFILE\d+>",
     "Deadline's CommandLine plugin replaces in Arguments"),
    ("[\u201c\u201d]", "Deadline's CommandLine plugin turns into a straight double quote"),
)
"""Text the stock CommandLine plugin rewrites anywhere in Arguments, so no path may hold it."""
WORKERS = ("posix", "windows")


def _info(values: dict[str, object]) -> str:
    return "".join(f"{key}={value}\n" for key, value in values.items() if value is not None)


def plugin_info(argv: list[str], workers: str) -> dict[str, object]:
    """The CommandLine plugin info for one task's command (`argv`, the executable first)."""
    if workers == "posix":
        return {"Executable": argv[0], "Arguments": posix(argv), "ShellExecute": "True", "Shell": "sh"}
    if workers == "windows":
        return {"Executable": argv[0], "Arguments": windows(argv[1:]), "ShellExecute": "False"}
    raise ConfigError(f"--workers {workers!r}: Deadline workers are {' or '.join(WORKERS)}")


def job_files(spec: JobSpec, job_file: Path, options: FarmOptions = FarmOptions()) -> dict[str, str]:
    """File name -> contents of the four job and plugin info files."""
    check_device(options.device)
    for key, value in {**job_paths(spec), "job file": str(job_file), "ivi-render": options.ivi_render}.items():
        check_path(key, value, REWRITTEN)
    named: tuple[tuple[str, str | None], ...] = (("name", spec.job_name), ("pool", options.pool),
                                                ("group", options.group), ("gpu group", options.gpu_group))
    for label, text in named:
        if text is not None:
            check_path(label, text)
    frames = job_frames(spec)
    out = Path(spec.out)
    paths, job = job_paths(spec), str(job_file)
    common = {"Plugin": "CommandLine", "BatchName": f"ivi {spec.job_name}", "Comment": describe(spec),
              "Pool": options.pool, "Priority": options.priority}
    train = [options.ivi_render, *train_args(spec, job, paths, options.device)]
    render = [options.ivi_render, *render_args(spec, job, paths, "<STARTFRAME>-<ENDFRAME>", options.device)]
    return {
        "train.job": _info({**common, "Name": f"ivi {spec.job_name} train", "Group": options.gpu_group or options.group,
                            "Frames": first_frame(frames), "ChunkSize": 1}),
        "train_plugin.job": _info(plugin_info(train, options.workers)),
        "render.job": _info({**common, "Name": f"ivi {spec.job_name} render", "Group": options.group,
                             "Frames": frames, "ChunkSize": options.chunk_size, "OutputDirectory0": str(out.parent),
                             "OutputFilename0": out.name}),
        "render_plugin.job": _info(plugin_info(render, options.workers)),
    }


SUBMIT_SH = """#!/bin/sh
# Submit the IVI-VFX train job, then the render job that waits for it (deadlinecommand on PATH).
# The job files are the ones beside this script; no path is written into it.
set -e
here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
out=$(deadlinecommand "$here/train.job" "$here/train_plugin.job")
printf '%s\\n' "$out"
train_id=$(printf '%s\\n' "$out" | sed -n 's/^JobID=//p' | tr -d '\\r')
[ -n "$train_id" ] || { echo "submit.sh: the train job was not accepted" >&2; exit 1; }
{ cat "$here/render.job"; echo "JobDependencies=$train_id"; } > "$here/render_submit.job"
deadlinecommand "$here/render_submit.job" "$here/render_plugin.job"
"""
"""submit.sh: POSIX sh; every path is "$here/<name>", quoted, from the script's own location."""

SUBMIT_BAT = "\r\n".join([
    "@echo off",
    "rem Submit the IVI-VFX train job, then the render job that waits for it (deadlinecommand on PATH).",
    "rem The job files are the ones beside this script; no path is written into it. The commands run",
    "rem in the script's folder (pushd), so cmd never re-reads the folder's name: a percent sign or an",
    "rem ampersand in it stays a character.",
    "setlocal DisableDelayedExpansion",
    'pushd "%~dp0" || exit /b 1',
    'set "train_id="',
    "for /f \"tokens=1,* delims==\" %%a in ('deadlinecommand train.job train_plugin.job') do "
    'if "%%a"=="JobID" set "train_id=%%b"',
    "if not defined train_id (",
    "  echo submit.bat: the train job was not accepted 1>&2",
    "  popd",
    "  exit /b 1",
    ")",
    "echo JobID=%train_id%",
    "copy /y render.job render_submit.job >nul",
    ">>render_submit.job echo JobDependencies=%train_id%",
    "deadlinecommand render_submit.job render_plugin.job",
    'set "rc=%errorlevel%"',
    "popd",
    "exit /b %rc%",
    "",
])
"""submit.bat: the same for a Windows desk, CRLF lines; it names no path but its own folder."""


def write_job(spec: JobSpec, folder: Path, options: FarmOptions = FarmOptions()) -> Path:
    """Write job.json, the info files, submit.sh and submit.bat into `folder`; returns submit.sh's path."""
    folder = Path(folder).absolute()
    check_path("bundle folder", str(folder), REWRITTEN)
    files = job_files(spec, folder / JOB_FILE, options)
    folder.mkdir(parents=True, exist_ok=True)
    spec.save(folder / JOB_FILE)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    (folder / SUBMIT_BATCH).write_bytes(SUBMIT_BAT.encode("ascii"))
    script = folder / SUBMIT_SCRIPT
    script.write_bytes(SUBMIT_SH.encode("ascii"))  # LF lines, also when written on Windows
    script.chmod(0o755)
    return script
