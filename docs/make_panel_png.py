"""Renders the IVI jobs panel offscreen with a few sample jobs into docs/ivi_panel.png (the README's picture).

    QT_QPA_PLATFORM=offscreen .venv/bin/python docs/make_panel_png.py [OUT.png]

Needs qtpy and PySide6 (the test extra). No Nuke: the jobs are made in the registry directly. The running job's
preview and plot are docs/training_preview.png and docs/training_plot.png, the report of a real run of the demo
shot (how they were made: docs/nuke.md), copied into a job folder's report/.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "nuke_plugin"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qtpy import QtWidgets  # noqa: E402

from ivi_nuke.panel import JobsPanel  # noqa: E402
from ivi_nuke.registry import JobRegistry  # noqa: E402

DOCS = Path(__file__).resolve().parent
REPORT = {"preview.png": DOCS / "training_preview.png", "plot.png": DOCS / "training_plot.png"}


def sample_registry(folder: Path | None = None) -> JobRegistry:
    """Four jobs in the states a compositor sees: running (its report in `folder`), done, on a farm, failed."""
    reg = JobRegistry()
    running = reg.add("sh010_clean", "IVI_Inpaint1", "this machine", "/shots/sh010/clean.####.exr", 1001, 1100,
                      folder=str(folder or ""))
    reg.start(running, ["ivi-render", "run", "/shots/sh010/.ivi/sh010_clean/job.json"], cancel=lambda: None)
    running.started, running.clock = 1000.0, lambda: 1000.0 + 6 * 60  # 45% in six minutes
    for (step, pct), loss in zip(((100, 10), (300, 30), (450, 45)), ("0.0712", "0.0415", "0.0338")):
        reg.line(running, f"10:2{pct // 10}:0{pct % 7} INFO step {step}/900 loss {loss}", None)
        reg.line(running, f"Progress: {pct}%", pct)
    done = reg.add("sh020_wire", "IVI_Inpaint2", "this machine", "/shots/sh020/wire.####.exr", 1001, 1048)
    reg.start(done, ["ivi-render", "inpaint"], cancel=None)
    reg.line(done, "wrote 48 frames: /shots/sh020/wire.####.exr", 100)
    reg.finish(done, 0)
    farm = reg.add("sh030_rig", "IVI_Inpaint3", "farm: openjd", "/shots/sh030/rig.####.exr", 1001, 1240)
    reg.start(farm, ["ivi-render", "submit"], cancel=None)
    reg.line(farm, "/shots/sh030/.ivi/sh030_rig/farm/template.json")
    reg.finish(farm, 0)
    farm.farm_state, farm.progress = "rendering: 96 of 240 frames written", 94
    failed = reg.add("sh040_sign", "IVI_Inpaint4", "this machine", "/shots/sh040/sign.####.exr", 1001, 1010)
    reg.start(failed, ["ivi-render", "run"], cancel=None)
    reg.line(failed, "ivi-render: error: /shots/sh040/.ivi/sign/nuke/matte.1004.exr: no such file; "
                     "check the matte input covers 1001-1010")
    reg.finish(failed, 1)
    return reg


def render_png(out: Path, width: int = 980, height: int = 560) -> Path:
    """Build the panel on the sample jobs, select the running one, and save what Qt draws."""
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    folder = Path(tempfile.mkdtemp(prefix="ivi_panel_"))
    (folder / "report").mkdir()
    for name, source in REPORT.items():
        if source.is_file():
            shutil.copy(source, folder / "report" / name)
    reg = sample_registry(folder)
    panel = JobsPanel(registry=reg, load_result=lambda job: None)
    panel.resize(width, height)
    panel.table.setColumnWidth(0, 130)
    panel.table.setColumnWidth(2, 110)
    panel.table.setColumnWidth(3, 150)
    panel.select(next(iter(reg)))
    panel.show()
    app.processEvents()
    panel.resize(width, height)  # the pictures scaled to their laid-out labels
    app.processEvents()
    panel._shown.clear()
    panel._show_pictures(panel.selected_job())
    app.processEvents()
    out.parent.mkdir(parents=True, exist_ok=True)
    if not panel.grab().save(str(out)):
        raise OSError(f"{out}: Qt could not write the PNG; check the folder can be written")
    panel.close()
    shutil.rmtree(folder, ignore_errors=True)
    return out


if __name__ == "__main__":
    print(render_png(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "ivi_panel.png"))
