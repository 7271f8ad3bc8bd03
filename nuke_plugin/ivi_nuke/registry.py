"""The jobs of this Nuke script: their state, progress, ETA and log tail, which the panel lists.

Plain Python. Each change notifies the listeners (the panel, the job store); a job's `cancel` is whatever
stops it (runner.LocalRun.cancel, or a signal to a re-attached process). Nothing here is thread-safe by
itself: the Nuke layer calls it on the main thread only (its runner callbacks go through
nuke.executeInMainThread, the panel's timer runs there).

Jobs outlive Nuke: `JobStore` keeps them in a small JSON file per script, and `reattach` reads it back after a
restart. A local run still going is followed by its process id and its job folder (the training's
report/metrics.csv and the output frames on disk); a farm job, which `ivi-render submit` only wrote files for,
by its job folder the same way (`disk_progress`), since the farm nodes write there too.
"""
from __future__ import annotations

import csv
import itertools
import json
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .progress import status_text

LOG_TAIL = 200
"""Lines of output kept per job."""

ACTIVE = ("queued", "baking", "running")
FINISHED = ("done", "failed", "cancelled", "submitted")
STORE_VERSION = 1


@dataclass
class Job:
    """One Render press."""

    id: int
    name: str
    node_name: str
    where: str
    """``this machine`` or ``farm: openjd`` ..."""
    out: str
    first: int
    last: int
    argv: list[str] = field(default_factory=list)
    state: str = "baking"
    progress: int = 0
    returncode: int | None = None
    log: deque[str] = field(default_factory=lambda: deque(maxlen=LOG_TAIL))
    cancel: Callable[[], None] | None = field(default=None, repr=False)
    folder: str = ""
    """The job folder (.ivi/<name>/): report/ with the training's plot and previews."""
    kind: str = "clean"
    """``clean`` (Render) or ``mattes`` (Predict mattes)."""
    pid: int | None = None
    """The local ivi-render's process id while it runs (a re-attached job is followed by it)."""
    started: float | None = None
    """time.time() when it started running."""
    farm_state: str = ""
    """What the job folder says of a farm job (disk_progress), e.g. ``training 40%``."""
    note: str = ""
    """A remark for the status line (a version kept, a warning)."""
    reattached: bool = False
    """Read back from the job store while its process still ran: followed by its pid and job folder."""
    clock: Callable[[], float] = field(default=time.time, repr=False)

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left, from the progress so far (None before 2% and 10 s, or when not running)."""
        if self.state != "running" or self.started is None or self.progress < 2 or self.progress >= 100:
            return None
        elapsed = self.clock() - self.started
        return elapsed * (100 - self.progress) / self.progress if elapsed >= 10 else None

    @property
    def status(self) -> str:
        text = status_text(self.state, self.progress, self.returncode, list(self.log), self.where)
        if self.state == "done" and self.kind == "mattes":
            text = "done: predicted mattes written (Render fills them)"
        if self.state == "submitted" and self.farm_state:
            text = f"{self.where}: {self.farm_state}"
        eta = self.eta_seconds
        if eta is not None:
            text += f", about {format_duration(eta)} left"
        return f"{text} ({self.note})" if self.note and self.state not in ("failed",) else text

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def has_result(self) -> bool:
        """Its frames are on disk: a local run that finished, or a farm job whose every frame is written."""
        return self.state == "done" or self.farm_state == "done"

    def to_dict(self) -> dict[str, Any]:
        """What the job store keeps (no callables)."""
        return {"id": self.id, "name": self.name, "node_name": self.node_name, "where": self.where, "out": self.out,
                "first": self.first, "last": self.last, "argv": self.argv, "state": self.state,
                "progress": self.progress, "returncode": self.returncode, "log": list(self.log)[-20:],
                "folder": self.folder, "kind": self.kind, "pid": self.pid, "started": self.started,
                "farm_state": self.farm_state, "note": self.note}


def format_duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``1 h 05 min``."""
    if seconds < 90:
        return f"{max(round(seconds), 1)} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


Listener = Callable[[Job | None], None]
"""Called with the job that changed, or None when jobs were removed."""


