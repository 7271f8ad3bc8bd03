"""The Nuke plugin's plain logic (nuke_plugin/ivi_nuke): requests from knob values, paths, command lines,
progress lines, the job registry, and local runs of the real ivi-render through an argument list."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import make_tiny_shot
from ivi_vfx.io.exr import read_exr
from ivi_vfx.jobs import BAKES, SCHEMA_VERSION, JobSpec

PLUGIN = Path(__file__).resolve().parents[1] / "nuke_plugin"
sys.path.insert(0, str(PLUGIN))

from ivi_nuke import commands, knobs, paths, progress, registry, request  # noqa: E402
from ivi_nuke.runner import LocalRun  # noqa: E402

ODD = "it's a \"shot\" with spaces $HOME"
"""A folder name that a shell string would break: spaces, both quotes and a dollar."""


def knob_values(**changes: object) -> dict[str, object]:
    """The gizmo's defaults as gizmo.knob_values reads them, with some changed."""
    values: dict[str, object] = {
        knobs.RANGE_FROM: "input", knobs.OVERWRITE: False, knobs.CLEAN_FRAMES: "",
        knobs.FIRST_FRAME: 1001, knobs.LAST_FRAME: 1005, knobs.MATTE_MODE: "matte sequence",
        knobs.KEY_FRAMES: "", knobs.MAX_SPEED: 0.0, knobs.ROUNDS: 0, knobs.MATTE_CHANNEL: "alpha",
        knobs.PRESET: "auto", knobs.STEPS: 0, knobs.WORK_SIZE: 0, knobs.OUTPUT: "/shots/sh010/clean.####.exr",
        knobs.RUN_ON: "this machine", knobs.RESUME: True, knobs.EXECUTABLE: "", knobs.GIZMO_VERSION: "4"}
    assert set(values) == set(knobs.READ_KNOBS)
    values.update(changes)
    return values


# --- requests from knob values ----------------------------------------------------------------------

def test_request_from_defaults_leaves_training_to_the_preset() -> None:
    req = request.from_knob_values(knob_values(), "IVI_Inpaint3")
    assert (req.first, req.last, req.frames, req.name, req.farm) == (1001, 1005, "1001-1005", "clean", None)
    assert (req.preset, req.steps, req.work_size, req.mask_channel, req.keyframes) == (None, None, None, "A", ())


def test_request_job_file_is_a_jobspec_the_engine_loads(tmp_path: Path) -> None:
    req = request.from_knob_values(knob_values(**{knobs.PRESET: "quick", knobs.STEPS: 40, knobs.WORK_SIZE: 64,
                                                  knobs.MATTE_CHANNEL: "red", knobs.RUN_ON: "farm: opencue",
                                                  knobs.OUTPUT: str(tmp_path / ODD / "clean.%04d.exr")}))
    where = paths.job_paths(req)
    where.job_file.parent.mkdir(parents=True)
    where.job_file.write_text(json.dumps(req.job_dict(where.plate, where.matte)))
    spec = JobSpec.load(where.job_file)
    assert spec == JobSpec(plate=where.plate, mask=where.matte, out=req.out, frames="1001-1005", mask_channel="R",
                           preset="quick", steps=40, work_size=64, name="clean")
    assert req.farm == "opencue" and where.folder == tmp_path / ODD / ".ivi" / "clean"
    # One job folder: the engine's for this job file is the plugin's, which holds the bakes under nuke/.
    assert spec.folder == where.folder and where.bakes == where.folder / BAKES
    assert Path(where.plate).parent == where.bakes == Path(where.matte).parent


