"""JobSpec (round trip, errors) and the farm-shaped commands: train, render chunks, run, progress formats."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import TinyShot
from ivi_vfx.config import PRESETS, preset_config
from ivi_vfx.errors import ConfigError, OutputExistsError
from ivi_vfx.io.exr import read_exr
from ivi_vfx.jobs import SCHEMA_VERSION, JobSpec
from ivi_vfx.mattes.fitting import load_propagation

FAST = ["--no-carry", "--steps", "3", "--preset", "quick", "--work-size", "32", "--device", "cpu"]


def ivi(*args: str, cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """The installed ivi-render, as a farm runs it. One torch thread: tiny shots gain nothing from more, and
    on a loaded 2-core machine torch's spinning worker threads make a tiny step 100x slower."""
    exe = Path(sys.executable).with_name("ivi-render")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, cwd=cwd, env=ivi_env(), timeout=timeout)


def ivi_env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}


def pixels(pattern: str, frames: list[int]) -> list[np.ndarray]:
    return [read_exr(pattern.replace("####", f"{f:04d}")).pixels for f in frames]


def shot_args(shot: TinyShot, out: Path) -> list[str]:
    return ["--plate", shot.plate, "--mask", shot.mask, "--out", str(out / "clean.####.exr")]


# --- JobSpec ---------------------------------------------------------------------------------------

def test_jobspec_round_trips_through_json_and_builds_the_presets_config(tmp_path: Path) -> None:
    spec = JobSpec(plate="a/p.####.exr", mask="a/m.####.exr", out="b/c.####.exr", frames="1001-1010x2",
                   mask_channel="Y", preset="quick", steps=40, budget=0.5, work_size=64, dilate=2, seed=7,
                   checkpoint_dir="ck", name="sh010")
    path = spec.save(tmp_path / "job.json")
    assert JobSpec.load(path) == spec and JobSpec.from_dict(json.loads(path.read_text())) == spec
    assert json.loads(path.read_text())["schema_version"] == SCHEMA_VERSION
    # Files of versions 1 (no progressive keys), 2 (no propagation keys) and 3 (the job folder named
    # `checkpoint`, no `writes` and no other propagation keys) read with their defaults.
    v4 = json.loads(path.read_text())
    v3 = {k: v for k, v in v4.items() if k not in ("writes", "threshold", "object_weight", "propagate_steps",
                                                  "propagate_budget", "propagate_work_size", "checkpoint_dir")}
    v3["checkpoint"] = v4["checkpoint_dir"]
    assert JobSpec.from_dict({**v3, "schema_version": 3}) == spec
    v2 = {k: v for k, v in v3.items() if k not in ("track", "max_speed", "rounds")}
    assert JobSpec.from_dict({**v2, "schema_version": 2}) == spec
    v1 = {k: v for k, v in v2.items() if k not in ("scales", "patch_size", "scale_steps", "tile_size")}
    assert JobSpec.from_dict({**v1, "schema_version": 1}) == spec
    assert spec.hires_config().scales == "auto" and spec.scales_path == Path("ck/scales.ckpt")
    assert spec.frame_list() == [1001, 1003, 1005, 1007, 1009]
    assert spec.model_path == Path("ck/model.ckpt")
    assert spec.train_config() == preset_config("quick").rescheduled(40).replace(
        budget=0.5, work_size=64, dilate=2, seed=7)
    bare = JobSpec(plate="p.####.exr", mask="m.####.exr", out="shots/clean.####.exr")
    assert bare.folder == Path("shots/.ivi/clean") and bare.job_name == "clean"
    # No preset: the final render, in the variant of the device that trains.
    assert bare.train_config("cpu") == PRESETS["final"].cpu and bare.train_config("cuda") == PRESETS["final"].gpu
    assert bare.propagate_config("cuda").width > bare.propagate_config("cpu").width
    assert JobSpec.load(tmp_path) == spec  # a folder holding job.json


JOB = {"plate": "p.####.exr", "mask": "m.####.exr", "out": "c.####.exr"}
BAD_JOBS = {
    # case: (file text, words the message must hold besides the file's name)
    "unknown key": (json.dumps({**JOB, "stepz": 3}), ["stepz", "steps"]),
    "newer schema": (json.dumps({**JOB, "schema_version": 99}), ["99", "upgrade"]),
    "no plate": (json.dumps({"mask": "m.####.exr", "out": "c.####.exr"}), ["plate"]),
    "bad frames": (json.dumps({**JOB, "frames": "1001-abc"}), ["1001-abc"]),
    "bad preset": (json.dumps({**JOB, "preset": "fastest"}), ["fastest", "quick"]),
    "bad value": (json.dumps({**JOB, "work_size": 4}), ["work_size"]),
    "bad scales": (json.dumps({**JOB, "scales": "0.5,0.7"}), ["scales", "ending with 1"]),
    "mask and keys": (json.dumps({**JOB, "key_mask": "k.####.exr", "key_frames": "1001"}), ["either 'mask'"]),
    "keys without frames": (json.dumps({k: v for k, v in {**JOB, "key_mask": "k.####.exr"}.items() if k != "mask"}),
                            ["key_frames"]),
    "propagation without keys": (json.dumps({**JOB, "rounds": 2}), ["rounds", "key_mask"]),
    "bad propagation value": (json.dumps({"plate": "p.####.exr", "out": "c.####.exr", "key_mask": "k.####.exr",
                                          "key_frames": "1001", "track": 1.5}), ["track"]),
    "not json": ("{plate: p.####.exr", ["JSON"]),
    "not an object": ("[1, 2]", ["object"]),
}


