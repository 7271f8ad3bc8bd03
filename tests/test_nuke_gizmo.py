"""The layer that calls `nuke` (ivi_nuke.gizmo, startup, init.py, menu.py) against the fake in tests/fake_nuke,
with the real gizmo file's knobs, real subprocesses and, once, the real ivi-render."""
from __future__ import annotations

import json
import os
import runpy
import shutil
import stat
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
from ivi_nuke import commands, gizmo, knobs, paths, registry, startup  # noqa: E402

ODD = "it's a \"shot\" with spaces"


@pytest.fixture
def reg(monkeypatch: pytest.MonkeyPatch) -> Iterator[registry.JobRegistry]:
    nuke.reset()
    nuke.pluginAddPath(str(ROOT / "gizmos"))
    fresh = registry.JobRegistry()
    monkeypatch.setattr(gizmo, "REGISTRY", fresh)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    yield fresh
    assert nuke.off_main_thread == [], "Nuke was called off the main thread"


def make_node(tmp_path: Path, **values: object) -> nuke.Node:
    node = nuke.gizmo_node(knobs.GIZMO_CLASS, "IVI_Inpaint1", **{
        knobs.FIRST_FRAME: 1001, knobs.LAST_FRAME: 1003, knobs.OUTPUT: str(tmp_path / ODD / "clean.####.exr"),
        **values})
    return node


def fake_ivi_render(tmp_path: Path, body: str) -> str:
    """An executable standing in for ivi-render (at a path with spaces and quotes)."""
    path = tmp_path / ODD / "bin" / "ivi-render"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def pump_until(done: Callable[[], bool], timeout: float = 120) -> None:
    """Nuke's event loop: run the queued main-thread calls until `done`."""
    end = time.monotonic() + timeout
    while not done():
        if not nuke.pump():
            time.sleep(0.02)
        assert time.monotonic() < end, "the job did not finish"


def calls(kind: str) -> list[tuple]:
    return [c for c in nuke.log if c[0] == kind]


def bake_tiny_shot(folder: Path) -> None:
    """Make nuke.execute of the internal Writes write a tiny shot's plate and matte, as Nuke's Writes would."""
    shot = make_tiny_shot(folder, count=3)

    def bake(write: nuke.Node, first: int, last: int) -> None:
        source = shot.plate if write.name() == knobs.WRITE_PLATE else shot.mask
        for f in range(first, last + 1):
            shutil.copy(paths.frame_path(source, f), paths.frame_path(write["file"].value(), f))

    nuke.on_execute = bake


def test_render_here_bakes_runs_the_real_ivi_render_and_shows_the_result(reg, tmp_path: Path) -> None:
    bake_tiny_shot(tmp_path / "shot")
    node = make_node(tmp_path, **{knobs.PRESET: "quick", knobs.STEPS: 2, knobs.WORK_SIZE: 32,
                                  knobs.EXECUTABLE: str(Path(sys.executable).with_name("ivi-render"))})
    job = gizmo.on_render(node)
    assert job is not None and job.state == "running" and calls("message") == []
    pump_until(lambda: not job.active)
    assert job.state == "done", "\n".join(job.log)
    where = paths.job_paths(gizmo.request.from_knob_values(gizmo.knob_values(node), "n"))
    # Both Writes ran over the range with the bake paths, enabled only while they ran.
    assert [c[1:] for c in calls("execute")] == [(knobs.WRITE_PLATE, where.plate, False, 1001, 1003),
                                                 (knobs.WRITE_MATTE, where.matte, False, 1001, 1003)]
    assert node.node(knobs.WRITE_PLATE)["disable"].value() is True
    assert JobSpec.load(where.job_file).plate == where.plate
    assert job.argv[1:3] == ["run", str(where.job_file)]
    assert nuke.tasks[0].title == "IVI clean" and nuke.tasks[0].progress == 100
    assert node[knobs.SHOW_RESULT].value() is True and node[knobs.STATUS].value() == "done: clean plate written"
    assert ("execute_knob", "ResultRead", "reload") in nuke.log
    assert paths.result_exists(node[knobs.OUTPUT].value(), 1001, 1003)


def test_progress_task_cancel_stops_the_run_with_sigterm(reg, tmp_path: Path) -> None:
    exe = fake_ivi_render(tmp_path, """
        import signal, sys, time
        signal.signal(signal.SIGTERM, lambda *a: (print("checkpoint written", flush=True), sys.exit(143)))
        for p in range(100):
            print(f"Progress: {p}%", flush=True)
            time.sleep(0.05)
        """)
    node = make_node(tmp_path, **{knobs.EXECUTABLE: exe})
    job = gizmo.on_render(node)
    pump_until(lambda: job.progress >= 2)
    nuke.tasks[0].cancelled = True  # the user presses cancel on Nuke's progress bar
    pump_until(lambda: not job.active, timeout=30)
    assert (job.state, job.returncode) == ("cancelled", 143) and job.log[-1] == "checkpoint written"
    assert node[knobs.STATUS].value().startswith("cancelled") and node[knobs.SHOW_RESULT].value() is False