def test_the_plugin_writes_the_jobspec_schema_the_engine_reads() -> None:
    """Derived from the real JobSpec, so a field renamed or a version raised on either side fails here."""
    assert request.JOB_SCHEMA_VERSION == SCHEMA_VERSION
    fields = {f.name for f in dataclasses.fields(JobSpec)}
    every = request.from_knob_values(knob_values(**{
        knobs.MATTE_MODE: "keyframe matte", knobs.KEY_FRAMES: "1001", knobs.MAX_SPEED: 0.03, knobs.ROUNDS: 2,
        knobs.PRESET: "quick", knobs.STEPS: 5, knobs.WORK_SIZE: 32}))
    for req in (every, request.from_knob_values(knob_values())):
        written = req.job_dict("p.####.exr", "m.####.exr")
        assert written.pop("schema_version") == SCHEMA_VERSION
        assert set(written) <= fields, set(written) - fields
    # Each request field the job carries has the JobSpec field's name (one name from the knob to the field).
    carried = {f.name for f in dataclasses.fields(request.InpaintRequest)} & fields
    assert carried >= {"mask_channel", "preset", "steps", "work_size", "max_speed", "rounds", "out"}


@pytest.mark.parametrize("changes, knob, fix", [
    ({knobs.FIRST_FRAME: 1010}, knobs.FIRST_FRAME, "swap them"),
    ({knobs.OUTPUT: ""}, knobs.OUTPUT, "clean.####.exr"),
    ({knobs.OUTPUT: "/shots/clean.exr"}, knobs.OUTPUT, "frame token"),
    ({knobs.OUTPUT: "/shots/clean.####.png"}, knobs.OUTPUT, "EXR sequence"),
    ({knobs.MATTE_MODE: "keyframe matte", knobs.KEY_FRAMES: ""}, knobs.KEY_FRAMES, "e.g. 1001"),
    ({knobs.MATTE_MODE: "keyframe matte", knobs.KEY_FRAMES: "1001,x"}, knobs.KEY_FRAMES, "not a list"),
    ({knobs.MATTE_MODE: "keyframe matte", knobs.KEY_FRAMES: "1001 2000"}, knobs.KEY_FRAMES, "outside"),
    ({knobs.STEPS: -3}, knobs.STEPS, "0 for the preset's"),
    ({knobs.WORK_SIZE: 8}, knobs.WORK_SIZE, "at least 16"),
    ({knobs.MATTE_MODE: "keyframe matte", knobs.KEY_FRAMES: "1001", knobs.MAX_SPEED: 1.5}, knobs.MAX_SPEED,
     "e.g. 0.03"),
    ({knobs.MATTE_MODE: "keyframe matte", knobs.KEY_FRAMES: "1001", knobs.ROUNDS: -1}, knobs.ROUNDS,
     "0 for the preset's"),
    ({knobs.PRESET: "ultra"}, knobs.PRESET, "create the node again"),
    ({knobs.GIZMO_VERSION: "0"}, "IVI_Inpaint1", "create the node again"),
])
def test_bad_knob_values_name_the_knob_and_the_fix(changes: dict, knob: str, fix: str) -> None:
    with pytest.raises(request.RequestError) as err:
        request.from_knob_values(knob_values(**changes))
    assert knob in str(err.value) and fix in str(err.value)


def test_a_keyframe_request_carries_object_speed_and_rounds_into_the_job(tmp_path: Path) -> None:
    keyed = {knobs.MATTE_MODE: "keyframe matte", knobs.KEY_FRAMES: "1001", knobs.MAX_SPEED: 0.03, knobs.ROUNDS: 8,
             knobs.OUTPUT: str(tmp_path / "clean.####.exr")}
    req = request.from_knob_values(knob_values(**keyed))
    where = paths.job_paths(req)
    where.job_file.parent.mkdir(parents=True)
    where.job_file.write_text(json.dumps(req.job_dict(where.plate, where.matte)))
    spec = JobSpec.load(where.job_file)
    assert (spec.key_frames, spec.max_speed, spec.rounds) == ("1001", 0.03, 8)
    assert request.JOB_SCHEMA_VERSION == SCHEMA_VERSION  # the plugin writes the schema the engine reads
    cfg = spec.propagate_config()
    assert (cfg.max_speed, cfg.rounds) == (0.03, 8)
    # 0 leaves them to the preset (no limit, no rounds); a matte sequence has no propagation to set.
    unset = request.from_knob_values(knob_values(**{**keyed, knobs.MAX_SPEED: 0.0, knobs.ROUNDS: 0}))
    assert "max_speed" not in unset.job_dict("p", "m") and "rounds" not in unset.job_dict("p", "m")
    sequence = request.from_knob_values(knob_values(**{knobs.MAX_SPEED: 0.03, knobs.ROUNDS: 8}))
    assert (sequence.max_speed, sequence.rounds) == (None, None)
    assert JobSpec.from_dict(sequence.job_dict("p.####.exr", "m.####.exr")).rounds is None