@pytest.mark.parametrize("case", sorted(BAD_JOBS))
def test_a_bad_job_file_is_an_error_naming_the_file(case: str, tmp_path: Path) -> None:
    text, words = BAD_JOBS[case]
    path = tmp_path / "job.json"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        JobSpec.load(path)
    for word in [str(path), *words]:
        assert word in str(info.value), str(info.value)


def test_run_with_a_bad_job_file_exits_1_and_writes_nothing(tiny_shot: TinyShot, tmp_path: Path) -> None:
    path = tmp_path / "job.json"
    path.write_text(json.dumps({"plate": tiny_shot.plate, "mask": tiny_shot.mask,
                                "out": str(tmp_path / "out/c.####.exr"), "sheeds": 1}))
    before = tiny_shot.digest()
    r = ivi("run", str(path))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert str(path) in r.stderr and "sheeds" in r.stderr
    assert not (tmp_path / "out").exists() and tiny_shot.digest() == before


# --- progress formats --------------------------------------------------------------------------------

def test_progress_formats_print_integer_lines_and_openjd_fail() -> None:
    from ivi_cli.progress import Progress

    stream = io.StringIO()
    with pytest.raises(OutputExistsError), Progress(stream, tty=False, fmt="both") as progress:
        for fraction in (0.0, 0.004, 0.456, 0.457, 1.0):
            progress(fraction)
        raise OutputExistsError("c.1001.exr exists;\npass --overwrite")
    assert stream.getvalue().splitlines() == [
        "Progress: 0%", "openjd_progress: 0", "Progress: 45%", "openjd_progress: 45",
        "Progress: 100%", "openjd_progress: 100", "openjd_fail: c.1001.exr exists; pass --overwrite"]
    plain = io.StringIO()
    with Progress(plain, tty=False) as progress:
        progress(0.5)
    assert plain.getvalue() == "Progress: 50%\n"


# --- train once, render chunks -------------------------------------------------------------------------

