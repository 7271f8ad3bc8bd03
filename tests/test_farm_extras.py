"""OpenCue (PyOutline XML) and Deadline 10 (CommandLine job files), run as each farm runs them, over hostile paths.

Deadline: the stock CommandLine plugin's logic replayed (fake_farm/deadline_commandline.py), with
ShellExecute for POSIX workers and without it (the C runtime's splitting) for Windows workers.
OpenCue: Cuebot's token substitution and RQD's command file read by sh (fake_farm/opencue_rqd.py).
Every task runs the real ivi-render; every frame must render and no canary file may appear.
"""
from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

sys.path.insert(0, str(Path(__file__).parent / "fake_farm"))
import deadline_commandline as plugin
import opencue_rqd as rqd
from hostile import BUNDLE, JOB_FOLDER, SETTINGS, SHOT, canaries, farm_env

from conftest import TinyShot, make_tiny_shot
from ivi_cli.main import cli
from ivi_vfx.farm.deadline import JOB_INFO_KEYS, PLUGIN_INFO_KEYS
from ivi_vfx.farm.opencue import gpu_memory
from ivi_vfx.jobs import JobSpec
from test_jobs import pixels


def submit(*args: str, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(cli, ["submit", *args], env={"CUEBOT_HOSTS": None, **(env or {})})


def hostile_job(tmp_path: Path, farm: str, *extra: str,
                env: dict[str, str | None] | None = None) -> tuple[TinyShot, Path, Path, Result]:
    """A 3-frame shot, its output and its job folder in hostile folders, and the farm's files for it."""
    shot = make_tiny_shot(tmp_path / SHOT / "shot", count=3)
    out, bundle = tmp_path / SHOT / "out", tmp_path / BUNDLE
    r = submit("--farm", farm, "--bundle", str(bundle), "--plate", shot.plate, "--mask", shot.mask,
               "--out", str(out / "clean.####.exr"), "--checkpoint-dir", str(tmp_path / JOB_FOLDER), *SETTINGS, *extra,
               env=env)
    assert r.exit_code == 0, r.output
    return shot, out, bundle, r


def assert_clean_plates(shot: TinyShot, out: Path, frames: list[int]) -> None:
    """The frames exist, hold the plate outside the matte bit for bit, and the matte as alpha."""
    assert sorted(p.name for p in out.glob("clean.*.exr")) == [f"clean.{f}.exr" for f in frames]
    for t, frame in enumerate(pixels(str(out / "clean.####.exr"), frames)):
        i = shot.frames.index(frames[t])
        keep = shot.mattes[i] == 0
        assert np.array_equal(frame[..., :3][keep], shot.plates[i][keep]) and np.array_equal(frame[..., 3],
                                                                                           shot.mattes[i])


def test_opencue_layers_run_through_rqd_over_hostile_paths(tmp_path: Path) -> None:
    pytest.importorskip("outline")
    shot, out, bundle, r = hostile_job(tmp_path, "opencue", "--chunk-size", "2", "--show", "feature",
                                       "--priority", "70", env={"SHOT": "sq010_sh020", "SHOW": "env_show"})
    assert r.stdout.strip() == str(bundle / "job.xml")
    assert "not submitted (no opencue client here)" in r.stderr
    spec = ET.parse(bundle / "job.xml").getroot()
    assert (spec.findtext("show"), spec.findtext("shot")) == ("feature", "sq010_sh020")  # option, then $SHOT
    assert spec.findtext("job/priority") == "70"
    train, render = spec.findall("./job/layers/layer")
    assert (train.get("name"), train.findtext("range"), train.findtext("chunk"), train.findtext("gpus"),
            train.findtext("gpu_memory")) == ("train", "1001", "1", "1", "2g")  # quick, at --work-size 32
    presets = {p: gpu_memory(JobSpec(plate="p.####.exr", mask="m.####.exr", out="o.####.exr", preset=p))
               for p in ("quick", "final", "paper")}
    assert presets == {"quick": "11g", "final": "18g", "paper": "18g"}  # the paper network at 600 px, + fine-tune
    assert (render.get("name"), render.findtext("range"), render.findtext("chunk")) == ("render", "1001-1003", "2")
    depend = spec.find("./depends/depend")
    assert depend is not None and depend.get("type") == "LAYER_ON_LAYER"

    env = farm_env()
    ran = rqd.run_frame(rqd.dispatch(train.findtext("cmd") or "", start=1001, end=1001, chunk=1, layer="train",
                                     job="ivi_clean"), env=env, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr[-2000:]
    ran = rqd.run_frame(rqd.dispatch(render.findtext("cmd") or "", start=1003, end=1003, chunk=2, layer="render",
                                     job="ivi_clean"), env=env, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert "Progress: 100%" in ran.stdout
    assert_clean_plates(shot, out, [1003])
    assert canaries(tmp_path) == []
    # Without --show and --shot: $SHOW, then $SHOT, else the job's name (the output's stem).
    r = submit("--farm", "opencue", "--bundle", str(tmp_path / "b2"), "--job", str(bundle / "job.json"),
               env={"SHOW": "env_show", "SHOT": None})
    spec = ET.parse(tmp_path / "b2/job.xml").getroot()
    assert (spec.findtext("show"), spec.findtext("shot")) == ("env_show", "clean"), r.output


def test_deadline_jobs_run_through_the_commandline_plugin_on_posix_and_windows_workers(tmp_path: Path) -> None:
    shot, out, bundle, r = hostile_job(tmp_path, "deadline", "--chunk-size", "2", "--pool", "gpu_pool",
                                       "--group", "render_farm", "--gpu-group", "rtx_a6000", "--priority", "65")
    assert r.stdout.strip() == str(bundle / "submit.sh")
    info = {name: plugin.read_info(bundle / name) for name in
            ("train.job", "train_plugin.job", "render.job", "render_plugin.job")}
    for name in ("train.job", "render.job"):
        assert set(info[name]) <= JOB_INFO_KEYS, set(info[name]) - JOB_INFO_KEYS  # Thinkbox's keys only
        assert (info[name]["Plugin"], info[name]["Pool"], info[name]["Priority"]) == ("CommandLine", "gpu_pool", "65")
    for name in ("train_plugin.job", "render_plugin.job"):
        assert set(info[name]) <= PLUGIN_INFO_KEYS
    assert (info["train.job"]["Group"], info["render.job"]["Group"]) == ("rtx_a6000", "render_farm")  # GPU for Train
    assert (info["train.job"]["Frames"], info["train.job"]["ChunkSize"]) == ("1001", "1")
    assert (info["render.job"]["Frames"], info["render.job"]["ChunkSize"]) == ("1001-1003", "2")
    assert info["render.job"]["OutputFilename0"] == "clean.####.exr"
    assert info["render.job"]["OutputDirectory0"] == str(out)

    # POSIX workers: ShellExecute, `sh -c '<Arguments>'`, Executable ignored, progress read from stdout.
    env = farm_env(SHELL="/bin/csh")  # the worker's login shell is not what runs the task: Shell=sh
    train = plugin.run_task(info["train_plugin.job"], 1001, 1001, env=env, cwd=tmp_path)
    assert train.argv[:2] == ["/bin/sh", "-c"] and not train.failed, train.stderr[-2000:]
    render = plugin.run_task(info["render_plugin.job"], 1001, 1002, env=env, cwd=tmp_path)
    assert not render.failed, render.stderr[-2000:]
    assert render.progress[-1] == 100.0  # the plugin's `.*Progress: (\d+)%.*` handler saw the task finish

    # Windows workers: no shell; Executable runs with Arguments, split by the C runtime's rules.
    r = submit("--farm", "deadline", "--bundle", str(tmp_path / "windows"), "--job", str(bundle / "job.json"),
               "--workers", "windows", "--chunk-size", "2", "--device", "cpu")
    assert r.exit_code == 0, r.output
    windows = {name: plugin.read_info(tmp_path / "windows" / name)
               for name in ("train_plugin.job", "render_plugin.job")}
    assert windows["render_plugin.job"]["ShellExecute"] == "False"
    # The Windows train task is the POSIX one's process, argument for argument (the POSIX one ran it above);
    # the sh -c line's arguments are what sh makes of them:
    echo = subprocess.run(["/bin/sh", "-c", "printf '%s\\0' " + train.argv[2].split(" ", 1)[1]], capture_output=True,
                          text=True, check=True, cwd=tmp_path).stdout.split("\0")[:-1]
    win_train = plugin.task_argv(windows["train_plugin.job"], 1001, 1001, env)
    assert win_train[1:] == [a.replace(str(bundle), str(tmp_path / "windows")) for a in echo]
    ran = plugin.run_task(windows["render_plugin.job"], 1003, 1003, env=env, cwd=tmp_path)
    assert ran.argv[0] == "ivi-render" and not ran.failed, ran.stderr[-2000:]
    assert ran.progress == [] or ran.progress[-1] == 100.0
    assert_clean_plates(shot, out, [1001, 1002, 1003])
    assert canaries(tmp_path) == []


def test_submit_sh_and_submit_bat_name_only_the_files_beside_them(tmp_path: Path) -> None:
    shot = make_tiny_shot(tmp_path / "shot", count=2)
    bundle = tmp_path / BUNDLE
    r = submit("--farm", "deadline", "--bundle", str(bundle), "--plate", shot.plate, "--mask", shot.mask,
               "--out", str(tmp_path / "out/clean.####.exr"), "--bundle-only")
    assert r.exit_code == 0, r.output
    assert "not submitted (--bundle-only); to submit, run: " in r.stderr
    fake = tmp_path / "bin/deadlinecommand"  # logs each job info file, answers as Deadline does
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\ncat "$1" >> "{tmp_path}/submitted"; echo "Result=Success"; echo "JobID=5f0a1"\n')
    fake.chmod(0o755)
    ran = subprocess.run([str(bundle / "submit.sh")], env=farm_env(PATH=f"{fake.parent}:/usr/bin:/bin"), cwd=tmp_path,
                         capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    submitted = (tmp_path / "submitted").read_text()
    assert submitted.index("Name=ivi clean train") < submitted.index("Name=ivi clean render")
    assert submitted.rstrip().endswith("JobDependencies=5f0a1")  # the render job waits for the train job
    assert canaries(tmp_path) == []
    bat = (bundle / "submit.bat").read_bytes()
    assert bat.count(b"\r\n") == bat.count(b"\n") and str(tmp_path).encode() not in bat  # CRLF; no path in it
    assert b'pushd "%~dp0"' in bat and b"JobDependencies=%train_id%" in bat