def test_key_frames_are_sorted_unique_numbers() -> None:
    req = request.from_knob_values(knob_values(**{knobs.MATTE_MODE: "keyframe matte",
                                                  knobs.KEY_FRAMES: " 1004, 1001 1004"}))
    assert req.keyframes == (1001, 1004) and req.uses_keyframes


# --- paths ---------------------------------------------------------------------------------------------

def test_frame_path_reads_every_pattern_style() -> None:
    assert paths.frame_path("/a b/clean.####.exr", 1001) == "/a b/clean.1001.exr"
    assert paths.frame_path("/a/clean.%04d.exr", 7) == "/a/clean.0007.exr"
    assert paths.frame_path("/a/clean.@@@.exr", 7) == "/a/clean.007.exr"
    assert paths.frame_path("/a.1/clean_%d.exr", 12) == "/a.1/clean_12.exr"
    with pytest.raises(ValueError, match="no frame token"):
        paths.frame_path("/a/clean.exr", 1)


def test_result_exists_only_when_every_frame_is_on_disk(tmp_path: Path) -> None:
    pattern = str(tmp_path / ODD / "clean.####.exr")
    (tmp_path / ODD).mkdir()
    for f in (1001, 1002):
        Path(paths.frame_path(pattern, f)).write_bytes(b"x")
    assert paths.missing_frames(pattern, 1001, 1003) == [1003] and not paths.result_exists(pattern, 1001, 1003)
    assert paths.result_exists(pattern, 1001, 1002)


# --- progress lines and status ----------------------------------------------------------------------

@pytest.mark.parametrize("line, value", [
    ("Progress: 45%", 45), ("Progress: 7%\n", 7), ("  Progress:100 %", 100), ("Progress: 12.7%", 12),
    ("openjd_progress: 30", 30), ("Progress: 250%", 100),
    ("10:01:02 INFO step 45 of 100", None), ("Progress: n/a", None), ("eta Progress: 4%", None), ("", None)])
def test_parse_progress(line: str, value: int | None) -> None:
    assert progress.parse_progress(line) == value


def test_status_text_explains_each_state() -> None:
    assert progress.status_text("running", 45) == "running on this machine: 45%"
    failed = progress.status_text("failed", returncode=1,
                                  log=["ivi-render: error: /x/plate.1001.exr: no such file; check the path", "tail"])
    assert failed == "failed (exit 1: bad input): ivi-render: error: /x/plate.1001.exr: no such file; check the path"
    assert "checkpoint" in progress.status_text("failed", returncode=143, log=[])
    assert "farm: deadline" in progress.status_text("submitted", where="farm: deadline")


# --- command lines ----------------------------------------------------------------------------------

def test_command_lines_are_argument_lists_that_keep_odd_paths_whole(tmp_path: Path) -> None:
    out = str(tmp_path / ODD / "clean.####.exr")
    req = request.from_knob_values(knob_values(**{knobs.OUTPUT: out, knobs.RESUME: False}))
    where = paths.job_paths(req)
    assert commands.local_command("/opt/ivi render/ivi-render", req, where) == [
        "/opt/ivi render/ivi-render", "run", str(where.job_file), "--device", "auto", "--progress-format", "plain",
        "--no-resume"]
    over = request.from_knob_values(knob_values(**{knobs.OUTPUT: out, knobs.OVERWRITE: True}))
    assert commands.local_command("ivi-render", over, where)[-1] == "--overwrite"
    assert commands.predict_command("ivi-render", req, where)[1:3] == ["run", str(where.predict_file)]
    farm = request.from_knob_values(knob_values(**{knobs.OUTPUT: out, knobs.RUN_ON: "farm: deadline"}))
    assert commands.submit_command("ivi-render", farm, where) == [
        "ivi-render", "submit", "--farm", "deadline", "--bundle", str(where.bundle), "--job", str(where.job_file)]
    with pytest.raises(ValueError):
        commands.submit_command("ivi-render", req, where)


