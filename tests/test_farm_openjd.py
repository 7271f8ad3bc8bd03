"""The Open Job Description bundle: `openjd check` accepts it, and `openjd run` renders it over hostile paths,
from its PATH parameters (the shot moved after submission), never from the paths inside job.json."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

sys.path.insert(0, str(Path(__file__).parent / "fake_farm"))
from hostile import BUNDLE, JOB_FOLDER, SETTINGS, SHOT, canaries, farm_env

from conftest import TinyShot, make_tiny_shot
from ivi_cli.main import cli
from test_farm_extras import assert_clean_plates

pytest.importorskip("openjd.model")
OPENJD = Path(sys.executable).with_name("openjd")


def submit(*args: str) -> Result:
    return CliRunner().invoke(cli, ["submit", *args], env={"PATH": "/usr/bin:/bin"})  # no farm client on PATH


def openjd(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    if not OPENJD.exists():
        pytest.skip("the openjd command is not installed (pip install openjd-cli)")
    return subprocess.run([str(OPENJD), *args], capture_output=True, text=True, cwd=cwd, env=farm_env(), timeout=300)


def test_the_bundle_passes_openjd_check_with_path_parameters_and_any_cuda_device(
        tiny_shot: TinyShot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = tmp_path / "bundle"
    monkeypatch.chdir(tmp_path)  # relative patterns, from the current folder: the bundle carries absolute paths
    r = submit("--bundle", "bundle", "--plate", "shot/plate.####.exr", "--mask", "shot/mask.####.exr",
               "--out", "out/clean.####.exr", *SETTINGS[:-2], "--device", "cuda:1", "--chunk-size", "2")
    assert r.exit_code == 0, r.output
    template = bundle / "template.json"
    assert r.stdout.strip() == str(Path("bundle/template.json"))
    assert sorted(p.name for p in bundle.iterdir()) == ["job.json", "openjd_parameters.json", "parameter_values.json",
                                                        "template.json"]
    check = openjd("check", str(template))
    assert check.returncode == 0 and "passes validation" in check.stdout, check.stdout + check.stderr

    doc = json.loads(template.read_text())
    params = {p["name"]: p for p in doc["parameterDefinitions"]}
    flows = {name: (p["objectType"], p["dataFlow"]) for name, p in params.items() if p["type"] == "PATH"}
    assert flows == {"JobFile": ("FILE", "IN"), "PlateDir": ("DIRECTORY", "IN"), "MaskDir": ("DIRECTORY", "IN"),
                     "OutDir": ("DIRECTORY", "OUT"), "CheckpointDir": ("DIRECTORY", "INOUT")}
    shot, out = tmp_path / "shot", tmp_path / "out"
    # Open Job Description takes only relative PATH defaults inside the bundle: the values are in the files.
    assert "default" not in params["PlateDir"] and params["PlateFile"]["default"] == "plate.####.exr"
    assert params["Device"]["default"] == "cuda:1" and "allowedValues" not in params["Device"]
    train, render = doc["steps"]
    assert train["hostRequirements"]["amounts"] == [{"name": "amount.worker.gpu", "min": 1}]
    assert render["dependencies"] == [{"dependsOn": "Train"}] and "TASK_CHUNKING" in doc["extensions"]
    args = render["script"]["actions"]["onRun"]["args"]
    assert args[args.index("--plate") + 1] == "{{Param.PlateDir}}/{{Param.PlateFile}}"
    assert args[args.index("--checkpoint-dir") + 1] == "{{Param.CheckpointDir}}"
    assert args[-2:] == ["--frames", "{{Task.Param.Frame}}"]
    train_args = train["script"]["actions"]["onRun"]["args"]
    assert train_args[train_args.index("--out") + 1] == "{{Param.OutDir}}/{{Param.OutFile}}"
    values = {v["name"]: v["value"]
              for v in json.loads((bundle / "parameter_values.json").read_text())["parameterValues"]}
    assert values["Frames"] == "1001-1005" and values["MaskDir"] == str(shot) and values["OutDir"] == str(out)
    assert json.loads((bundle / "openjd_parameters.json").read_text()) == values
    assert values["CheckpointDir"] == str(out / ".ivi/clean") and json.loads((bundle / "job.json").read_text())[
        "plate"] == str(shot / "plate.####.exr")  # absolute, for other machines

    # The chunks Deadline Cloud would make, from openjd-model itself.
    from openjd.model import StepParameterSpaceIterator, create_job, decode_job_template, preprocess_job_parameters
    decoded = decode_job_template(template=doc, supported_extensions=["TASK_CHUNKING"])
    job = create_job(job_template=decoded, job_parameter_values=preprocess_job_parameters(
        job_template=decoded, job_parameter_values=values, job_template_dir=bundle, current_working_dir=tmp_path))
    chunks = [task["Frame"].value for task in StepParameterSpaceIterator(space=job.steps[1].parameterSpace)]
    assert chunks == ["1001-1002", "1003-1004", "1005"] or chunks == ["1001-1002", "1003-1004", "1005-1005"]


def test_openjd_run_renders_from_the_path_parameters_over_hostile_paths(tmp_path: Path) -> None:
    desk = make_tiny_shot(tmp_path / "desk" / SHOT, count=3)
    bundle = tmp_path / BUNDLE
    r = submit("--bundle", str(bundle), "--plate", desk.plate, "--mask", desk.mask,
               "--out", str(tmp_path / "desk/out/clean.####.exr"), *SETTINGS, "--chunk-size", "3")
    assert r.exit_code == 0, r.output
    # The farm sees the shot elsewhere (a worker's mapped storage): only the PATH parameters say where.
    node = tmp_path / "node" / SHOT
    node.parent.mkdir()
    shutil.move(desk.folder, node)
    shot = TinyShot(node, str(node / "plate.####.exr"), str(node / "mask.####.exr"), desk.frames, desk.plates,
                    desk.mattes)
    out, folder = tmp_path / "node/out", tmp_path / "node" / JOB_FOLDER
    run = openjd("run", str(bundle / "template.json"), "--step", "Render", "--run-dependencies",
                 "-p", f"file://{bundle / 'openjd_parameters.json'}", "-p", f"PlateDir={node}", "-p", f"MaskDir={node}",
                 "-p", f"OutDir={out}", "-p", f"CheckpointDir={folder}", "-p", "Device=cpu", cwd=tmp_path)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-3000:]
    assert len(re.findall(r"trained 2 steps.*: " + re.escape(str(folder)), log)) == 1  # Train once, then the chunks
    # One chunk (each ivi-render start costs seconds on CI); chunking itself is the check test's.
    assert re.findall(r"Frame\(CHUNK\[INT\]\) = (\S+)", log) == ["1001-1003"]
    assert "openjd_progress: 100" in log
    assert_clean_plates(shot, out, [1001, 1002, 1003])
    assert (folder / "model.ckpt").is_file() and not (tmp_path / "desk/out").exists()
    assert canaries(tmp_path) == []


def test_submit_checks_the_inputs_and_writes_nothing_on_error(tiny_shot: TinyShot, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    r = submit("--bundle", str(bundle), "--plate", str(tiny_shot.folder / "nothing.####.exr"),
               "--mask", tiny_shot.mask, "--out", str(tmp_path / "out/c.####.exr"))
    assert r.exit_code == 1 and "nothing.####.exr" in r.stderr and not bundle.exists()
    r = submit("--bundle", str(bundle), "--plate", tiny_shot.plate)
    assert r.exit_code == 2 and "--mask" in r.stderr and not bundle.exists()
    r = submit("--bundle", str(bundle), "--plate", tiny_shot.plate, "--mask", tiny_shot.mask,
               "--out", str(tmp_path / "out/c.####.exr"), "--device", "gpu0")
    assert r.exit_code == 1 and "cuda:N" in r.stderr and not bundle.exists()
