"""The IVI jobs panel (Qt through qtpy: PySide2 in Nuke 11-15, PySide6 in Nuke 16+).

Lists the script's jobs (registry.REGISTRY) with their progress and ETA, shows the selected job's log
tail and its training's latest preview frame and plot (report/preview.png and plot.png in the job folder,
ivi_vfx/report.py), and cancels a run or loads its result. A timer (POLL_MS) brings the jobs that no pipe
reports on up to date (a farm job, a run re-attached after a restart: registry.poll), redraws the ETAs and
reloads a picture when its file changed. It never imports `nuke`: loading a result goes through a callback,
by default gizmo.load_job_result (imported when first used, inside Nuke). Registry changes reach the
widgets through a Qt signal, so a change made on any thread is drawn on the GUI thread.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:  # checked against qtpy's view of the bindings (the test extra's: PySide6)
    from qtpy import QtCore, QtGui, QtWidgets
else:
    try:  # qtpy picks whichever binding is importable; Nuke does not ship qtpy, so fall back to the bindings
        from qtpy import QtCore, QtGui, QtWidgets
    except ImportError:  # pragma: no cover (depends on the Nuke version)
        try:
            from PySide6 import QtCore, QtGui, QtWidgets
        except ImportError:
            from PySide2 import QtCore, QtGui, QtWidgets

from .registry import LOG_TAIL, REGISTRY, Job, JobRegistry

COLUMNS = ("job", "node", "where", "progress", "state")
POLL_MS = 2000
"""The panel's timer: registry.poll, ETAs, pictures."""
PICTURES = ("preview.png", "plot.png")
"""What the panel shows of the selected job's report/ folder."""
PROGRESS_COLUMN = COLUMNS.index("progress")
STATE_COLUMN = COLUMNS.index("state")

# The enums by their unscoped names (Qt.UserRole), as Nuke's PySide2 spells them; PySide6 accepts them
# too at run time, but its type stubs know only the scoped names (Qt.ItemDataRole.UserRole), hence Any.
_Qt = cast(Any, QtCore.Qt)
_View = cast(Any, QtWidgets.QAbstractItemView)


class MainThreadPoster(QtCore.QObject):
    """executeInMainThread for a plain Qt application: post(fn, args) runs fn(*args) on this object's thread."""

    posted = QtCore.Signal(object, object)

    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.posted.connect(lambda fn, args: fn(*args), _Qt.QueuedConnection)

    def __call__(self, fn: Callable[..., Any], args: tuple[Any, ...] = ()) -> None:
        self.posted.emit(fn, tuple(args))


class _Bridge(QtCore.QObject):
    changed = QtCore.Signal(object)


