"""A local `ivi-render` run: a subprocess whose output a thread reads, reported through a `post` function.

In Nuke, `post` is nuke.executeInMainThread, so every callback (and every Nuke or registry call
inside it) runs on the main thread; tests pass a direct call or a Qt queued signal. The process
gets an argument list, never a shell string.
"""
from __future__ import annotations

import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .progress import parse_progress

Post = Callable[[Callable[..., Any], tuple[Any, ...]], Any]
"""Runs fn(*args) on the thread that owns the UI: nuke.executeInMainThread's signature."""


def call_now(fn: Callable[..., Any], args: tuple[Any, ...] = ()) -> Any:
    """A `post` for code without a UI thread (tests, `nuke -t`): call at once, on the reader thread."""
    return fn(*args)


class LocalRun:
    """Runs argv; reports each output line (with its progress, if any) and the exit code through `post`.

    on_line(text, progress_or_None) per line of stdout and stderr (merged, in order);
    on_tick() every `tick_every` seconds while it runs, whether or not a line arrives (the Nuke layer
    polls its progress bar's cancel button there);
    on_exit(returncode, cancelled) once, after the last line.
    """

    def __init__(self, argv: Sequence[str], on_line: Callable[[str, int | None], None],
                 on_exit: Callable[[int, bool], None], post: Post = call_now,
                 env: Mapping[str, str] | None = None, cwd: str | None = None,
                 on_tick: Callable[[], None] | None = None, tick_every: float = 0.5) -> None:
        self.argv = [str(a) for a in argv]
        self.on_line, self.on_exit, self.post = on_line, on_exit, post
        self.on_tick, self.tick_every = on_tick, tick_every
        self.env, self.cwd = env, cwd
        self.process: subprocess.Popen[str] | None = None
        self.thread: threading.Thread | None = None
        self.cancelled = False
        self._ended = threading.Event()

    def start(self) -> LocalRun:
        """Start the process and its reader thread; OSError (no such executable) is raised here, on the
        caller's thread."""
        self.process = subprocess.Popen(  # noqa: S603  (an argument list: no shell, paths pass as they are)
            self.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            text=True, bufsize=1, env=dict(self.env) if self.env is not None else None, cwd=self.cwd)
        self.thread = threading.Thread(target=self._pump, name="ivi-render reader", daemon=True)
        self.thread.start()
        if self.on_tick is not None:
            threading.Thread(target=self._tick, name="ivi-render ticker", daemon=True).start()
        return self

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def _pump(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.post(self.on_line, (line.rstrip("\n"), parse_progress(line)))
        returncode = self.process.wait()
        self._ended.set()
        self.post(self.on_exit, (returncode, self.cancelled))

    def _tick(self) -> None:
        assert self.on_tick is not None
        while not self._ended.wait(self.tick_every):
            self.post(self.on_tick, ())

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def cancel(self) -> None:
        """SIGTERM: ivi-render writes a checkpoint and exits 143, so the same job resumes later."""
        if self.running:
            assert self.process is not None
            self.cancelled = True
            self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the process and its reader (tests, `nuke -t`); the exit code, or None on timeout."""
        if self.thread is not None:
            self.thread.join(timeout)
            if self.thread.is_alive():
                return None
        return None if self.process is None else self.process.returncode


@dataclass
class Steps:
    """Runs a list of steps one per posted call, so the UI thread breathes between them (Nuke's bake: one
    frame per step, the interface redrawn and the cancel button read between frames).

    on_progress(done, total) after each step; on_end(error_or_None, cancelled) once. A step that raises
    ends the run with that error (the remaining steps are skipped).
    """

    steps: Sequence[Callable[[], None]]
    post: Post
    on_end: Callable[[BaseException | None, bool], None]
    on_progress: Callable[[int, int], None] | None = None
    cancelled: Callable[[], bool] | None = None
    done: int = 0

    def start(self) -> Steps:
        self.post(self._next, ())
        return self

    def _next(self) -> None:
        if self.cancelled is not None and self.cancelled():
            self.on_end(None, True)
            return
        if self.done == len(self.steps):
            self.on_end(None, False)
            return
        try:
            self.steps[self.done]()
        except Exception as exc:  # noqa: BLE001  (handed to on_end, which reports it)
            self.on_end(exc, False)
            return
        self.done += 1
        if self.on_progress is not None:
            self.on_progress(self.done, len(self.steps))
        self.post(self._next, ())
