"""A replay of Deadline 10's stock CommandLine plugin: what a worker runs for one task of our job files.

Follows Thinkbox's plugins/CommandLine/CommandLine.py line by line (a copy is in the public
applemin/Deadline_Development repository) and its CommandLine.param:

- GetRenderExecutable / GetRenderArguments: the plugin info's Executable and Arguments, stripped,
  through the repository's path mapping (RepositoryUtils.CheckPathMapping: here a list of
  (from, to) prefixes, replaced wherever they occur); then in Arguments `<STARTFRAME>`,
  `<ENDFRAME>`, `<QUOTE>` (case-insensitive), `<STARTFRAME%N>` / `<ENDFRAME%N>` (zero-padded),
  `<AUXFILEn>`, and the curly quotes U+201C / U+201D become straight double quotes.
- RenderTasks: with ShellExecute=False, RunProcess(Executable, Arguments): the program's command line
  is Arguments, which a Windows program splits by the Microsoft C runtime's rules (`crt_split`);
  with ShellExecute=True, a ShellManagedProcess that ignores Executable: the shell is `Shell`
  (`default`: $SHELL, else /bin/sh; a name: the first existing path of ShellExecutable_<name>) and
  its argument string is `/c "<Arguments>"` for cmd, else `-c '<Arguments>'` with every `'` written
  `'\\''`. That string becomes the shell's argv as a POSIX shell would split it (Mono's
  g_shell_parse_argv; shlex.split here).
- The stdout handler `.*Progress: (\\d+)%.*` sets the task's progress; a non-zero exit fails the task.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

SHELL_EXECUTABLES = {
    "bash": "/bin/bash;C:\\cygwin\\bin\\bash.exe", "csh": "/bin/csh;C:\\cygwin\\bin\\csh.exe",
    "ksh": "/bin/ksh;C:\\cygwin\\bin\\ksh.exe", "sh": "/bin/sh;C:\\cygwin\\bin\\sh.exe",
    "tcsh": "/bin/tcsh;C:\\cygwin\\bin\\tcsh.exe", "zsh": "/bin/zsh;C:\\cygwin\\bin\\zsh.exe",
    "cmd": "C:\\Windows\\System32\\cmd.exe",
}
"""CommandLine.param's ShellExecutable_<name> defaults."""
PROGRESS = re.compile(r".*Progress: (\d+)%.*")


def read_info(path: Path) -> dict[str, str]:
    """A job or plugin info file: key=value lines (the first '=' splits)."""
    return dict(line.split("=", 1) for line in path.read_text(encoding="utf-8").splitlines() if line)


def check_path_mapping(text: str, mapping: Sequence[tuple[str, str]]) -> str:
    for old, new in mapping:
        text = text.replace(old, new)
    return text


def render_executable(info: dict[str, str], mapping: Sequence[tuple[str, str]] = ()) -> str:
    return check_path_mapping(info.get("Executable", "").strip(), mapping)


def render_arguments(info: dict[str, str], start: int, end: int, aux_files: Sequence[str] = (),
                     jobs_data_dir: str = "", mapping: Sequence[tuple[str, str]] = ()) -> str:
    arguments = check_path_mapping(info.get("Arguments", "").strip(), mapping)
    arguments = re.sub(r"<STARTFRAME>", str(start), arguments, flags=re.IGNORECASE)
    arguments = re.sub(r"<ENDFRAME>", str(end), arguments, flags=re.IGNORECASE)
    arguments = re.sub(r"<QUOTE>", '"', arguments, flags=re.IGNORECASE)
    for name, frame in (("STARTFRAME", start), ("ENDFRAME", end)):
        while found := re.search(rf"<{name}%([0-9]+)>", arguments, flags=re.IGNORECASE):
            size = int(found.group(1))
            arguments = arguments.replace(found.group(0), str(frame).zfill(size) if size > 0 else str(frame))
    for count, filename in enumerate(aux_files):
        local = os.path.join(jobs_data_dir, filename).replace("\\", "/")
        arguments = re.sub(rf"<AUXFILE{count}>", local.replace("\\", "\\\\"), arguments, flags=re.IGNORECASE)
    return arguments.replace("\u201c", '"').replace("\u201d", '"')


def shell_executable(info: dict[str, str], env: dict[str, str]) -> str:
    shell = info.get("Shell", "default")
    if shell == "default":
        return env.get("SHELL", "/bin/sh")
    return next((p for p in SHELL_EXECUTABLES[shell].split(";") if os.path.isfile(p)), "")


def shell_argument(info: dict[str, str], arguments: str) -> str:
    if info.get("Shell", "default") == "cmd":
        return f'/c "{arguments}"'
    return "-c '{}'".format(arguments.replace("'", "'\\''"))


def crt_split(line: str) -> list[str]:
    """A command line's arguments as the Microsoft C runtime splits them (what a Windows program sees)."""
    args: list[str] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in " \t":
            i += 1
        if i >= n:
            return args
        arg: list[str] = []
        quoted = False
        while i < n:
            c = line[i]
            if c == "\\":
                j = i
                while j < n and line[j] == "\\":
                    j += 1
                count = j - i
                if j < n and line[j] == '"':
                    arg.append("\\" * (count // 2))
                    if count % 2:
                        arg.append('"')
                        j += 1
                    i = j
                else:
                    arg.append("\\" * count)
                    i = j
            elif c == '"':
                if quoted and i + 1 < n and line[i + 1] == '"':  # "" inside quotes: a literal quote
                    arg.append('"')
                    i += 2
                else:
                    quoted = not quoted
                    i += 1
            elif c in " \t" and not quoted:
                break
            else:
                arg.append(c)
                i += 1
        args.append("".join(arg))


@dataclass
class Task:
    """One task as the worker ran it."""

    argv: list[str]
    exit_code: int
    stdout: str
    stderr: str
    progress: list[float] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """FailRender: the plugin fails the task on any non-zero exit."""
        return self.exit_code != 0


def task_argv(info: dict[str, str], start: int, end: int, env: dict[str, str],
              mapping: Sequence[tuple[str, str]] = ()) -> list[str]:
    """The process the plugin starts for the task (ShellExecute or not)."""
    executable, arguments = render_executable(info, mapping), render_arguments(info, start, end, mapping=mapping)
    if info.get("ShellExecute", "False").strip().lower() != "true":
        return [executable, *crt_split(arguments)]
    return [shell_executable(info, env), *shlex.split(shell_argument(info, arguments))]


def run_task(info: dict[str, str], start: int, end: int, *, env: dict[str, str], cwd: Path,
             mapping: Sequence[tuple[str, str]] = (), timeout: int = 300) -> Task:
    """Run one task of the job as the worker would: the process, its progress lines, its exit code."""
    argv = task_argv(info, start, end, env, mapping)
    startup = info.get("StartupDirectory", "").strip() or str(cwd)
    ran = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=startup, timeout=timeout)
    progress = [float(m.group(1)) for line in ran.stdout.splitlines() if (m := PROGRESS.match(line))]
    return Task(argv, ran.returncode, ran.stdout, ran.stderr, progress)