def test_a_keyframe_job_carries_the_keys_and_settings_in_its_jobspec() -> None:
    from ivi_vfx.jobs import JobSpec
    req = request.from_knob_values(knob_values(**{knobs.MATTE_MODE: "keyframe matte", knobs.KEY_FRAMES: "1005,1001",
                                                  knobs.PRESET: "quick", knobs.STEPS: 2, knobs.MATTE_CHANNEL: "green",
                                                  knobs.RUN_ON: "farm: openjd"}))
    where = paths.job_paths(req)
    spec = JobSpec.from_dict(req.job_dict(where.plate, where.matte), "nuke")  # the engine's own reading
    assert (spec.mask, spec.key_mask, spec.key_frames, spec.mask_channel) == (None, where.matte, "1001,1005", "G")
    assert (spec.preset, spec.steps, spec.frames) == ("quick", 2, "1001-1005")
    assert commands.submit_command("ivi-render", req, where)[-2:] == ["--job", str(where.job_file)]
    local = request.from_knob_values(knob_values(**{knobs.MATTE_MODE: "keyframe matte", knobs.KEY_FRAMES: "1001"}))
    assert commands.local_command("ivi-render", local, where)[:3] == ["ivi-render", "run", str(where.job_file)]


def test_find_ivi_render_order_and_messages(tmp_path: Path) -> None:
    exe = tmp_path / ODD / "ivi-render"
    exe.parent.mkdir()
    exe.write_text("")
    assert commands.find_ivi_render(str(exe), {"IVI_RENDER": "/nope"}, lambda n: None) == str(exe)
    assert commands.find_ivi_render("", {"IVI_RENDER": str(exe)}, lambda n: "/usr/bin/ivi-render") == str(exe)
    assert commands.find_ivi_render("", {}, lambda n: "/usr/bin/ivi-render") == "/usr/bin/ivi-render"
    with pytest.raises(commands.CommandError, match=r"/nope: no such file \(\$IVI_RENDER\)"):
        commands.find_ivi_render("", {"IVI_RENDER": "/nope"}, lambda n: None)
    with pytest.raises(commands.CommandError, match="executable knob or the IVI_RENDER"):
        commands.find_ivi_render("", {}, lambda n: None)


def test_subprocess_env_drops_nukes_python() -> None:
    env = commands.subprocess_env({"PYTHONPATH": "/nuke/lib", "PYTHONHOME": "/nuke", "PATH": "/bin",
                                   "IVI_PROGRESS_FORMAT": "openjd"})
    assert env == {"PATH": "/bin", "IVI_PROGRESS_FORMAT": "plain", "PYTHONUNBUFFERED": "1"}


# --- registry ---------------------------------------------------------------------------------------

def test_registry_tracks_a_job_through_its_states() -> None:
    reg, seen, stops = registry.JobRegistry(), [], []
    reg.subscribe(lambda job: seen.append(None if job is None else (job.id, job.state, job.progress)))
    job = reg.add("clean", "IVI_Inpaint1", "this machine", "/o/clean.####.exr", 1001, 1005)
    assert not reg.request_cancel(job.id)  # still baking: nothing to stop yet
    reg.start(job, ["ivi-render", "run"], cancel=lambda: stops.append(job.id))
    reg.line(job, "Progress: 40%\n", 40)
    reg.line(job, "a log line", None)
    assert job.status == "running on this machine: 40%" and list(job.log) == ["Progress: 40%", "a log line"]
    assert reg.request_cancel(job.id) and stops == [job.id]
    reg.finish(job, 143, cancelled=True)
    assert (job.state, job.cancel, job.has_result) == ("cancelled", None, False)
    farm = reg.add("clean", "IVI_Inpaint1", "farm: openjd", "/o/clean.####.exr", 1001, 1005)
    reg.finish(farm, 0)
    assert farm.state == "submitted" and not farm.has_result
    assert seen[:4] == [(1, "baking", 0), (1, "running", 0), (1, "running", 40), (1, "running", 40)]
    reg.clear_finished()
    assert len(reg) == 0 and seen[-1] is None