class JobRegistry:
    """The session's jobs, oldest first, with change listeners."""

    def __init__(self) -> None:
        self._jobs: dict[int, Job] = {}
        self._ids = itertools.count(1)
        self._listeners: list[Listener] = []

    def __iter__(self) -> Iterator[Job]:
        return iter(list(self._jobs.values()))

    def __len__(self) -> int:
        return len(self._jobs)

    def get(self, job_id: int) -> Job:
        return self._jobs[job_id]

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _changed(self, job: Job) -> None:
        for listener in list(self._listeners):
            listener(job)

    def add(self, name: str, node_name: str, where: str, out: str, first: int, last: int, *, folder: str = "",
            kind: str = "clean", state: str = "baking") -> Job:
        job = Job(next(self._ids), name, node_name, where, out, first, last, folder=folder, kind=kind, state=state)
        self._jobs[job.id] = job
        self._changed(job)
        return job

    def active_for(self, node_name: str) -> Job | None:
        """The job of a node that is queued, baking or running, if any (one at a time per node)."""
        return next((j for j in self._jobs.values() if j.node_name == node_name and j.active), None)

    def set_state(self, job: Job, state: str) -> None:
        job.state = state
        self._changed(job)

    def start(self, job: Job, argv: list[str], cancel: Callable[[], None] | None, pid: int | None = None) -> None:
        job.argv, job.cancel, job.state, job.pid = list(argv), cancel, "running", pid
        job.started = job.clock()
        self._changed(job)

    def line(self, job: Job, text: str, progress: int | None = None) -> None:
        """A line of the job's output, and its progress when the line carried one."""
        job.log.append(text.rstrip("\n"))
        if progress is not None:
            job.progress = progress
        self._changed(job)

    def finish(self, job: Job, returncode: int, cancelled: bool = False) -> None:
        """The process ended: done (or submitted, for a farm), cancelled or failed."""
        job.returncode, job.cancel, job.pid = returncode, None, None
        if returncode == 0:
            job.state = "submitted" if job.where.startswith("farm") else "done"
            job.progress = 100
        else:
            job.state = "cancelled" if cancelled else "failed"
        self._changed(job)

    def fail(self, job: Job, message: str) -> None:
        """The job could not start (baking failed, ivi-render not found)."""
        job.log.append(message)
        job.state, job.cancel, job.pid = "failed", None, None
        self._changed(job)

    def poll(self) -> None:
        """Bring the jobs that no pipe reports on up to date from disk (the panel's timer calls it):
        a re-attached local run (its process and report/), a submitted farm job (its folder and frames)."""
        for job in list(self._jobs.values()):
            if job.state == "running" and job.reattached and job.pid is not None:
                if process_alive(job.pid):
                    progress = disk_progress(job)[1]
                    if progress is not None and progress != job.progress:
                        job.progress = progress
                        self._changed(job)
                    continue
                job.pid, job.cancel, job.reattached = None, None, False
                done = disk_progress(job)[0] == "done"
                job.state, job.progress = ("done", 100) if done else ("cancelled", job.progress)
                job.log.append("the run ended while Nuke was away" + ("" if done else "; Render again resumes"))
                self._changed(job)
            elif job.state == "submitted" and job.farm_state != "done":
                state, progress = disk_progress(job)
                if state != job.farm_state:
                    job.farm_state = state
                    if progress is not None:
                        job.progress = progress
                    self._changed(job)

    def restore(self, data: dict[str, Any]) -> Job:
        """A job read back from the store; a run that was going is followed by its pid (cancel: SIGTERM)."""
        keep = {k: data[k] for k in ("name", "node_name", "where", "out", "first", "last") if k in data}
        job = Job(next(self._ids), **keep)
        for key in ("argv", "state", "progress", "returncode", "folder", "kind", "pid", "started", "farm_state",
                    "note"):
            if key in data:
                setattr(job, key, data[key])
        job.log.extend(data.get("log", []))
        if job.state in ("queued", "baking"):  # the bake ran in the Nuke that closed: it never started
            job.state = "cancelled"
            job.log.append("Nuke closed before the job started; Render again")
        if job.state == "running" and job.pid is None:  # a farm submit or a run whose process is unknown
            job.state = "cancelled"
        if job.state == "running" and job.pid is not None:
            pid = job.pid
            job.log.append(f"re-attached after a restart: process {pid}, progress from {job.folder}")
            job.reattached = True
            job.cancel = lambda: os.kill(pid, signal.SIGTERM)
        self._jobs[job.id] = job
        self._changed(job)
        return job

    def request_cancel(self, job_id: int) -> bool:
        """Ask a running job to stop; False when it is not running."""
        job = self._jobs[job_id]
        if not job.active or job.cancel is None:
            return False
        job.cancel()
        return True

    def clear_finished(self) -> None:
        for job_id in [j.id for j in self._jobs.values() if not j.active]:
            del self._jobs[job_id]
        self._changed_all()

    def _changed_all(self) -> None:
        for listener in list(self._listeners):
            listener(None)


