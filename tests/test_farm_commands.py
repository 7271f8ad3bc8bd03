"""Farm command lines: quoted for the program that reads them, refused where no quoting carries a path.

The shell tests run the quoted line through a real /bin/sh; the Windows ones split it by the Microsoft
C runtime's rules (fake_farm.deadline_commandline.crt_split), as a Windows program would.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "fake_farm"))
import deadline_commandline as plugin
from hostile import BUNDLE, JOB_FOLDER, SHOT, canaries

from ivi_cli import options
from ivi_cli.train import train as train_command
from ivi_vfx.errors import ConfigError
from ivi_vfx.farm import commands, deadline, opencue, quoting
from ivi_vfx.jobs import JobSpec

ARGS = [SHOT, BUNDLE, JOB_FOLDER, "", "a\\", "\\\\server\\share\\x y\\", 'say "hi"', "tab\\\"quote", "*", "~",
        "$HOME", "!!", "-n", "<STARTFRAME>-<ENDFRAME>"]
"""Arguments that must each arrive as one argument, unchanged."""


def test_a_posix_line_reaches_the_program_as_the_same_arguments_and_runs_nothing(tmp_path: Path) -> None:
    line = quoting.posix([sys.executable, "-c", "import sys; print(repr(sys.argv[1:]))", *ARGS])
    ran = subprocess.run(["/bin/sh", "-c", line], capture_output=True, text=True, cwd=tmp_path, check=True)
    assert ran.stdout.strip() == repr(ARGS)
    assert canaries(tmp_path) == []


def test_a_windows_line_splits_back_into_the_same_arguments_by_the_c_runtime_rules() -> None:
    assert plugin.crt_split(quoting.windows(ARGS)) == ARGS
    assert plugin.crt_split(r'a\\\"b "c d" e""f "g""h"') == ['a\\"b', "c d", "ef", 'g"h']  # the rules themselves


def test_the_plugin_replay_runs_what_the_issue_saw_with_the_old_quote_tokens(tmp_path: Path) -> None:
    # The old Arguments: <QUOTE> around arguments with spaces. ShellExecute gives sh "...$(touch CANARY)...".
    folder = "it's $(touch CANARY) a;b"
    info = {"ShellExecute": "True", "Shell": "sh", "Arguments": f"true --job <QUOTE>/x/{folder}/job.json<QUOTE>"}
    assert plugin.run_task(info, 1, 1, env={"PATH": "/bin:/usr/bin"}, cwd=tmp_path).failed is False
    assert canaries(tmp_path) == [tmp_path / "CANARY"]
    # and Arguments that start with `train`, as the old job files did, fail: the shell has no `train`.
    info["Arguments"] = "train --job job.json"
    assert "train" in plugin.run_task(info, 1, 1, env={"PATH": "/bin:/usr/bin"}, cwd=tmp_path).stderr


@pytest.mark.parametrize("path, fault", [
    ("/shots/a\nb/plate.####.exr", "control character"),
    ("/shots/<QUOTE>/plate.####.exr", "'<QUOTE>'"),
    ("/shots/<startframe%4>/plate.####.exr", "'<startframe%4>'"),
    ("/shots/\u201cnice\u201d/plate.####.exr", "straight double quote"),
])
def test_deadline_refuses_paths_that_its_plugin_would_rewrite(path: str, fault: str) -> None:
    with pytest.raises(ConfigError) as error:
        quoting.check_path("plate", path, deadline.REWRITTEN)
    assert fault in str(error.value)


def test_opencue_refuses_paths_holding_cuebot_tokens() -> None:
    with pytest.raises(ConfigError, match="#FRAME#"):
        quoting.check_path("out", "/shots/#FRAME#/clean.####.exr", opencue.CUEBOT_TOKENS)
    assert quoting.check_path("out", "/shots/#1/clean.####.exr", opencue.CUEBOT_TOKENS)


def test_a_farm_device_is_any_cuda_index_or_the_cpu() -> None:
    assert [commands.check_device(d) for d in ("auto", "cpu", "cuda", "cuda:1", "cuda:12")]
    for bad in ("gpu", "cuda:", "cuda:x", "cpu; rm -rf /"):
        with pytest.raises(ConfigError, match="cuda:N"):
            commands.check_device(bad)


def _as_train_reads_it(argv: list[str], job_file: Path) -> JobSpec:
    """The JobSpec that `ivi-render train` builds from a task's arguments (click parses them as on the node)."""
    ctx = train_command.make_context("train", argv[1:])
    params = dict(ctx.params)
    params.pop("resume"), params.pop("progress_format"), params.pop("device")
    return options.job_spec(params.pop("job_file"), **params)


def test_a_keyframe_task_keeps_its_key_frames_and_propagation_settings_with_its_own_paths(tmp_path: Path) -> None:
    spec = JobSpec(plate="/a/plate.####.exr", key_mask="/a/roto.####.exr", key_frames="1001,1003",
                   out="/b/clean.####.exr", track=0.03, max_speed=0.02, rounds=4, propagate_steps=7, dilate=2,
                   preset="quick")
    job = spec.save(tmp_path / "job.json")
    moved = {key: value.replace("/a/", "/node/a/").replace("/b/", "/node/b/")
             for key, value in commands.job_paths(spec).items()}
    read = _as_train_reads_it(commands.train_args(spec, str(job), moved, "cpu"), job)
    assert read == spec.replace(plate="/node/a/plate.####.exr", key_mask="/node/a/roto.####.exr",
                                out="/node/b/clean.####.exr", checkpoint_dir="/node/b/.ivi/clean")
    mask_job = JobSpec(plate="/a/plate.####.exr", mask="/a/m.####.exr", out="/b/c.####.exr", mask_channel="Y")
    job = mask_job.save(tmp_path / "mask.json")
    args = commands.train_args(mask_job, str(job), commands.job_paths(mask_job), "cpu")
    assert _as_train_reads_it(args, job) == mask_job.replace(checkpoint_dir="/b/.ivi/c")
