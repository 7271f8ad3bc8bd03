"""The jobs of this Nuke session: their state, progress and log tail, which the panel lists.

Plain Python. Each change notifies the listeners (the panel); a job's `cancel` is whatever stops it
(runner.LocalRun.cancel). Nothing here is thread-safe by itself: the Nuke layer calls it on the
main thread only (its runner callbacks go through nuke.executeInMainThread).
"""
from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from .progress import status_text

LOG_TAIL = 200
"""Lines of output kept per job."""

ACTIVE = ("baking", "running")
FINISHED = ("done", "failed", "cancelled", "submitted")


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

    @property
    def status(self) -> str:
        return status_text(self.state, self.progress, self.returncode, list(self.log), self.where)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def has_result(self) -> bool:
        """A local run that finished: its frames are on disk."""
        return self.state == "done"


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

    def add(self, name: str, node_name: str, where: str, out: str, first: int, last: int) -> Job:
        job = Job(next(self._ids), name, node_name, where, out, first, last)
        self._jobs[job.id] = job
        self._changed(job)
        return job

    def start(self, job: Job, argv: list[str], cancel: Callable[[], None] | None) -> None:
        job.argv, job.cancel, job.state = list(argv), cancel, "running"
        self._changed(job)

    def line(self, job: Job, text: str, progress: int | None = None) -> None:
        """A line of the job's output, and its progress when the line carried one."""
        job.log.append(text.rstrip("\n"))
        if progress is not None:
            job.progress = progress
        self._changed(job)

    def finish(self, job: Job, returncode: int, cancelled: bool = False) -> None:
        """The process ended: done (or submitted, for a farm), cancelled or failed."""
        job.returncode, job.cancel = returncode, None
        if returncode == 0:
            job.state = "submitted" if job.where.startswith("farm") else "done"
            job.progress = 100
        else:
            job.state = "cancelled" if cancelled else "failed"
        self._changed(job)

    def fail(self, job: Job, message: str) -> None:
        """The job could not start (baking failed, ivi-render not found)."""
        job.log.append(message)
        job.state, job.cancel = "failed", None
        self._changed(job)

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
