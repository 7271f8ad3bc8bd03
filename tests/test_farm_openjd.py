"""The Open Job Description bundle: `openjd check` accepts it, `openjd run` renders the one-shot result."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import TinyShot
from test_jobs import FAST, ivi, ivi_env, pixels, shot_args

pytest.importorskip("openjd.model")
OPENJD = Path(sys.executable).with_name("openjd")
SETTINGS = ["--preset", "quick", "--steps", "3", "--work-size", "32"]


def openjd(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    if not OPENJD.exists():
        pytest.skip("the openjd command is not installed (pip install openjd-cli)")
    return subprocess.run([str(OPENJD), *args], capture_output=True, text=True, cwd=cwd, env=ivi_env(), timeout=300)


def test_the_bundle_passes_openjd_check_with_a_gpu_train_step_and_chunked_render(tiny_shot: TinyShot,
                                                                                  tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    r = ivi("submit", "--farm", "openjd", "--bundle", str(bundle), *shot_args(tiny_shot, tmp_path / "out"),
            *SETTINGS, "--chunk-size", "2")
    assert r.returncode == 0, r.stderr
    template = bundle / "template.json"
    assert r.stdout.strip() == str(template)
    assert sorted(p.name for p in bundle.iterdir()) == ["job.json", "parameter_values.json", "template.json"]
    check = openjd("check", str(template))
    assert check.returncode == 0 and "passes validation" in check.stdout, check.stdout + check.stderr

    doc = json.loads(template.read_text())
    train, render = doc["steps"]
    assert (train["name"], render["name"]) == ("Train", "Render") and "TASK_CHUNKING" in doc["extensions"]
    assert train["hostRequirements"]["amounts"] == [{"name": "amount.worker.gpu", "min": 1}]
    assert render["dependencies"] == [{"dependsOn": "Train"}]
    (frame,) = render["parameterSpace"]["taskParameterDefinitions"]
    assert frame["type"] == "CHUNK[INT]" and frame["range"] == "{{Param.Frames}}"
    assert render["script"]["actions"]["onRun"]["args"][-2:] == ["--frames", "{{Task.Param.Frame}}"]
    params = {p["name"]: p.get("default") for p in doc["parameterDefinitions"]}
    assert params["Frames"] == "1001-1005" and params["ChunkSize"] == 2 and params["JobFile"] == "job.json"
    job = json.loads((bundle / "job.json").read_text())
    assert Path(job["plate"]).is_absolute() and Path(job["checkpoint_dir"]).is_absolute()  # for other machines
    values = json.loads((bundle / "parameter_values.json").read_text())["parameterValues"]
    assert {"name": "Frames", "value": "1001-1005"} in values


def test_openjd_run_trains_once_renders_every_chunk_and_matches_one_shot_inpaint(tiny_shot: TinyShot,
                                                                                tmp_path: Path) -> None:
    # Relative patterns, from another folder: the bundle must carry absolute paths.
    rel = ["--plate", "shot/plate.####.exr", "--mask", "shot/mask.####.exr", "--out", "farm/clean.####.exr"]
    r = ivi("submit", "--bundle", "bundle", *rel, *SETTINGS, "--chunk-size", "2", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    exe = str(Path(sys.executable).with_name("ivi-render"))
    run = openjd("run", str(tmp_path / "bundle/template.json"), "--step", "Render", "--run-dependencies",
                 "-p", f"IviRender={exe}", "-p", "Device=cpu", cwd=tmp_path / "shot")
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-3000:]
    # Local runs ignore the GPU host requirement; Train ran once, then the three chunks.
    assert log.count("trained 3 steps, quality estimate") == 1  # once, with the held-out estimate
    assert re.findall(r"Frame\(CHUNK\[INT\]\) = (\S+)", log) == ["1001-1002", "1003-1004", "1005-1005"]
    assert "openjd_progress: 100" in log

    r = ivi("inpaint", *shot_args(tiny_shot, tmp_path / "one"), *FAST)
    assert r.returncode == 0, r.stderr
    farm = pixels(str(tmp_path / "farm/clean.####.exr"), tiny_shot.frames)
    one = pixels(str(tmp_path / "one/clean.####.exr"), tiny_shot.frames)
    assert all(np.array_equal(a, b) for a, b in zip(farm, one))


def test_submit_checks_the_inputs_and_writes_nothing_on_error(tiny_shot: TinyShot, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    r = ivi("submit", "--bundle", str(bundle), "--plate", str(tiny_shot.folder / "nothing.####.exr"),
            "--mask", tiny_shot.mask, "--out", str(tmp_path / "out/c.####.exr"))
    assert r.returncode == 1 and "nothing.####.exr" in r.stderr and not bundle.exists()
    r = ivi("submit", "--bundle", str(bundle), "--plate", tiny_shot.plate)
    assert r.returncode == 2 and "--mask" in r.stderr and not bundle.exists()