def test_log_tail_is_bounded() -> None:
    reg = registry.JobRegistry()
    job = reg.add("c", "n", "this machine", "o.####.exr", 1, 1)
    for i in range(registry.LOG_TAIL + 5):
        reg.line(job, f"line {i}")
    assert len(job.log) == registry.LOG_TAIL and job.log[0] == "line 5"


# --- local runs -------------------------------------------------------------------------------------

def script(folder: Path, body: str) -> list[str]:
    """A Python program in a folder with an awkward name, run as an argument list."""
    path = folder / ODD / "fake ivi-render.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(body))
    return [sys.executable, str(path)]


def test_local_run_reports_lines_progress_and_exit_code(tmp_path: Path) -> None:
    argv = script(tmp_path, """
        import sys
        for p in (0, 50, 100):
            print(f"Progress: {p}%", flush=True)
        print("ivi-render: error: bad plate", file=sys.stderr)
        print(sys.argv[1])
        sys.exit(1)
        """) + [f"{ODD}/clean.####.exr"]
    lines, exits = [], []
    run = LocalRun(argv, on_line=lambda t, p: lines.append((t, p)), on_exit=lambda rc, c: exits.append((rc, c)))
    assert run.start().wait(30) == 1
    assert lines == [("Progress: 0%", 0), ("Progress: 50%", 50), ("Progress: 100%", 100),
                     ("ivi-render: error: bad plate", None), (f"{ODD}/clean.####.exr", None)]
    assert exits == [(1, False)]


def test_cancel_sends_sigterm_and_reports_cancelled(tmp_path: Path) -> None:
    argv = script(tmp_path, """
        import signal, sys, time
        signal.signal(signal.SIGTERM, lambda *a: (print("checkpoint written", flush=True), sys.exit(143)))
        print("Progress: 1%", flush=True)
        time.sleep(60)
        """)
    started, exits = [], []
    run = LocalRun(argv, on_line=lambda t, p: started.append(t), on_exit=lambda rc, c: exits.append((rc, c)))
    run.start()
    while not started:  # the handler is installed once the first line is out
        run.thread.join(0.05)
    run.cancel()
    assert run.wait(30) == 143 and exits == [(143, True)] and started[-1] == "checkpoint written"


@pytest.mark.slow
def test_real_ivi_render_runs_the_job_file_from_an_odd_folder(tmp_path: Path) -> None:
    """The whole local path without Nuke: knob values -> job.json -> `ivi-render run` -> result frames."""
    shot = make_tiny_shot(tmp_path / "shot", count=3)
    req = request.from_knob_values(knob_values(**{
        knobs.LAST_FRAME: 1003, knobs.PRESET: "quick", knobs.STEPS: 2, knobs.WORK_SIZE: 32,
        knobs.OUTPUT: str(tmp_path / ODD / "clean.####.exr")}))
    where = paths.job_paths(req)
    where.job_file.parent.mkdir(parents=True)
    # The "bake": the tiny shot stands in for what Nuke's Writes would write.
    where.job_file.write_text(json.dumps(req.job_dict(shot.plate, shot.mask)))
    exe = str(Path(sys.executable).with_name("ivi-render"))
    argv = commands.local_command(exe, req, where)
    argv[argv.index("auto")] = "cpu"
    env = {**commands.subprocess_env({**os.environ, "PYTHONPATH": "/nonexistent/nuke"}), "OMP_NUM_THREADS": "1"}
    reg = registry.JobRegistry()
    job = reg.add(req.name, "IVI_Inpaint1", "this machine", req.out, req.first, req.last)
    run = LocalRun(argv, on_line=lambda t, p: reg.line(job, t, p), on_exit=lambda rc, c: reg.finish(job, rc, c),
                   env=env)
    reg.start(job, argv, run.start().cancel)
    assert run.wait(300) == 0, "\n".join(job.log)
    assert job.state == "done" and job.progress == 100
    assert any(progress.parse_progress(line) == 100 for line in job.log)
    assert paths.result_exists(req.out, 1001, 1003)
    assert "A" in read_exr(paths.frame_path(req.out, 1002)).spec.channelnames


