"""The layer that calls `nuke` (ivi_nuke.gizmo, startup, init.py, menu.py) against the fake in tests/fake_nuke,
with the real gizmo file's knobs, real subprocesses and, once, the real ivi-render: bake or no bake, proxy,
views, the guard, versions, Predict mattes, cancel, the job file across a restart."""
from __future__ import annotations

import json
import os
import runpy
import shutil
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import make_tiny_shot
from ivi_vfx.jobs import JobSpec

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
sys.path[:0] = [str(TESTS / "fake_nuke"), str(ROOT / "nuke_plugin")]

import nuke  # noqa: E402  (the fake)

import ivi_nuke  # noqa: E402
from ivi_nuke import commands, gizmo, knobs, paths, registry, request, startup  # noqa: E402

ODD = "it's a \"shot\" with spaces"


@pytest.fixture
def reg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[registry.JobRegistry]:
    nuke.reset()
    nuke.pluginAddPath(str(ROOT / "gizmos"))
    fresh = registry.JobRegistry()
    monkeypatch.setattr(gizmo, "REGISTRY", fresh)
    monkeypatch.setattr(gizmo, "_PANEL", None)
    monkeypatch.setattr(gizmo, "_STORE", gizmo.StoreState())
    monkeypatch.setattr(gizmo, "_WARNED", set())
    monkeypatch.setenv(gizmo.JOBS_DIR_ENV, str(tmp_path / "jobs"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    yield fresh
    assert nuke.off_main_thread == [], "Nuke was called off the main thread"


def make_node(tmp_path: Path, plate: nuke.Node | None = None, matte: nuke.Node | None = None,
              **values: object) -> nuke.Node:
    """A gizmo over frames 1001-1003 (a custom range unless `plate` is given), its inputs Grades unless given."""
    node = nuke.gizmo_node(knobs.GIZMO_CLASS, "IVI_Inpaint1", **{
        knobs.RANGE_FROM: "input" if plate is not None else "custom",
        knobs.FIRST_FRAME: 1001, knobs.LAST_FRAME: 1003, knobs.OUTPUT: str(tmp_path / ODD / "clean.####.exr"),
        **values})
    node.setInput(0, plate or nuke.nodes.Grade())
    node.setInput(1, matte or nuke.nodes.Grade())
    return node


def exr_read(pattern: str, first: int = 1001, last: int = 1003, **values: object) -> nuke.Node:
    return nuke.nodes.Read(file=pattern, first=first, last=last, raw=False, colorspace="default (linear)", **values)


FAKE = """
    import json, os, re, sys, time
    args = sys.argv[1:]
    json.dump(args, open({record!r}, "a")); open({record!r}, "a").write("\\n")
    job = json.load(open(args[1]))
    first, last = (int(x) for x in job["frames"].split("-"))
    time.sleep({delay})
    for f in range(first, last + 1):
        path = re.sub("#+", lambda m: f"{{f:0{{len(m.group())}}d}}", job["out"])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "w").write("frame")
        print(f"Progress: {{int(100 * (f - first + 1) / (last - first + 1))}}%", flush=True)
    """


def fake_ivi_render(tmp_path: Path, body: str | None = None, delay: float = 0.0) -> str:
    """An executable standing in for ivi-render (at a path with spaces and quotes); by default it writes every
    output frame of its job file (empty files) and records its argument lists in tmp_path/argv.jsonl."""
    path = tmp_path / ODD / "bin" / "ivi-render"
    path.parent.mkdir(parents=True, exist_ok=True)
    body = body if body is not None else FAKE.format(record=str(tmp_path / "argv.jsonl"), delay=delay)
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def argvs(tmp_path: Path) -> list[list[str]]:
    return [json.loads(line) for line in (tmp_path / "argv.jsonl").read_text().splitlines()]


def pump_until(done: Callable[[], bool], timeout: float = 120) -> None:
    """Nuke's event loop: run the queued main-thread calls until `done`."""
    end = time.monotonic() + timeout
    while not done():
        if not nuke.pump():
            time.sleep(0.02)
        assert time.monotonic() < end, "the job did not finish"


def calls(kind: str) -> list[tuple]:
    return [c for c in nuke.log if c[0] == kind]


def where_of(node: nuke.Node, view: str | None = None) -> paths.JobPaths:
    req = request.from_knob_values(gizmo.knob_values(node), "n")
    return paths.job_paths(req.for_view(view) if view else req)


def bake_tiny_shot(folder: Path) -> None:
    """Make nuke.execute of the internal Writes write a tiny shot's plate and matte, as Nuke's Writes would."""
    shot = make_tiny_shot(folder, count=3)

    def bake(write: nuke.Node, first: int, last: int) -> None:
        source = shot.plate if write.name() == knobs.WRITE_PLATE else shot.mask
        for f in range(first, last + 1):
            shutil.copy(paths.frame_path(source, f), paths.frame_path(write["file"].value(), f))

    nuke.on_execute = bake


def run_to_end(node: nuke.Node, predict: bool = False) -> list[registry.Job]:
    jobs = (gizmo.on_predict if predict else gizmo.on_render)(node)
    assert jobs, calls("message")
    pump_until(lambda: not any(j.active for j in jobs))
    return jobs


# --- the whole path, with the real ivi-render -----------------------------------------------------------

def test_render_bakes_a_grade_frame_by_frame_runs_the_real_ivi_render_and_cleans_up(reg, tmp_path: Path) -> None:
    bake_tiny_shot(tmp_path / "shot")
    node = make_node(tmp_path, **{knobs.PRESET: "quick", knobs.STEPS: 2, knobs.WORK_SIZE: 32,
                                  knobs.EXECUTABLE: str(Path(sys.executable).with_name("ivi-render"))})
    jobs = gizmo.on_render(node)
    assert jobs is not None and jobs[0].state == "baking" and calls("execute") == []  # nothing baked yet
    (job,) = jobs
    pump_until(lambda: not job.active)
    assert job.state == "done", "\n".join(job.log)
    where = where_of(node)
    # One frame per main-thread call, the Writes enabled only while they ran, never in proxy mode.
    assert [c[1:] for c in calls("execute")] == [
        *[(knobs.WRITE_PLATE, where.plate, False, f, f, None, False) for f in (1001, 1002, 1003)],
        *[(knobs.WRITE_MATTE, where.matte, False, f, f, None, False) for f in (1001, 1002, 1003)]]
    assert node.node(knobs.WRITE_PLATE)["disable"].value() is True
    assert JobSpec.load(where.job_file).plate == where.plate
    assert job.argv[1:3] == ["run", str(where.job_file)] and "--overwrite" not in job.argv
    assert nuke.tasks[0].title == "IVI clean" and nuke.tasks[0].progress == 100
    assert node[knobs.SHOW_RESULT].value() is True and node[knobs.STATUS].value() == "done: clean plate written"
    assert ("execute_knob", "ResultRead", "reload") in nuke.log
    assert paths.result_exists(node[knobs.OUTPUT].value(), 1001, 1003)
    assert not where.bakes.exists() and "removed the baked inputs" in job.log[-1]  # a job that ended well


# --- bake only what needs it --------------------------------------------------------------------------

def test_plain_exr_reads_are_passed_by_path_and_nothing_is_baked(reg, tmp_path: Path) -> None:
    exe = fake_ivi_render(tmp_path)
    plate, matte = exr_read("/plates/sh010/plate.%04d.exr", 1, 20), exr_read("/plates/sh010/roto.####.exr", 1, 20)
    dot = nuke.nodes.Dot()
    dot.setInput(0, plate)
    node = make_node(tmp_path, plate=dot, matte=matte, **{knobs.EXECUTABLE: exe})
    (job,) = run_to_end(node)
    assert calls("execute") == [] and job.state == "done"
    spec = JobSpec.load(where_of(node).job_file)
    assert (spec.plate, spec.mask) == ("/plates/sh010/plate.%04d.exr", "/plates/sh010/roto.####.exr")
    # range from: input: the plate Read's range, set on the knobs the result Read follows.
    assert (node[knobs.FIRST_FRAME].value(), node[knobs.LAST_FRAME].value()) == (1, 20) and spec.frames == "1-20"
    assert "plate: read by path: /plates/sh010/plate.%04d.exr" in job.log


@pytest.mark.parametrize("values, why", [
    ({"colorspace": "sRGB"}, "converts its colour (sRGB)"),
    ({"frame": "frame+10"}, "shifts its frames"),
    ({"file": "/plates/plate.####.dpx"}, "is not an EXR"),
    ({"first": 1002}, "not all of 1001-1003"),
])
def test_a_read_that_changes_its_pixels_or_frames_is_baked(reg, tmp_path: Path, values: dict, why: str) -> None:
    values = {"file": "/plates/plate.####.exr", **values}
    plate = nuke.nodes.Read(**{"first": 1001, "last": 1003, "colorspace": "default", **values})
    node = make_node(tmp_path, plate=plate, **{knobs.RANGE_FROM: "custom",
                                               knobs.EXECUTABLE: fake_ivi_render(tmp_path)})
    (job,) = run_to_end(node)
    assert [c[1] for c in calls("execute")].count(knobs.WRITE_PLATE) == 3
    assert any(line.startswith("plate: baked: ") and why in line for line in job.log), list(job.log)


def test_proxy_mode_bakes_at_full_resolution_and_is_restored(reg, tmp_path: Path) -> None:
    nuke.root()[knobs.ROOT_PROXY].setValue(True)
    node = make_node(tmp_path, **{knobs.EXECUTABLE: fake_ivi_render(tmp_path)})
    run_to_end(node)
    assert calls("execute") and all(c[7] is False for c in calls("execute"))  # proxy off while each frame bakes
    assert nuke.root()[knobs.ROOT_PROXY].value() is True


def test_every_view_of_a_stereo_script_is_its_own_job(reg, tmp_path: Path) -> None:
    nuke.set_views(["left", "right"])
    exe = fake_ivi_render(tmp_path)
    node = make_node(tmp_path, **{knobs.EXECUTABLE: exe, knobs.OUTPUT: str(tmp_path / "clean_%V.####.exr")})
    jobs = gizmo.on_render(node)
    assert [j.state for j in jobs] == ["baking", "queued"]  # one after another, never two at once
    pump_until(lambda: not any(j.active for j in jobs))
    assert [j.name for j in jobs] == ["clean_left", "clean_right"] and {j.state for j in jobs} == {"done"}
    for view in ("left", "right"):
        spec = JobSpec.load(where_of(node, view).job_file)
        assert spec.out == str(tmp_path / f"clean_{view}.####.exr") and f"/.ivi/clean_{view}/nuke/" in spec.plate
        assert {c[6][0] for c in calls("execute") if c[2] == where_of(node, view).plate} == {view}
    # A Read of a %V sequence is passed by path, one view per job.
    mono = make_node(tmp_path, plate=exr_read("/p/plate_%V.####.exr"), **{knobs.EXECUTABLE: exe,
                                                                         knobs.OUTPUT: str(tmp_path / "o%V.#.exr")})
    mono.set_name("IVI_Inpaint2")
    run_to_end(mono)
    assert JobSpec.load(where_of(mono, "right").job_file).plate == "/p/plate_right.####.exr"


def test_a_stereo_script_needs_a_view_token_in_the_output(reg, tmp_path: Path) -> None:
    nuke.set_views(["left", "right"])
    node = make_node(tmp_path, **{knobs.EXECUTABLE: fake_ivi_render(tmp_path)})
    assert gizmo.on_render(node) is None
    assert "put %V in the output" in calls("message")[0][1] and len(reg) == 0


# --- the guard and versions --------------------------------------------------------------------------

def test_a_second_press_while_the_job_runs_is_refused(reg, tmp_path: Path) -> None:
    node = make_node(tmp_path, **{knobs.EXECUTABLE: fake_ivi_render(tmp_path, delay=1.0)})
    (job,) = gizmo.on_render(node)
    assert gizmo.on_render(node) is None and gizmo.on_predict(node) is None
    assert "has a job baking" in calls("message")[0][1] and len(reg) == 1
    pump_until(lambda: job.state == "running")
    assert gizmo.on_render(node) is None and "has a job running" in calls("message")[-1][1]
    pump_until(lambda: not job.active)
    assert job.state == "done"


def test_a_finished_result_is_kept_and_the_output_versions_up(reg, tmp_path: Path) -> None:
    exe = fake_ivi_render(tmp_path)
    out = str(tmp_path / "v001" / "clean_v001.####.exr")
    node = make_node(tmp_path, **{knobs.EXECUTABLE: exe, knobs.OUTPUT: out})
    run_to_end(node)
    (job,) = run_to_end(node)  # the same press again: v001 is kept
    assert node[knobs.OUTPUT].value() == str(tmp_path / "v002" / "clean_v002.####.exr") == job.out
    assert paths.result_exists(out, 1001, 1003) and paths.result_exists(job.out, 1001, 1003)
    assert "v001 kept; writing v002" in job.status and "--overwrite" not in argvs(tmp_path)[-1]
    node[knobs.OVERWRITE].setValue(True)
    (job,) = run_to_end(node)
    assert job.out.endswith("clean_v002.####.exr") and "--overwrite" in argvs(tmp_path)[-1]


def test_a_finished_result_without_a_version_is_never_replaced_silently(reg, tmp_path: Path) -> None:
    node = make_node(tmp_path, **{knobs.EXECUTABLE: fake_ivi_render(tmp_path)})
    run_to_end(node)
    assert gizmo.on_render(node) is None
    assert "put a version in it" in calls("message")[0][1] and "'overwrite'" in calls("message")[0][1]


# --- Predict mattes -------------------------------------------------------------------------------------

def test_predict_mattes_loads_them_and_render_fills_those_mattes(reg, tmp_path: Path) -> None:
    exe = fake_ivi_render(tmp_path)
    node = make_node(tmp_path, **{knobs.EXECUTABLE: exe, knobs.MATTE_MODE: "keyframe matte",
                                  knobs.KEY_FRAMES: "1001", knobs.ROUNDS: 2})
    (job,) = run_to_end(node, predict=True)
    where = where_of(node)
    assert job.state == "done" and job.status == "done: predicted mattes written (Render fills them)", list(job.log)
    predict = JobSpec.load(where.predict_file)
    # The keyframe job's first stage in the Render's own job folder, writing the folder's mattes.
    assert (predict.writes, predict.out, predict.folder, predict.rounds) == ("mattes", where.mattes, where.folder, 2)
    assert argvs(tmp_path)[-1][:2] == ["run", str(where.predict_file)] and "--overwrite" in argvs(tmp_path)[-1]
    read = nuke.toNode("IVI_Inpaint1_mattes")
    assert read["file"].value() == where.mattes and read["on_error"].value() == "error" and read["raw"].value()
    baked_before = len(calls("execute"))
    (fill,) = run_to_end(node)
    spec = JobSpec.load(where.job_file)
    assert (spec.mask, spec.key_mask, spec.mask_channel) == (where.mattes, None, "A")  # no second propagation
    assert [c[1] for c in calls("execute")[baked_before:]] == [knobs.WRITE_PLATE] * 3  # the roto is not baked again
    assert fill.state == "done"
    # A changed key frame makes the predicted mattes stale: Render predicts again from the roto.
    node[knobs.KEY_FRAMES].setValue("1002")
    node[knobs.OVERWRITE].setValue(True)
    run_to_end(node)
    assert JobSpec.load(where.job_file).key_frames == "1002"


def test_predict_needs_a_keyframe_matte(reg, tmp_path: Path) -> None:
    node = make_node(tmp_path, **{knobs.EXECUTABLE: fake_ivi_render(tmp_path)})
    assert gizmo.on_predict(node) is None and "needs a keyframe matte" in calls("message")[0][1]


# --- cancel ----------------------------------------------------------------------------------------------

def test_progress_task_cancel_is_polled_while_ivi_render_is_silent(reg, tmp_path: Path) -> None:
    exe = fake_ivi_render(tmp_path, """
        import signal, sys, time
        signal.signal(signal.SIGTERM, lambda *a: (print("checkpoint written", flush=True), sys.exit(143)))
        print("Progress: 2%", flush=True)
        time.sleep(60)  # training: no line for a minute
        """)
    node = make_node(tmp_path, **{knobs.EXECUTABLE: exe})
    (job,) = gizmo.on_render(node)
    pump_until(lambda: job.progress >= 2 and job.state == "running")
    nuke.tasks[0].cancelled = True  # the user presses cancel on Nuke's progress bar; no more lines come
    pump_until(lambda: not job.active, timeout=10)
    assert (job.state, job.returncode) == ("cancelled", 143) and job.log[-1] == "checkpoint written"
    assert node[knobs.STATUS].value().startswith("cancelled") and node[knobs.SHOW_RESULT].value() is False


def test_cancel_while_baking_stops_between_frames(reg, tmp_path: Path) -> None:
    node = make_node(tmp_path, **{knobs.EXECUTABLE: fake_ivi_render(tmp_path)})
    (job,) = gizmo.on_render(node)
    nuke.pump()  # one frame baked
    assert reg.request_cancel(job.id)  # the panel's Cancel
    pump_until(lambda: not job.active)
    assert job.state == "cancelled" and len(calls("execute")) == 1 and not (tmp_path / "argv.jsonl").exists()


# --- knobs, messages, results ------------------------------------------------------------------------

def test_keyframe_knobs_show_only_for_a_keyframe_matte(reg, tmp_path: Path) -> None:
    node = make_node(tmp_path)
    nuke.set_this_node(node)
    nuke.set_this_knob(node[knobs.MATTE_MODE])
    gizmo.on_knob_changed()
    assert [node[k].visible for k in knobs.KEYFRAME_ONLY] == [False] * len(knobs.KEYFRAME_ONLY)
    node[knobs.MATTE_MODE].setValue("keyframe matte")
    gizmo.on_knob_changed()
    assert all(node[k].visible for k in knobs.KEYFRAME_ONLY)
    assert node[knobs.FIRST_FRAME].enabled  # a custom range can be typed; from the input it cannot
    node[knobs.RANGE_FROM].setValue("input")
    nuke.set_this_knob(node[knobs.RANGE_FROM])
    gizmo.on_knob_changed()
    assert not node[knobs.FIRST_FRAME].enabled


def test_a_working_space_that_is_not_scene_linear_is_warned_once(reg, tmp_path: Path) -> None:
    nuke.root()[knobs.ROOT_WORKING_SPACE].setValue("sRGB")
    node = make_node(tmp_path, **{knobs.EXECUTABLE: fake_ivi_render(tmp_path)})
    (job,) = run_to_end(node)
    assert len(calls("message")) == 1 and "not scene-linear" in calls("message")[0][1]
    assert job.log[0].startswith("warning: the working space is 'sRGB'")
    node[knobs.OVERWRITE].setValue(True)
    run_to_end(node)
    assert len(calls("message")) == 1


def test_the_clean_input_becomes_the_jobs_clean_reference(reg, tmp_path: Path) -> None:
    node = make_node(tmp_path, **{knobs.EXECUTABLE: fake_ivi_render(tmp_path), knobs.CLEAN_FRAMES: "1001,1003"})
    node.setInput(2, exr_read("/plates/sh010/cleanpass.####.exr"))
    run_to_end(node)
    spec = JobSpec.load(where_of(node).job_file)
    assert (spec.clean, spec.clean_frames) == ("/plates/sh010/cleanpass.####.exr", "1001,1003")
    node.setInput(2, nuke.nodes.Grade())  # a painted frame: baked, only the frames named
    node[knobs.OVERWRITE].setValue(True)
    run_to_end(node)
    assert [(c[4]) for c in calls("execute") if c[1] == knobs.WRITE_CLEAN] == [1001, 1003]
    assert JobSpec.load(where_of(node).job_file).clean == where_of(node).clean


def test_a_node_deleted_while_its_job_runs_is_left_alone(reg, tmp_path: Path) -> None:
    node = make_node(tmp_path, **{knobs.EXECUTABLE: fake_ivi_render(tmp_path, "print('Progress: 100%')")})
    (job,) = gizmo.on_render(node)
    pump_until(lambda: job.state == "running")
    nuke.delete(node)
    pump_until(lambda: not job.active)
    assert job.state == "done" and job.progress == 100  # the panel can still load it (as a Read)


@pytest.mark.parametrize("values, expect", [
    ({knobs.EXECUTABLE: "/no/such/ivi-render"}, "/no/such/ivi-render: no such file (the executable knob)"),
    ({knobs.FIRST_FRAME: 1010}, "first_frame/last_frame: 1010 is after 1003; swap them"),
])
def test_errors_reach_a_message_and_the_status_line(reg, tmp_path: Path, values: dict, expect: str) -> None:
    node = make_node(tmp_path, **values)
    assert gizmo.on_render(node) is None
    assert expect in calls("message")[0][1] and expect in node[knobs.STATUS].value()
    assert calls("execute") == [] and len(reg) == 0


def test_a_failed_bake_fails_the_job_and_says_what_to_check(reg, tmp_path: Path) -> None:
    def broken(write: nuke.Node, first: int, last: int) -> None:
        raise RuntimeError("Write: input 0 is not connected")

    nuke.on_execute = broken
    node = make_node(tmp_path, **{knobs.EXECUTABLE: fake_ivi_render(tmp_path, "")})
    (job,) = gizmo.on_render(node)
    pump_until(lambda: not job.active)
    assert job.state == "failed" and "input 0 is not connected" in job.log[-1]
    assert "check the inputs are connected" in calls("message")[0][1]
    assert node.node(knobs.WRITE_PLATE)["disable"].value() is True  # switched off again after the failure


def test_load_result_needs_every_frame(reg, tmp_path: Path) -> None:
    node = make_node(tmp_path)
    assert not gizmo.on_load_result(node)
    assert "3 of 3 frames" in calls("message")[0][1] and node[knobs.SHOW_RESULT].value() is False
    (tmp_path / ODD).mkdir()
    for f in (1001, 1002, 1003):
        Path(paths.frame_path(node[knobs.OUTPUT].value(), f)).write_bytes(b"")
    assert gizmo.on_load_result(node) and node[knobs.SHOW_RESULT].value() is True


def test_panel_load_result_uses_the_node_or_makes_a_read_that_errors_on_a_missing_frame(reg, tmp_path) -> None:
    node = make_node(tmp_path)
    job = reg.add("clean", node.name(), "this machine", node[knobs.OUTPUT].value(), 1001, 1003)
    assert gizmo.load_job_result(job) is node and node[knobs.SHOW_RESULT].value() is True
    nuke.delete(node)
    read = gizmo.load_job_result(job)
    assert read.Class() == "Read" and read["file"].value() == job.out and read["raw"].value() is True
    assert (read["first"].value(), read["last"].value(), read["on_error"].value()) == (1001, 1003, "error")


def test_on_create_shows_the_input_when_the_result_is_gone(reg, tmp_path: Path) -> None:
    node = make_node(tmp_path, **{knobs.SHOW_RESULT: True})
    nuke.set_this_node(node)
    gizmo.on_create()
    assert node[knobs.SHOW_RESULT].value() is False and not node[knobs.KEY_FRAMES].visible


# --- the panel and the job file ------------------------------------------------------------------------

def test_init_and_menu_set_up_paths_menus_icon_callbacks_and_one_panel(reg) -> None:
    nuke.reset()
    runpy.run_path(str(ROOT / "nuke_plugin" / "init.py"))
    assert calls("pluginAddPath") == [("pluginAddPath", str(startup.GIZMO_DIR))]
    assert calls("addCommand") == [] and calls("tprint") == []  # init.py: no UI, no failure
    runpy.run_path(str(ROOT / "nuke_plugin" / "menu.py"))
    assert calls("tprint") == []
    assert ("addCommand", "Nodes/IVI", "IVI Inpaint", "nuke.createNode('IVI_Inpaint')") in nuke.log
    assert (startup.GIZMO_DIR / knobs.ICON).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert ("addOnCreate", gizmo.on_create, knobs.GIZMO_CLASS) in nuke.log
    assert ("addKnobChanged", gizmo.on_knob_changed, knobs.GIZMO_CLASS) in nuke.log
    assert ("addOnScriptLoad", gizmo.reattach_jobs) in nuke.log
    assert ("registerWidgetAsPanel", "ivi_nuke.panel.JobsPanel", "IVI Jobs", gizmo.PANEL_ID, False) in nuke.log
    created = nuke.createNode(knobs.GIZMO_CLASS)  # found through the path init.py added
    assert created[knobs.GIZMO_VERSION].value() == ivi_nuke.GIZMO_VERSION
    first = gizmo.open_panel()
    assert gizmo.open_panel() is first and gizmo.open_panel() is first  # pressed three times
    assert len([c for c in calls("registerWidgetAsPanel") if c[4]]) == 1
    assert calls("addToPane") == [("addToPane", gizmo.PANEL_ID, "pane:Properties.1")]


def test_jobs_outlive_nuke_in_a_file_per_script_and_reattach(reg, tmp_path: Path, monkeypatch) -> None:
    nuke.set_script(str(tmp_path / "comp_v001.nk"))
    node = make_node(tmp_path, **{knobs.EXECUTABLE: fake_ivi_render(tmp_path)})
    (done,) = run_to_end(node)
    store = registry.store_path(str(tmp_path / "comp_v001.nk"), tmp_path / "jobs")
    assert store is not None and [j["state"] for j in json.loads(store.read_text())["jobs"]] == ["done"]
    # A run still going when Nuke closed: a process of its own, its training's report in the job folder.
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        folder = tmp_path / "other" / ".ivi" / "other"
        (folder / "report").mkdir(parents=True)
        (folder / "report" / "metrics.csv").write_text("step,seconds,loss,estimate_db,fraction\n1,2.0,0.5,,0.5\n")
        data = json.loads(store.read_text())
        data["jobs"].append({**data["jobs"][0], "name": "other", "state": "running", "pid": sleeper.pid, "progress": 0,
                             "folder": str(folder), "out": str(tmp_path / "other" / "o.####.exr"), "started": 1.0})
        store.write_text(json.dumps(data))
        # Nuke restarts and opens the script.
        fresh = registry.JobRegistry()
        monkeypatch.setattr(gizmo, "REGISTRY", fresh)
        monkeypatch.setattr(gizmo, "_STORE", gizmo.StoreState())
        gizmo.reattach_jobs()
        old, going = list(fresh)
        assert (old.state, old.out, going.state) == ("done", done.out, "running")
        fresh.poll()
        assert going.progress == 45 and going.active  # training 50% of the engine's 90%
        assert fresh.request_cancel(going.id)  # SIGTERM to the process
        sleeper.wait(10)
        fresh.poll()
        assert going.state == "cancelled" and "Render again resumes" in going.log[-1]
    finally:
        sleeper.kill()


def test_farm_submission_writes_a_bundle_with_the_real_submit_and_shows_its_state(reg, tmp_path: Path) -> None:
    bake_tiny_shot(tmp_path / "shot")
    node = make_node(tmp_path, **{knobs.RUN_ON: "farm: openjd",
                                  knobs.EXECUTABLE: str(Path(sys.executable).with_name("ivi-render"))})
    (job,) = run_to_end(node)
    where = where_of(node)
    assert job.state == "submitted", "\n".join(job.log)
    assert (where.bundle / "template.json").is_file()
    bundled = JobSpec.load(where.bundle / "job.json")
    assert bundled.plate == where.plate and bundled.out == node[knobs.OUTPUT].value()
    assert "farm files written (farm: openjd)" in node[knobs.STATUS].value()
    assert where.bakes.is_dir()  # the farm reads them later
    for f in (1001, 1002):  # the farm renders
        Path(paths.frame_path(job.out, f)).write_text("x")
    reg.poll()
    assert job.status == "farm: openjd: rendering: 2 of 3 frames written" and not job.has_result
    Path(paths.frame_path(job.out, 1003)).write_text("x")
    reg.poll()
    assert job.has_result and job.status == "farm: openjd: done"


def test_init_reports_a_missing_gizmo_folder_without_stopping_nuke(reg, monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    monkeypatch.setattr(startup, "GIZMO_DIR", tmp_path / "gizmos")
    nuke.reset()
    runpy.run_path(str(ROOT / "nuke_plugin" / "init.py"))
    assert "install the gizmos/ folder" in calls("tprint")[0][1] and calls("pluginAddPath") == []


def test_subprocess_env_hides_nukes_pythonpath(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", "/usr/local/Nuke15.1/lib/python3.10")
    assert "PYTHONPATH" not in commands.subprocess_env() and os.environ["PYTHONPATH"]
