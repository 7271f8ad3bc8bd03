"""The IVI_Inpaint gizmo's callbacks: the thin layer that calls `nuke`.

Everything it decides comes from the plain modules (request, paths, commands, registry); this file
only reads knobs, runs the internal Write nodes, starts the run, and puts results back on the node.
Threads: the reader thread of runner.LocalRun never touches Nuke; it posts its callbacks through
nuke.executeInMainThread, so every knob, ProgressTask and registry call below runs on the main thread.
"""
from __future__ import annotations

import json
import traceback
from typing import Any

import nuke

from . import commands, knobs, paths, request
from .registry import REGISTRY, Job
from .runner import LocalRun

PANEL_ID = "com.ivi-vfx.jobs"
PANEL_WIDGET = "ivi_nuke.panel.JobsPanel"

_TASKS: dict[int, Any] = {}
"""Job id -> its nuke.ProgressTask (the task's bar lives as long as the object)."""


def knob_values(node: Any) -> dict[str, Any]:
    """The knobs that request.from_knob_values reads."""
    return {name: node[name].value() for name in knobs.READ_KNOBS}


def set_status(node: Any, text: str) -> None:
    """The status line; a node deleted while its job ran is ignored (Nuke raises ValueError for it)."""
    try:
        node[knobs.STATUS].setValue(text)
    except ValueError:
        pass


def on_render(node: Any) -> Job | None:
    """The Render button. Errors go to the status line and a message naming the knob and the fix."""
    try:
        return start(node)
    except (request.RequestError, commands.CommandError, RuntimeError, OSError) as exc:
        set_status(node, f"error: {exc}")
        nuke.message(f"IVI Inpaint ({node.name()}):\n{exc}")
    except Exception:  # a bug: show the traceback instead of losing it in Nuke's terminal
        nuke.message(f"IVI Inpaint ({node.name()}): unexpected error\n{traceback.format_exc()}")
    return None


def start(node: Any) -> Job:
    """Bake the inputs, write the job file, start ivi-render (here, or `submit` for a farm)."""
    req = request.from_knob_values(knob_values(node), node.name())
    exe = commands.find_ivi_render(req.executable)
    where = paths.job_paths(req)
    job = REGISTRY.add(req.name, req.node_name, "farm: " + req.farm if req.farm else "this machine", req.out,
                       req.first, req.last)
    set_status(node, job.status)
    try:
        bake(node, req, where)
    except RuntimeError as exc:  # nuke.execute's failure: a missing input, a disk that cannot be written
        REGISTRY.fail(job, f"baking the inputs into {where.bakes} failed: {exc}")
        raise RuntimeError(f"baking the inputs into {where.bakes} failed: {exc}; check both inputs are "
                           f"connected and the folder can be written") from exc
    where.job_file.write_text(json.dumps(req.job_dict(where.plate, where.matte), indent=2) + "\n")
    argv = commands.submit_command(exe, req, where) if req.farm else commands.local_command(exe, req, where)
    task = None if req.farm else nuke.ProgressTask(f"IVI {req.name}")
    run: LocalRun

    def on_line(text: str, progress: int | None) -> None:
        REGISTRY.line(job, text, progress)
        if task is not None:
            if progress is not None:
                task.setProgress(progress)
            if task.isCancelled():  # ProgressTask's cancel button: SIGTERM, ivi-render keeps a checkpoint
                run.cancel()
        if progress is not None:
            set_status(node, job.status)

    def on_exit(returncode: int, cancelled: bool) -> None:
        _TASKS.pop(job.id, None)
        REGISTRY.finish(job, returncode, cancelled or (task is not None and task.isCancelled()))
        if job.has_result:
            try:
                show_result(node)
            except ValueError:  # the node was deleted while it ran: the panel's Load result makes a Read
                return
        set_status(node, job.status)

    run = LocalRun(argv, on_line, on_exit, post=nuke.executeInMainThread, env=commands.subprocess_env())
    try:
        run.start()
    except OSError as exc:
        REGISTRY.fail(job, f"{argv[0]}: {exc}")
        raise
    if task is not None:
        _TASKS[job.id] = task
        task.setMessage(req.out)
    REGISTRY.start(job, argv, run.cancel)
    set_status(node, job.status)
    return job


def bake(node: Any, req: request.InpaintRequest, where: paths.JobPaths) -> None:
    """Write the plate (every frame) and the matte (every frame, or the key frames) with the internal Writes.

    The Writes stay disabled outside this call, so rendering the script never runs them.
    """
    where.bakes.mkdir(parents=True, exist_ok=True)
    jobs = [(knobs.WRITE_PLATE, where.plate, [(req.first, req.last)]),
            (knobs.WRITE_MATTE, where.matte, [(f, f) for f in req.keyframes] or [(req.first, req.last)])]
    for name, pattern, ranges in jobs:
        write = node.node(name)
        write["file"].setValue(pattern)
        write["disable"].setValue(False)
        try:
            for first, last in ranges:
                nuke.execute(write, first, last)
        finally:
            write["disable"].setValue(True)


def show_result(node: Any) -> None:
    """Switch the node to its result (the internal Read follows the output knob) and re-read the files."""
    node[knobs.SHOW_RESULT].setValue(True)
    node.node("ResultRead")["reload"].execute()


def on_load_result(node: Any) -> bool:
    """The Load result button: show the result when every frame is on disk, else say which are missing."""
    try:
        req = request.from_knob_values(knob_values(node), node.name())
    except request.RequestError as exc:
        nuke.message(f"IVI Inpaint ({node.name()}):\n{exc}")
        return False
    missing = paths.missing_frames(req.out, req.first, req.last)
    if missing:
        nuke.message(f"IVI Inpaint ({node.name()}): {len(missing)} of {req.last - req.first + 1} frames of "
                     f"{req.out} are not on disk yet (first missing: {missing[0]}); press Render, or wait for "
                     f"the job to finish")
        return False
    show_result(node)
    set_status(node, "result loaded")
    return True


def load_job_result(job: Job) -> Any:
    """The panel's "load result": switch the job's node to its result, or, when the node is gone, a new Read."""
    node = nuke.toNode(job.node_name)
    if node is not None and node.Class() == knobs.GIZMO_CLASS and node[knobs.OUTPUT].value() == job.out:
        show_result(node)
        return node
    # raw: the frames are scene-linear as ivi-render wrote them, exactly as the gizmo baked them.
    return nuke.nodes.Read(file=job.out, first=job.first, last=job.last, origfirst=job.first,
                           origlast=job.last, raw=True, on_error="black")


def on_create() -> None:
    """addOnCreate callback (menu.py): a node whose result is gone shows its input again."""
    node = nuke.thisNode()
    if not node[knobs.SHOW_RESULT].value():
        return
    try:
        req = request.from_knob_values(knob_values(node), node.name())
    except request.RequestError:
        return
    if not paths.result_exists(req.out, req.first, req.last):
        node[knobs.SHOW_RESULT].setValue(False)


def open_panel() -> Any:
    """The IVI jobs panel, docked beside the Properties bin."""
    import nukescripts  # noqa: PLC0415  (GUI only)

    panel = nukescripts.panels.registerWidgetAsPanel(PANEL_WIDGET, "IVI Jobs", PANEL_ID, True)
    return panel.addToPane(nuke.getPaneFor("Properties.1"))
