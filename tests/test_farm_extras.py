"""OpenCue (PyOutline XML) and Deadline 10 (CommandLine job files): their commands really run the job."""
from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import TinyShot
from test_jobs import ivi, ivi_env, shot_args

SETTINGS = ["--preset", "quick", "--steps", "2", "--work-size", "32", "--device", "cpu"]


def shell(command: str) -> subprocess.CompletedProcess:
    """Run a command line as the farm's worker does: through a shell, ivi-render on PATH."""
    env = {**ivi_env(), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, env=env, timeout=300)


def test_opencue_job_xml_has_a_gpu_train_layer_and_a_chunked_render_layer_that_run(tiny_shot: TinyShot,
                                                                                   tmp_path: Path) -> None:
    pytest.importorskip("outline")
    out, folder = tmp_path / "out", tmp_path / "farm jobs"  # a space, which the shell commands must survive
    r = ivi("submit", "--farm", "opencue", "--bundle", str(folder), *shot_args(tiny_shot, out),
            *SETTINGS, "--chunk-size", "3")
    assert r.returncode == 0, r.stderr
    spec = ET.parse(folder / "job.xml").getroot()
    train, render = spec.findall("./job/layers/layer")
    assert (train.get("name"), train.findtext("range"), train.findtext("chunk"), train.findtext("gpus")) == (
        "train", "1001", "1", "1")
    assert (render.get("name"), render.findtext("range"), render.findtext("chunk")) == ("render", "1001-1005", "3")
    depend = spec.find("./depends/depend")
    assert depend is not None and depend.get("type") == "LAYER_ON_LAYER"
    assert (depend.findtext("deplayer"), depend.findtext("onlayer")) == ("render", "train")

    assert shell(train.findtext("cmd") or "").returncode == 0
    chunk = (render.findtext("cmd") or "").replace("#FRAME_START#", "1004").replace("#FRAME_END#", "1005")
    ran = shell(chunk)
    assert ran.returncode == 0, ran.stderr
    assert "Progress: 100%" in ran.stdout
    assert sorted(p.name for p in out.glob("*.exr")) == ["clean.1004.exr", "clean.1005.exr"]


def test_deadline_job_files_for_the_commandline_plugin_run(tiny_shot: TinyShot, tmp_path: Path) -> None:
    folder, out = tmp_path / "farm jobs", tmp_path / "out"  # a space, which the shell commands must survive
    r = ivi("submit", "--farm", "deadline", "--bundle", str(folder), *shot_args(tiny_shot, out), *SETTINGS,
            "--chunk-size", "2")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(folder / "submit.sh") and os.access(folder / "submit.sh", os.X_OK)
    info = {name: dict(line.split("=", 1) for line in (folder / name).read_text().splitlines())
            for name in ("train.job", "train_plugin.job", "render.job", "render_plugin.job")}
    assert info["train.job"]["Plugin"] == info["render.job"]["Plugin"] == "CommandLine"
    assert (info["train.job"]["Frames"], info["train.job"]["ChunkSize"]) == ("1001", "1")
    assert (info["render.job"]["Frames"], info["render.job"]["ChunkSize"]) == ("1001-1005", "2")
    assert info["render.job"]["OutputFilename0"] == "clean.####.exr"
    # submit.sh against a stand-in deadlinecommand that logs each job info file and answers as Deadline does.
    fake = tmp_path / "bin/deadlinecommand"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\ncat "$1" >> "{tmp_path}/submitted"; echo "Result=Success"; echo "JobID=5f0a1"\n')
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake.parent}{os.pathsep}{os.environ['PATH']}"}
    assert subprocess.run([str(folder / "submit.sh")], env=env).returncode == 0
    submitted = (tmp_path / "submitted").read_text()
    assert submitted.index("Name=ivi clean train") < submitted.index("Name=ivi clean render")
    assert submitted.rstrip().endswith("JobDependencies=5f0a1")  # the render job waits for the train job

    def command(plugin: str, start: str = "", end: str = "") -> str:
        args = info[plugin]["Arguments"].replace("<STARTFRAME>", start).replace("<ENDFRAME>", end)
        return f"{info[plugin]['Executable']} {args.replace('<QUOTE>', chr(34))}"

    assert shell(command("train_plugin.job")).returncode == 0
    ran = shell(command("render_plugin.job", "1001", "1002"))
    assert ran.returncode == 0, ran.stderr
    assert "Progress: 100%" in ran.stdout  # what the plugin's stdout handler turns into task progress
    assert sorted(p.name for p in out.glob("*.exr")) == ["clean.1001.exr", "clean.1002.exr"]