REGISTRY = JobRegistry()
"""The session's registry, shared by the gizmo callbacks and the panel."""


# --- the job folder on disk --------------------------------------------------------------------------

def process_alive(pid: int) -> bool:
    """Whether a process of this id exists (signal 0)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _frame(pattern: str, frame: int) -> str:
    from .paths import frame_path  # noqa: PLC0415  (paths imports request; registry stays import-light)
    return frame_path(pattern, frame)


def disk_progress(job: Job) -> tuple[str, int | None]:
    """What a job's folder and output say: (``done`` | ``rendering N of M frames`` | ``training N%`` |
    ``waiting``, progress 0..100 or None).

    The training's report/metrics.csv has a fraction per step (ivi_vfx/report.py); rendering is the frames on
    disk. Progress maps as the engine's: training 90%, rendering the rest (pipeline.TRAIN_SHARE).
    """
    total = job.last - job.first + 1
    try:
        written = sum(Path(_frame(job.out, f)).is_file() for f in range(job.first, job.last + 1))
    except ValueError:
        written = 0
    if written == total:
        return "done", 100
    if written:
        return f"rendering: {written} of {total} frames written", 90 + int(10 * written / total)
    fraction = last_fraction(Path(job.folder) / "report" / "metrics.csv") if job.folder else None
    if fraction is not None:
        return f"training {int(100 * fraction)}%", int(90 * fraction)
    return "waiting (nothing in the job folder yet)", None


def last_fraction(path: Path) -> float | None:
    """The last row's fraction of a training's metrics.csv, or None."""
    if not path.is_file():
        return None
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError:
        return None
    for row in reversed(rows):
        try:
            return min(max(float(row.get("fraction") or ""), 0.0), 1.0)
        except ValueError:
            continue
    return None


class JobStore:
    """The jobs of one script in a small JSON file, written on every change (atomically)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def save(self, registry: JobRegistry) -> None:
        data = {"version": STORE_VERSION, "jobs": [j.to_dict() for j in registry]}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, self.path)

    def load(self) -> list[dict[str, Any]]:
        """The stored jobs; [] when there is no file or it cannot be read (a job list is never worth an error)."""
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return []
        if not isinstance(data, dict) or data.get("version") != STORE_VERSION:
            return []
        return [j for j in data.get("jobs", []) if isinstance(j, dict)]

    def attach(self, registry: JobRegistry) -> list[Job]:
        """Read the stored jobs into the registry (after a restart), except those it already lists."""
        listed = {(j.name, j.out, j.started) for j in registry}
        return [registry.restore(data) for data in self.load()
                if (data.get("name"), data.get("out"), data.get("started")) not in listed]

    def save_quietly(self, registry: JobRegistry) -> None:
        try:
            self.save(registry)
        except OSError:
            pass  # a read-only home: the jobs are still listed, only not kept


def store_path(script: str, folder: Path) -> Path | None:
    """The job file of a script: ``<folder>/<script stem>-<hash of its path>.json``; None for an unsaved script."""
    import hashlib  # noqa: PLC0415

    if not script or script == "Root" or not script.endswith(".nk"):
        return None
    digest = hashlib.sha1(os.path.abspath(script).encode()).hexdigest()[:10]
    return Path(folder) / f"{Path(script).stem}-{digest}.json"