def test_train_then_render_chunks_is_idempotent_and_matches_inpaint(tiny_shot: TinyShot, tmp_path: Path) -> None:
    out, one = tmp_path / "out", tmp_path / "one"
    r = ivi("train", *shot_args(tiny_shot, out), *FAST, "--progress-format", "openjd")
    assert r.returncode == 0, r.stderr
    folder = out / ".ivi" / "clean"
    assert sorted(p.name for p in folder.iterdir()) == ["job.json", "model.ckpt", "report"]
    assert JobSpec.load(folder).frames == "1001-1005"  # the frames on disk, decided at training
    assert [line for line in r.stdout.splitlines() if line.startswith("openjd_progress:")][-1] == "openjd_progress: 100"
    assert not list(out.glob("*.exr"))  # training renders nothing

    r = ivi("render", "--checkpoint-dir", str(folder), "--frames", "1002-1003", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.glob("*.exr")) == ["clean.1002.exr", "clean.1003.exr"]
    assert r.stdout.splitlines()[-1] == "Progress: 100%"
    # The same chunk again skips its complete frames; a wider chunk renders only the rest.
    first = (out / "clean.1002.exr").stat().st_mtime_ns
    r = ivi("render", "--job", str(folder / "job.json"), "--frames", "1001-1005", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert "wrote 3 frames, 2 already complete" in r.stderr and (out / "clean.1002.exr").stat().st_mtime_ns == first
    r = ivi("render", "--checkpoint-dir", str(folder), "--frames", "1002", "--overwrite", "--device", "cpu")
    assert r.returncode == 0 and "wrote 1 frames, 0 already complete" in r.stderr

    r = ivi("inpaint", *shot_args(tiny_shot, one), *FAST)
    assert r.returncode == 0, r.stderr
    for a, b in zip(pixels(str(out / "clean.####.exr"), tiny_shot.frames),
                    pixels(str(one / "clean.####.exr"), tiny_shot.frames)):
        assert np.array_equal(a, b)  # the chunks are the one-shot job, bit for bit
    # inpaint leaves the same job folder, so a farm or a shell renders its frames again, bit for bit.
    inpainted = pixels(str(one / "clean.####.exr"), tiny_shot.frames)
    assert JobSpec.load(one / ".ivi" / "clean").mask == tiny_shot.mask
    r = ivi("render", "--checkpoint-dir", str(one / ".ivi" / "clean"), "--overwrite", "--device", "cpu")
    assert r.returncode == 0 and "wrote 5 frames" in r.stderr, r.stderr
    for a, b in zip(inpainted, pixels(str(one / "clean.####.exr"), tiny_shot.frames)):
        assert np.array_equal(a, b)


def test_a_keyframe_job_predicts_its_mattes_when_training_and_renders_chunks_with_them(
        tiny_shot: TinyShot, tmp_path: Path) -> None:
    out = tmp_path / "out"
    keys = ["--plate", tiny_shot.plate, "--key-mask", tiny_shot.mask, "--key-frames", "1001,1005"]
    r = ivi("train", *keys, "--mask", tiny_shot.mask, "--out", str(out / "clean.####.exr"), *FAST)
    assert r.returncode == 2 and "either 'mask'" in r.stderr  # a matte sequence or keys, not both
    r = ivi("train", *keys, "--out", str(out / "clean.####.exr"), "--max-speed", "0.4", "--rounds", "1", *FAST)
    assert r.returncode == 0, r.stderr
    folder = out / ".ivi" / "clean"
    spec = JobSpec.load(folder)
    assert (spec.mask, spec.key_frames) == (None, "1001,1005") and spec.fill_mask.startswith(str(folder / "mattes"))
    _, trained = load_propagation(folder / "propagate.ckpt")  # the job's propagation settings were used
    assert (spec.max_speed, spec.rounds, trained.max_speed, trained.rounds) == (0.4, 1, 0.4, 1)
    mattes = [read_exr(spec.fill_mask.replace("####", str(f))) for f in tiny_shot.frames]
    assert all(m.spec.channelnames == ("A",) for m in mattes)
    r = ivi("render", "--checkpoint-dir", str(folder), "--frames", "1002-1003", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    for frame, matte in zip((1002, 1003), mattes[1:3]):
        alpha = read_exr(str(out / f"clean.{frame}.exr")).channel("A")
        assert np.array_equal(alpha > 0, matte.pixels[..., 0] > 0)  # alpha: the predicted matte


def test_render_errors_name_the_fix(tiny_shot: TinyShot, tmp_path: Path) -> None:
    job = JobSpec(plate=tiny_shot.plate, mask=tiny_shot.mask, out=str(tmp_path / "out/c.####.exr"),
                  frames="1001-1003", preset="quick", steps=2, work_size=32).save(tmp_path / "job.json")
    r = ivi("render", "--job", str(job), "--frames", "1001")
    assert r.returncode == 1 and "model.ckpt: no checkpoint there; train first" in r.stderr
    assert ivi("train", "--job", str(job), "--device", "cpu").returncode == 0
    r = ivi("render", "--job", str(job), "--frames", "1003-1005")
    assert r.returncode == 1 and "frames 1004-1005 were not trained" in r.stderr
    (tmp_path / "out/c.1001.exr").write_text("not an image")
    r = ivi("render", "--job", str(job), "--frames", "1001")
    assert r.returncode == 1 and "c.1001.exr exists but is not a whole EXR" in r.stderr and "--overwrite" in r.stderr
    r = ivi("render", "--frames", "1001")
    assert r.returncode == 2 and "--job" in r.stderr
    assert len(list((tmp_path / "out").glob("*.exr"))) == 1


def test_run_trains_and_renders_a_job_file_with_both_progress_formats(tiny_shot: TinyShot, tmp_path: Path) -> None:
    job = JobSpec(plate=tiny_shot.plate, mask=tiny_shot.mask, out=str(tmp_path / "out/c.####.exr"),
                  frames="1002-1004", preset="quick", steps=3, work_size=32, carry=False).save(tmp_path / "job.json")
    r = ivi("run", str(job), "--device", "cpu", "--progress-format", "both")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "out").glob("*.exr")) == ["c.1002.exr", "c.1003.exr", "c.1004.exr"]
    lines = r.stdout.splitlines()
    assert lines[-2:] == ["Progress: 100%", "openjd_progress: 100"]
    percents = [int(line.split()[1]) for line in lines if line.startswith("openjd_progress:")]
    assert percents == sorted(percents) and len(percents) > 3
    r = ivi("run", str(job), "--device", "cpu")  # again: resumes a finished training, renders nothing
    assert r.returncode == 0 and "wrote 0 frames, 3 already complete" in r.stderr