def test_keyframe_matte_bakes_only_the_key_frames_and_runs_its_job_file(reg, tmp_path: Path) -> None:
    record = tmp_path / "argv.json"
    exe = fake_ivi_render(tmp_path, f"""
        import json, sys
        json.dump(sys.argv[1:], open({str(record)!r}, "w"))
        sys.exit(1)
        """)
    node = make_node(tmp_path, **{knobs.EXECUTABLE: exe, knobs.MATTE_MODE: "keyframe matte",
                                  knobs.KEY_FRAMES: "1003,1001"})
    job = gizmo.on_render(node)
    pump_until(lambda: not job.active)
    where = paths.job_paths(gizmo.request.from_knob_values(gizmo.knob_values(node), "n"))
    assert [(c[1], c[4], c[5]) for c in calls("execute")] == [
        (knobs.WRITE_PLATE, 1001, 1003), (knobs.WRITE_MATTE, 1001, 1001), (knobs.WRITE_MATTE, 1003, 1003)]
    argv = json.loads(record.read_text())
    assert argv[:2] == ["run", str(where.job_file)]
    job_file = json.loads(where.job_file.read_text())
    assert (job_file["key_mask"], job_file["key_frames"]) == (where.matte, "1001,1003") and "mask" not in job_file
    assert job.state == "failed" and node[knobs.STATUS].value().startswith("failed (exit 1: bad input)")


def test_farm_submission_writes_a_bundle_with_the_real_submit(reg, tmp_path: Path) -> None:
    bake_tiny_shot(tmp_path / "shot")
    node = make_node(tmp_path, **{knobs.RUN_ON: "farm: openjd",
                                  knobs.EXECUTABLE: str(Path(sys.executable).with_name("ivi-render"))})
    job = gizmo.on_render(node)
    pump_until(lambda: not job.active)
    where = paths.job_paths(gizmo.request.from_knob_values(gizmo.knob_values(node), "n"))
    assert job.state == "submitted", "\n".join(job.log)
    assert (where.bundle / "template.json").is_file() and nuke.tasks == []
    bundled = JobSpec.load(where.bundle / "job.json")
    assert bundled.plate == where.plate and bundled.out == node[knobs.OUTPUT].value()
    assert "farm files written (farm: openjd)" in node[knobs.STATUS].value()
    assert node[knobs.SHOW_RESULT].value() is False


def test_a_node_deleted_while_its_job_runs_is_left_alone(reg, tmp_path: Path) -> None:
    node = make_node(tmp_path, **{knobs.EXECUTABLE: fake_ivi_render(tmp_path, "print('Progress: 100%')")})
    job = gizmo.on_render(node)
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
    assert gizmo.on_render(node) is None
    (job,) = list(reg)
    assert job.state == "failed" and "input 0 is not connected" in job.log[-1]
    assert "check both inputs are connected" in calls("message")[0][1]
    assert node.node(knobs.WRITE_PLATE)["disable"].value() is True  # switched off again after the failure


def test_load_result_needs_every_frame(reg, tmp_path: Path) -> None:
    node = make_node(tmp_path)
    assert not gizmo.on_load_result(node)
    assert "3 of 3 frames" in calls("message")[0][1] and node[knobs.SHOW_RESULT].value() is False
    (tmp_path / ODD).mkdir()
    for f in (1001, 1002, 1003):
        Path(paths.frame_path(node[knobs.OUTPUT].value(), f)).write_bytes(b"")
    assert gizmo.on_load_result(node) and node[knobs.SHOW_RESULT].value() is True


def test_panel_load_result_uses_the_node_or_makes_a_read(reg, tmp_path: Path) -> None:
    node = make_node(tmp_path)
    job = reg.add("clean", node.name(), "this machine", node[knobs.OUTPUT].value(), 1001, 1003)
    assert gizmo.load_job_result(job) is node and node[knobs.SHOW_RESULT].value() is True
    nuke.delete(node)
    read = gizmo.load_job_result(job)
    assert read.Class() == "Read" and read["file"].value() == job.out and read["raw"].value() is True
    assert (read["first"].value(), read["last"].value()) == (1001, 1003)


def test_on_create_shows_the_input_when_the_result_is_gone(reg, tmp_path: Path) -> None:
    node = make_node(tmp_path, **{knobs.SHOW_RESULT: True})
    nuke.set_this_node(node)
    gizmo.on_create()
    assert node[knobs.SHOW_RESULT].value() is False


def test_init_and_menu_set_up_paths_menus_and_the_panel(reg) -> None:
    nuke.reset()
    runpy.run_path(str(ROOT / "nuke_plugin" / "init.py"))
    assert calls("pluginAddPath") == [("pluginAddPath", str(startup.GIZMO_DIR))]
    assert calls("addCommand") == [] and calls("tprint") == []  # init.py: no UI, no failure
    runpy.run_path(str(ROOT / "nuke_plugin" / "menu.py"))
    assert calls("tprint") == []
    assert ("addCommand", "Nodes/IVI", "IVI Inpaint", "nuke.createNode('IVI_Inpaint')") in nuke.log
    assert ("addOnCreate", gizmo.on_create, knobs.GIZMO_CLASS) in nuke.log
    assert ("registerWidgetAsPanel", "ivi_nuke.panel.JobsPanel", "IVI Jobs", gizmo.PANEL_ID, False) in nuke.log
    created = nuke.createNode(knobs.GIZMO_CLASS)  # found through the path init.py added
    assert created[knobs.GIZMO_VERSION].value() == ivi_nuke.GIZMO_VERSION
    gizmo.open_panel()
    assert ("addToPane", gizmo.PANEL_ID, "pane:Properties.1") in nuke.log


def test_init_reports_a_missing_gizmo_folder_without_stopping_nuke(reg, monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    monkeypatch.setattr(startup, "GIZMO_DIR", tmp_path / "gizmos")
    nuke.reset()
    runpy.run_path(str(ROOT / "nuke_plugin" / "init.py"))
    assert "install the gizmos/ folder" in calls("tprint")[0][1] and calls("pluginAddPath") == []


def test_subprocess_env_hides_nukes_pythonpath(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", "/usr/local/Nuke15.1/lib/python3.10")
    assert "PYTHONPATH" not in commands.subprocess_env() and os.environ["PYTHONPATH"]