def test_nuke_side_never_imports_torch_or_the_engine() -> None:
    code = ("import sys; sys.path.insert(0, sys.argv[1]); "
            "import ivi_nuke.commands, ivi_nuke.paths, ivi_nuke.progress, ivi_nuke.registry, ivi_nuke.request, "
            "ivi_nuke.runner, ivi_nuke.knobs; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'ivi_vfx', 'numpy', 'nuke')); "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code, str(PLUGIN)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_real_ivi_render_runs_a_keyframe_job_file(tmp_path: Path) -> None:
    shot = make_tiny_shot(tmp_path / "shot", count=3)
    req = request.from_knob_values(knob_values(**{
        knobs.LAST_FRAME: 1003, knobs.MATTE_MODE: "keyframe matte", knobs.KEY_FRAMES: "1001", knobs.PRESET: "quick",
        knobs.STEPS: 2, knobs.WORK_SIZE: 32, knobs.OUTPUT: str(tmp_path / ODD / "clean.####.exr")}))
    where = paths.job_paths(req)
    where.job_file.parent.mkdir(parents=True)
    where.job_file.write_text(json.dumps(req.job_dict(shot.plate, shot.mask)))  # the tiny shot's matte as the roto
    argv = commands.local_command(str(Path(sys.executable).with_name("ivi-render")), req, where)
    argv[argv.index("auto")] = "cpu"
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300,
                          env={**commands.subprocess_env(), "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    assert paths.result_exists(req.out, 1001, 1003)


# --- issue 20: bake or path, versions, views, predict, ETA, the job store ---------------------------------

from ivi_nuke import sources  # noqa: E402
from ivi_nuke.runner import Steps, call_now  # noqa: E402


def read_info(**changes: object) -> sources.InputInfo:
    return dataclasses.replace(sources.InputInfo("Read", file="/p/plate.####.exr", colorspace="default (linear)",
                                                 first=1001, last=1100), **changes)


@pytest.mark.parametrize("info, reason", [
    (None, "not connected"), (sources.InputInfo("Grade"), "a Grade, not a Read"),
    (read_info(disabled=True), "disabled"), (read_info(file="/p/plate.####.dpx"), "not an EXR"),
    (read_info(file="/p/plate.exr"), "no frame token"), (read_info(colorspace="sRGB"), "converts its colour"),
    (read_info(frame_mode="frame+1"), "shifts its frames"),
    (read_info(last=1050), "not all of 1001-1100"), (read_info(file="[value root.plate]"), "not an EXR"),
    (read_info(file="/p/[value x].####.exr"), "expression"),
])
def test_anything_but_a_plain_exr_read_is_baked_and_says_why(info: sources.InputInfo | None, reason: str) -> None:
    source = sources.choose(info, "/job/nuke/plate.####.exr", 1001, 1100)
    assert source.baked and source.pattern == "/job/nuke/plate.####.exr" and reason in source.reason


def test_a_plain_exr_read_is_read_by_path_per_view() -> None:
    for info in (read_info(), read_info(raw=True, colorspace="sRGB"), read_info(colorspace="ACEScg",
                                                                                working_space="ACEScg")):
        assert sources.choose(info, "bake", 1001, 1100) == sources.Source(
            "/p/plate.####.exr", False, "read by path: /p/plate.####.exr")
    stereo = read_info(file="/p/%V/plate_%v.####.exr")
    assert sources.choose(stereo, "bake", 1001, 1100, "left").pattern == "/p/left/plate_l.####.exr"
    assert sources.choose(stereo, "bake", 1001, 1100).baked  # a view token in a mono script


@pytest.mark.parametrize("space, linear", [("linear", True), ("scene_linear", True), ("ACES - ACEScg", True),
                                           ("Linear Rec.709 (sRGB)", True), ("", True), ("sRGB", False),
                                           ("ACES - ACEScct", False), ("Cineon", False), ("rec709", False)])
def test_scene_linear_working_spaces(space: str, linear: bool) -> None:
    assert sources.scene_linear(space) is linear


def test_versions_up_a_finished_result_and_never_replaces_one_silently(tmp_path: Path) -> None:
    out = str(tmp_path / "v003" / "sh010_clean_v003.####.exr")
    assert paths.version_of(out) == 3 and paths.with_version(out, 12).endswith("v012/sh010_clean_v012.####.exr")
    on_disk: set[str] = set()

    def plan(pattern: str, **flags: bool) -> paths.OutputPlan:
        return paths.plan_output(pattern, 1001, 1003, exists=on_disk.__contains__,
                                 **{"overwrite": False, "resume": True, **flags})
    assert plan(out) == paths.OutputPlan(out, False)
    on_disk.add(paths.frame_path(out, 1001))  # a render stopped after one frame: finish it
    assert plan(out).out == out and "1 of 3 frames already written" in plan(out).note
    assert plan(out, resume=False).out.endswith("v004.####.exr")  # retrained afresh: a new version
    on_disk.update(paths.frame_path(out, f) for f in (1002, 1003))
    on_disk.add(paths.frame_path(paths.with_version(out, 4), 1002))  # v004 taken too
    assert plan(out) == paths.OutputPlan(paths.with_version(out, 5), False, "v003 kept; writing v005")
    assert plan(out, overwrite=True).overwrite
    bare = str(tmp_path / "clean.####.exr")
    on_disk.add(paths.frame_path(bare, 1001))
    with pytest.raises(request.RequestError, match="put a version in it .* turn on 'overwrite'"):
        plan(bare, resume=False)


def test_one_request_per_view_each_with_its_own_job_folder() -> None:
    req = request.from_knob_values(knob_values(**{knobs.OUTPUT: "/s/clean_%V.####.exr"}))
    left, right = request.for_views(req, ["left", "right"])
    assert (left.out, left.view, left.name, right.name) == ("/s/clean_left.####.exr", "left", "clean_left",
                                                           "clean_right")
    assert paths.job_paths(left).folder != paths.job_paths(right).folder
    assert request.for_views(req, ["main"]) == [req]
    with pytest.raises(request.RequestError, match="put %V in the output"):
        request.for_views(request.from_knob_values(knob_values()), ["left", "right"])


def test_predict_and_the_fill_after_it_are_jobspecs_of_one_folder(tmp_path: Path) -> None:
    req = request.from_knob_values(knob_values(**{knobs.MATTE_MODE: "keyframe matte", knobs.KEY_FRAMES: "1001",
                                                  knobs.PRESET: "quick", knobs.STEPS: 3, knobs.ROUNDS: 2,
                                                  knobs.OUTPUT: str(tmp_path / "clean.####.exr")}))
    where = paths.job_paths(req)
    predict = JobSpec.from_dict(req.predict_dict(where.plate, where.matte, str(where.folder), where.mattes))
    fill = JobSpec.from_dict(req.job_dict(where.plate, where.matte))
    assert (predict.writes, predict.folder, predict.out, predict.rounds) == ("mattes", where.folder, where.mattes, 2)
    assert predict.propagate_config() == fill.propagate_config()  # the Render's propagation resumes its checkpoint
    assert fill.predicted_mattes == where.mattes == predict.predicted_mattes and fill.folder == where.folder
    reuse = JobSpec.from_dict(req.job_dict(where.plate, where.mattes, predicted=True))
    assert (reuse.mask, reuse.key_mask, reuse.mask_channel, reuse.steps) == (where.mattes, None, "A", 3)
    with pytest.raises(request.RequestError, match="needs a keyframe matte"):
        request.from_knob_values(knob_values()).predict_dict("p", "m", "f", "o")


def test_the_clean_reference_goes_into_the_job() -> None:
    req = request.from_knob_values(knob_values(**{knobs.CLEAN_FRAMES: "1001, 1004-1005"}))
    spec = JobSpec.from_dict(req.job_dict("p.####.exr", "m.####.exr", clean="c.####.exr"))
    assert (spec.clean, spec.clean_frames) == ("c.####.exr", "1001, 1004-1005")
    assert request.parse_frame_list("1001, 1004-1005 1-9x4") == [1, 5, 9, 1001, 1004, 1005]
    assert "clean" not in req.job_dict("p", "m")
    with pytest.raises(request.RequestError, match="clean_frames: 'x' is not a frame list"):
        request.from_knob_values(knob_values(**{knobs.CLEAN_FRAMES: "x"}))


def test_eta_and_the_guard() -> None:
    reg, now = registry.JobRegistry(), [1000.0]
    job = reg.add("clean", "IVI_Inpaint1", "this machine", "/o/clean.####.exr", 1001, 1005)
    job.clock = lambda: now[0]
    assert reg.active_for("IVI_Inpaint1") is job and reg.active_for("IVI_Inpaint2") is None
    reg.start(job, ["ivi-render"], cancel=None)
    reg.line(job, "Progress: 25%", 25)
    now[0] += 300  # five minutes for a quarter
    assert job.eta_seconds == 900 and job.status == "running on this machine: 25%, about 15 min left"
    reg.finish(job, 0)
    assert reg.active_for("IVI_Inpaint1") is None and job.eta_seconds is None
    assert registry.format_duration(45) == "45 s" and registry.format_duration(3900) == "1 h 05 min"


def test_the_job_store_keeps_a_scripts_jobs_and_disk_progress_follows_the_folder(tmp_path: Path) -> None:
    assert registry.store_path("Root", tmp_path) is None and registry.store_path("", tmp_path) is None
    path = registry.store_path("/shots/sh010/comp_v003.nk", tmp_path)
    assert path is not None and path.parent == tmp_path and path.name.startswith("comp_v003-")
    reg = registry.JobRegistry()
    out = str(tmp_path / "o" / "clean.####.exr")
    job = reg.add("clean", "IVI_Inpaint1", "farm: openjd", out, 1, 4, folder=str(tmp_path / "o" / ".ivi" / "clean"))
    reg.finish(job, 0)
    store = registry.JobStore(path)
    store.save(reg)
    again = registry.JobRegistry()
    (back,) = store.attach(again)
    assert (back.state, back.out, back.where, back.folder) == ("submitted", out, "farm: openjd", job.folder)
    assert store.attach(again) == []  # listed already
    assert registry.disk_progress(back) == ("waiting (nothing in the job folder yet)", None)
    report = Path(back.folder) / "report"
    report.mkdir(parents=True)
    (report / "metrics.csv").write_text("step,seconds,loss,estimate_db,fraction\n1,1.0,0.5,,0.25\n2,2.0,0.4,20.1,0.5\n")
    assert registry.disk_progress(back) == ("training 50%", 45)
    Path(paths.frame_path(out, 1)).write_text("x")
    assert registry.disk_progress(back) == ("rendering: 1 of 4 frames written", 92)
    path.write_text("not json")
    assert registry.JobStore(path).load() == []


def test_steps_run_one_per_post_and_stop_on_cancel_or_error() -> None:
    queue: list = []
    done, ends = [], []

    def post(fn, args=()):
        queue.append((fn, args))

    def pump() -> None:
        while queue:
            fn, args = queue.pop(0)
            fn(*args)

    Steps([lambda k=k: done.append(k) for k in range(3)], post, on_end=lambda e, c: ends.append((e, c))).start()
    assert done == [] and len(queue) == 1  # nothing runs inside start()
    pump()
    assert done == [0, 1, 2] and ends == [(None, False)]
    stop = [False]

    def step() -> None:
        done.append("x")
        stop[0] = True
    Steps([step, step], post, on_end=lambda e, c: ends.append((e, c)), cancelled=lambda: stop[0]).start()
    pump()
    assert done.count("x") == 1 and ends[-1] == (None, True)

    def broken() -> None:
        raise RuntimeError("Write failed")
    Steps([broken, step], call_now, on_end=lambda e, c: ends.append((str(e), c))).start()
    assert ends[-1] == ("Write failed", False)


def test_local_run_ticks_while_the_process_is_silent(tmp_path: Path) -> None:
    argv = script(tmp_path, "import time; time.sleep(1.2)")
    ticks: list[float] = []
    run = LocalRun(argv, on_line=lambda t, p: None, on_exit=lambda rc, c: None, on_tick=lambda: ticks.append(1),
                   tick_every=0.2)
    assert run.start().wait(30) == 0 and run.pid is not None
    assert len(ticks) >= 3
