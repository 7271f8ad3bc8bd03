"""The IVI jobs panel with the real Qt binding (qtpy over PySide6), offscreen: rows, progress, log, buttons,
updates from a real subprocess's reader thread, and the README's PNG."""
from __future__ import annotations

import os
import runpy
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before Qt loads; this module's tests need no display
QtWidgets = pytest.importorskip("qtpy.QtWidgets", reason="the panel tests need qtpy and PySide6 (test extra)")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "nuke_plugin"))

from ivi_nuke.panel import PROGRESS_COLUMN, STATE_COLUMN, JobsPanel, MainThreadPoster  # noqa: E402
from ivi_nuke.registry import JobRegistry  # noqa: E402
from ivi_nuke.runner import LocalRun  # noqa: E402


@pytest.fixture(scope="module")
def app() -> QtWidgets.QApplication:
    return QtWidgets.QApplication.instance() or QtWidgets.QApplication([])


@pytest.fixture
def panel(app: QtWidgets.QApplication) -> Iterator[tuple[JobsPanel, JobRegistry, list]]:
    reg, loaded = JobRegistry(), []
    widget = JobsPanel(registry=reg, load_result=loaded.append)
    widget.show()
    yield widget, reg, loaded
    widget.close()
    widget.deleteLater()
    app.processEvents()