class JobsPanel(QtWidgets.QWidget):
    """Jobs with progress, the selected job's log tail, Cancel, Load result and Clear finished."""

    def __init__(self, parent: QtWidgets.QWidget | None = None, registry: JobRegistry | None = None,
                 load_result: Callable[[Job], Any] | None = None) -> None:
        super().__init__(parent)
        self.registry = REGISTRY if registry is None else registry
        self._load_result = load_result
        self.setObjectName("IVIJobsPanel")
        self.setWindowTitle("IVI Jobs")

        self.table = QtWidgets.QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels([c.capitalize() for c in COLUMNS])
        self.table.setSelectionBehavior(_View.SelectRows)
        self.table.setSelectionMode(_View.SingleSelection)
        self.table.setEditTriggers(_View.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.log = QtWidgets.QPlainTextEdit(self)
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(LOG_TAIL)
        self.log.setPlaceholderText("select a job to see its output")
        self.pictures: dict[str, QtWidgets.QLabel] = {}
        self._shown: dict[str, tuple[str, float]] = {}
        for name in PICTURES:
            label = QtWidgets.QLabel(self)
            label.setAlignment(_Qt.AlignCenter)
            label.setMinimumSize(160, 90)
            label.setText(f"no {name[:-4]} yet")
            label.setToolTip(f"the selected job's report/{name}")
            self.pictures[name] = label
        self.cancel_button = QtWidgets.QPushButton("Cancel", self)
        self.load_button = QtWidgets.QPushButton("Load result", self)
        self.clear_button = QtWidgets.QPushButton("Clear finished", self)

        buttons = QtWidgets.QHBoxLayout()
        for button in (self.cancel_button, self.load_button, self.clear_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.table, 3)
        layout.addLayout(buttons)
        below = QtWidgets.QHBoxLayout()
        below.addWidget(self.log, 3)
        shown = QtWidgets.QVBoxLayout()
        for label in self.pictures.values():
            shown.addWidget(label, 1)
        below.addLayout(shown, 4)
        layout.addLayout(below, 3)

        self.cancel_button.clicked.connect(self.cancel_selected)
        self.load_button.clicked.connect(self.load_selected)
        self.clear_button.clicked.connect(self.registry.clear_finished)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self._bridge = _Bridge(self)
        self._bridge.changed.connect(self._on_changed)
        self.registry.subscribe(self._notify)
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self.tick)
        self.timer.start()
        self.refresh()

    def tick(self) -> None:
        """The timer: jobs followed from disk, ETAs (they change without a line), the selected job's pictures."""
        self.registry.poll()
        for row, job in enumerate(self.registry):
            if job.state == "running" and row < self.table.rowCount():
                self._fill_row(row, job)
        self._show_pictures(self.selected_job())

    def resizeEvent(self, event: Any) -> None:  # noqa: N802  (Qt's name)
        """Pictures scaled to the new size of their labels."""
        super().resizeEvent(event)
        self._shown.clear()
        self._show_pictures(self.selected_job())

    def _show_pictures(self, job: Job | None) -> None:
        """Load report/preview.png and plot.png of the job when they changed since last shown."""
        for name, label in self.pictures.items():
            path = Path(job.folder) / "report" / name if job is not None and job.folder else None
            try:
                stamp = (str(path), os.path.getmtime(path)) if path is not None else ("", 0.0)
            except OSError:
                stamp = (str(path), -1.0)
            if self._shown.get(name) == stamp:
                continue
            self._shown[name] = stamp
            pixmap = QtGui.QPixmap(str(path)) if path is not None and stamp[1] >= 0 else QtGui.QPixmap()
            if pixmap.isNull():
                label.setPixmap(QtGui.QPixmap())
                label.setText(f"no {name[:-4]} yet" if job is not None else "")
            else:
                label.setPixmap(pixmap.scaled(max(label.width(), 160), max(label.height(), 90),
                                              _Qt.KeepAspectRatio, _Qt.SmoothTransformation))

    # --- registry -> widgets -----------------------------------------------------------------------

    def _notify(self, job: Job | None) -> None:
        """The registry's listener; may run on any thread. Stops listening once the widget is gone."""
        try:
            self._bridge.changed.emit(job)
        except RuntimeError:  # the C++ side was deleted (panel closed)
            self.registry.unsubscribe(self._notify)

    def _row_of(self, job_id: int) -> int | None:
        for row in range(self.table.rowCount()):
            item = self.table.item(row, 0)
            if item is not None and item.data(_Qt.UserRole) == job_id:
                return row
        return None

    def _on_changed(self, job: Job | None) -> None:
        row = None if job is None else self._row_of(job.id)
        if job is None or row is None:
            self.refresh()
            return
        self._fill_row(row, job)
        if self.selected_job() is job:
            self._show_log(job)
            self._update_buttons()

    def refresh(self) -> None:
        """Rebuild every row (jobs added or removed), keeping the selection."""
        selected = self.selected_job()
        jobs = list(self.registry)
        self.table.setRowCount(len(jobs))
        for row, job in enumerate(jobs):
            self._fill_row(row, job)
            if job is selected:
                self.table.selectRow(row)
        if selected is None or selected not in jobs:
            self.log.clear()
        self._update_buttons()

    def _fill_row(self, row: int, job: Job) -> None:
        texts = (job.name, job.node_name, job.where, "", job.status)
        for column, text in enumerate(texts):
            item = self.table.item(row, column)
            if item is None:
                item = QtWidgets.QTableWidgetItem()
                self.table.setItem(row, column, item)
            item.setText(text)
            item.setToolTip(job.out if column == 0 else text)
            item.setData(_Qt.UserRole, job.id)
        bar = self.table.cellWidget(row, PROGRESS_COLUMN)
        if not isinstance(bar, QtWidgets.QProgressBar):
            bar = QtWidgets.QProgressBar()
            bar.setRange(0, 100)
            self.table.setCellWidget(row, PROGRESS_COLUMN, bar)
        bar.setValue(job.progress)

    def _show_log(self, job: Job) -> None:
        self.log.setPlainText("\n".join(job.log))
        self.log.verticalScrollBar().setValue(self.log.verticalScrollBar().maximum())

    # --- selection and buttons ---------------------------------------------------------------------

    def selected_job(self) -> Job | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows:
            return None
        item = self.table.item(rows[0].row(), 0)
        if item is None:
            return None
        job_id = item.data(_Qt.UserRole)
        try:
            return self.registry.get(job_id)
        except KeyError:
            return None

    def select(self, job: Job) -> None:
        row = self._row_of(job.id)
        if row is not None:
            self.table.selectRow(row)

    def _selection_changed(self) -> None:
        job = self.selected_job()
        if job is None:
            self.log.clear()
        else:
            self._show_log(job)
        self._show_pictures(job)
        self._update_buttons()

    def _update_buttons(self) -> None:
        job = self.selected_job()
        self.cancel_button.setEnabled(job is not None and job.active)
        self.load_button.setEnabled(job is not None and job.has_result)
        self.clear_button.setEnabled(any(not j.active for j in self.registry))

    def cancel_selected(self) -> bool:
        job = self.selected_job()
        return job is not None and self.registry.request_cancel(job.id)

    def load_selected(self) -> Any:
        job = self.selected_job()
        if job is None or not job.has_result:
            return None
        if self._load_result is None:
            from .gizmo import load_job_result  # noqa: PLC0415  (imports nuke: inside Nuke only)
            self._load_result = load_job_result
        return self._load_result(job)