def process_until(app: QtWidgets.QApplication, done: Callable[[], bool], timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while not done():
        app.processEvents()
        time.sleep(0.01)
        assert time.monotonic() < end, "timed out"
    app.processEvents()


def cell(panel: JobsPanel, row: int, column: int) -> str:
    return panel.table.item(row, column).text()


def test_rows_follow_the_registry(panel, app) -> None:
    widget, reg, _ = panel
    assert widget.table.rowCount() == 0 and not widget.cancel_button.isEnabled()
    job = reg.add("clean", "IVI_Inpaint1", "this machine", "/o/clean.####.exr", 1001, 1010)
    reg.start(job, ["ivi-render"], cancel=lambda: None)
    reg.line(job, "Progress: 45%", 45)
    app.processEvents()
    assert widget.table.rowCount() == 1 and cell(widget, 0, 0) == "clean" and cell(widget, 0, 1) == "IVI_Inpaint1"
    assert widget.table.cellWidget(0, PROGRESS_COLUMN).value() == 45
    assert cell(widget, 0, STATE_COLUMN) == "running on this machine: 45%"
    reg.finish(job, 1)
    app.processEvents()
    assert cell(widget, 0, STATE_COLUMN).startswith("failed (exit 1")


def test_cancel_and_load_act_on_the_selected_job(panel, app) -> None:
    widget, reg, loaded = panel
    stops: list[int] = []
    running = reg.add("a", "IVI_Inpaint1", "this machine", "/o/a.####.exr", 1, 5)
    reg.start(running, ["ivi-render"], cancel=lambda: stops.append(running.id))
    reg.line(running, "first line")
    done = reg.add("b", "IVI_Inpaint2", "this machine", "/o/b.####.exr", 1, 5)
    reg.start(done, ["ivi-render"], cancel=None)
    reg.finish(done, 0)
    app.processEvents()
    widget.select(running)
    assert widget.selected_job() is running and widget.log.toPlainText() == "first line"
    assert widget.cancel_button.isEnabled() and not widget.load_button.isEnabled()
    reg.line(running, "second line")  # the selected job's log follows
    app.processEvents()
    assert widget.log.toPlainText() == "first line\nsecond line"
    widget.cancel_button.click()
    assert stops == [running.id]
    widget.select(done)
    assert not widget.cancel_button.isEnabled() and widget.load_button.isEnabled()
    widget.load_button.click()
    assert loaded == [done]
    widget.clear_button.click()
    app.processEvents()
    assert widget.table.rowCount() == 1 and cell(widget, 0, 0) == "a"


def test_a_real_run_updates_the_panel_through_the_gui_thread(panel, app, tmp_path: Path) -> None:
    """A subprocess read by a thread; its callbacks posted to the GUI thread as executeInMainThread would."""
    widget, reg, _ = panel
    script = tmp_path / "it's \"odd\" here" / "run.py"
    script.parent.mkdir()
    script.write_text("import time\nfor p in (10, 60, 100):\n    print(f'Progress: {p}%', flush=True)\n"
                      "    time.sleep(0.05)\n")
    job = reg.add("run", "IVI_Inpaint1", "this machine", "/o/run.####.exr", 1, 5)
    post = MainThreadPoster()
    threads: list[bool] = []

    def on_line(text: str, progress: int | None) -> None:
        threads.append(threading.current_thread() is threading.main_thread())
        reg.line(job, text, progress)

    run = LocalRun([sys.executable, str(script)], on_line, lambda rc, c: reg.finish(job, rc, c), post=post)
    reg.start(job, run.argv, run.start().cancel)
    process_until(app, lambda: not job.active)
    assert job.state == "done" and all(threads) and len(threads) == 3
    assert widget.table.cellWidget(0, PROGRESS_COLUMN).value() == 100
    assert cell(widget, 0, STATE_COLUMN) == "done: clean plate written"


def test_the_panel_shows_the_selected_jobs_preview_and_plot_and_follows_the_disk(panel, app, tmp_path) -> None:
    widget, reg, _ = panel
    from qtpy import QtGui
    job = reg.add("clean", "IVI_Inpaint1", "farm: openjd", str(tmp_path / "o" / "clean.####.exr"), 1, 2,
                  folder=str(tmp_path / "o" / ".ivi" / "clean"))
    reg.finish(job, 0)
    app.processEvents()
    widget.select(job)
    assert all(label.pixmap() is None or label.pixmap().isNull() for label in widget.pictures.values())
    report = Path(job.folder) / "report"
    report.mkdir(parents=True)
    image = QtGui.QImage(64, 32, QtGui.QImage.Format.Format_RGB32)
    image.fill(QtGui.QColor(200, 40, 40))
    assert image.save(str(report / "preview.png"))
    (tmp_path / "o" / "clean.0001.exr").write_text("x")  # the farm wrote one of two frames
    widget.tick()
    app.processEvents()
    preview = widget.pictures["preview.png"].pixmap()
    assert preview is not None and not preview.isNull() and preview.toImage().pixelColor(5, 5).red() == 200
    assert widget.pictures["plot.png"].text() == "no plot yet"
    assert cell(widget, 0, STATE_COLUMN) == "farm: openjd: rendering: 1 of 2 frames written"
    assert widget.timer.isActive()


def test_a_closed_panel_stops_listening(app) -> None:
    reg = JobRegistry()
    widget = JobsPanel(registry=reg, load_result=lambda job: None)
    widget.deleteLater()
    app.processEvents()
    from qtpy import QtCore
    QtWidgets.QApplication.sendPostedEvents(None, QtCore.QEvent.DeferredDelete)  # what a closed pane gets
    reg.add("x", "n", "this machine", "o.####.exr", 1, 1)  # must not raise for the deleted widget
    assert reg._listeners == []


def test_readme_picture_renders(app, tmp_path: Path) -> None:
    make = runpy.run_path(str(ROOT / "docs" / "make_panel_png.py"))
    out = make["render_png"](tmp_path / "panel.png", width=640, height=320)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from qtpy import QtGui
    image = QtGui.QImage(str(out))
    assert (image.width(), image.height()) == (640, 320)
    assert len({image.pixel(x, y) for x in range(0, 640, 16) for y in range(0, 320, 16)}) > 3  # drawn, not blank


def test_panel_module_imports_neither_nuke_nor_torch() -> None:
    code = ("import os, sys; os.environ['QT_QPA_PLATFORM'] = 'offscreen'; sys.path.insert(0, sys.argv[1]); "
            "import ivi_nuke.panel; bad = [m for m in ('nuke', 'torch', 'ivi_vfx') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code, str(ROOT / "nuke_plugin")], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
