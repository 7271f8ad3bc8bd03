"""The IVI_Inpaint gizmo's callbacks: the thin layer that calls `nuke`.

Everything it decides comes from the plain modules (request, paths, sources, commands, registry, runner);
this file only reads knobs and upstream nodes, runs the internal Write nodes, starts the runs, and puts
results back on the node.

Threads: the reader and ticker threads of runner.LocalRun never touch Nuke; they post their callbacks
through nuke.executeInMainThread, so every knob, ProgressTask and registry call below runs on the main
thread. A bake is one frame per posted call (runner.Steps), so Nuke's interface stays live and the progress
bar's cancel is read between frames.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nuke

from . import commands, knobs, paths, request, sources
from .registry import REGISTRY, Job, JobStore, store_path
from .runner import LocalRun, Steps

PANEL_ID = "com.ivi-vfx.jobs"
PANEL_WIDGET = "ivi_nuke.panel.JobsPanel"
JOBS_DIR_ENV = "IVI_JOBS_DIR"
"""Where the job files of scripts go (default ~/.nuke/ivi_jobs): one small JSON file per script."""

_TASKS: dict[int, Any] = {}
"""Job id -> its nuke.ProgressTask (the task's bar lives as long as the object)."""
_PANEL: Any = None
"""The jobs panel, registered once and reused by every press of Jobs panel."""
_WARNED: set[str] = set()
"""Nodes already told that the working space is not scene-linear (once a session each)."""


class StoreState:
    """The script's job store, and whether the registry's listener that saves it is subscribed."""

    def __init__(self) -> None:
        self.store: JobStore | None = None
        self.listening = False


_STORE = StoreState()


def knob_values(node: Any) -> dict[str, Any]:
    """The knobs that request.from_knob_values reads."""
    return {name: node[name].value() for name in knobs.READ_KNOBS}


def set_status(node: Any, text: str) -> None:
    """The status line; a node deleted while its job ran is ignored (Nuke raises ValueError for it)."""
    try:
        node[knobs.STATUS].setValue(text)
    except ValueError:
        pass


def _report(node: Any, what: str, fn: Callable[[], Any]) -> Any:
    """Run a button's action; errors go to the status line and a message naming the knob and the fix."""
    try:
        return fn()
    except (request.RequestError, commands.CommandError, RuntimeError, OSError) as exc:
        set_status(node, f"error: {exc}")
        nuke.message(f"IVI Inpaint ({node.name()}):\n{exc}")
    except Exception:  # a bug: show the traceback instead of losing it in Nuke's terminal
        nuke.message(f"IVI Inpaint ({node.name()}): unexpected error in {what}\n{traceback.format_exc()}")
    return None


def on_render(node: Any) -> list[Job] | None:
    """The Render button: one job per view, run one after another."""
    return _report(node, "Render", lambda: start(node))


def on_predict(node: Any) -> list[Job] | None:
    """The Predict mattes button: the keyframe job's mask propagation alone, its mattes loaded in a Read."""
    return _report(node, "Predict mattes", lambda: start(node, predict=True))


# --- the inputs ------------------------------------------------------------------------------------

def upstream(node: Any, index: int) -> Any:
    """The node behind an input, past any Dots; None when nothing is connected."""
    up = node.input(index)
    while up is not None and up.Class() == "Dot":
        up = up.input(0)
    return up


def working_space() -> str:
    root = nuke.root()
    return str(root[knobs.ROOT_WORKING_SPACE].value()) if knobs.ROOT_WORKING_SPACE in root.knobs() else ""


def input_info(node: Any, index: int) -> sources.InputInfo | None:
    """What sources.choose needs to know of the node behind an input."""
    up = upstream(node, index)
    if up is None:
        return None
    if up.Class() != "Read":
        return sources.InputInfo(up.Class())
    return sources.InputInfo(
        "Read", file=str(nuke.filename(up) or ""), raw=bool(up[knobs.READ_RAW].value()),
        colorspace=str(up[knobs.READ_COLORSPACE].value()), first=int(up[knobs.READ_FIRST].value()),
        last=int(up[knobs.READ_LAST].value()), frame_mode=str(up[knobs.READ_FRAME].value() or ""),
        disabled=bool(up["disable"].value()), working_space=working_space())


def use_input_range(node: Any) -> None:
    """With 'frame range from: input', set first/last to the plate input's range (the result Read follows)."""
    if node[knobs.RANGE_FROM].value() != "input":
        return
    up = upstream(node, 0)
    if up is None:
        raise request.RequestError("plate: nothing is connected to the plate input; connect the plate")
    first, last = int(up.firstFrame()), int(up.lastFrame())
    if (node[knobs.FIRST_FRAME].value(), node[knobs.LAST_FRAME].value()) != (first, last):
        node[knobs.FIRST_FRAME].setValue(first)
        node[knobs.LAST_FRAME].setValue(last)


def warn_working_space(node: Any, job: Job | None = None) -> str:
    """A warning (once a session per node, and on the job) when the working space is not scene-linear."""
    space = working_space()
    if sources.scene_linear(space):
        return ""
    text = (f"the working space is {space!r}, not scene-linear: IVI-VFX trains on scene-linear values; set "
            f"Project Settings > Color > working space to a linear one (scene_linear, ACEScg)")
    if node.name() not in _WARNED:
        _WARNED.add(node.name())
        nuke.message(f"IVI Inpaint ({node.name()}): {text}")
    return text


# --- starting jobs ---------------------------------------------------------------------------------

def start(node: Any, predict: bool = False) -> list[Job]:
    """Plan the job of every view, then bake and run them one after another (a farm: submit each)."""
    running = REGISTRY.active_for(node.name())
    if running is not None:
        raise request.RequestError(f"{node.name()} has a job {running.state} ({running.name}); its inputs are in "
                                   f"use: wait for it to end, or cancel it in the IVI Jobs panel, then press again")
    _attach_store()
    use_input_range(node)
    req = request.from_knob_values(knob_values(node), node.name())
    if predict and not req.uses_keyframes:
        raise request.RequestError(f"{knobs.MATTE_MODE}: Predict mattes needs a keyframe matte; set matte to "
                                   f"'keyframe matte' and give the key frames")
    exe = commands.find_ivi_render(req.executable)
    reqs = request.for_views(req, list(nuke.views()))
    warning = warn_working_space(node)
    planned: list[tuple[request.InpaintRequest, str]] = []
    for r in reqs:
        note = ""
        if not predict:
            plan = paths.plan_output(r.out, r.first, r.last, overwrite=r.overwrite, resume=r.resume)
            if plan.out != r.out:
                r = dataclasses.replace(r, out=plan.out)
            note = plan.note
        planned.append((r, "; ".join(t for t in (note, warning and "working space not scene-linear") if t)))
    version = paths.version_of(planned[0][0].out)
    if not predict and version is not None and version != paths.version_of(req.out):
        node[knobs.OUTPUT].setValue(paths.with_version(req.out, version))  # the result Read follows
    where_run = "farm: " + req.farm if req.farm else "this machine"
    jobs = []
    for r, note in planned:
        folder = paths.job_paths(r).folder
        job = REGISTRY.add(r.name, r.node_name, where_run, paths.job_paths(r).mattes if predict else r.out, r.first,
                           r.last, folder=str(folder), kind="mattes" if predict else "clean", state="queued")
        job.note = note
        jobs.append(job)
    if warning:
        for job in jobs:
            job.log.append("warning: " + warning)

    def run_from(k: int) -> None:
        if k < len(jobs):
            _bake_and_run(node, jobs[k], planned[k][0], exe, predict, then=lambda: run_from(k + 1),
                          rest=jobs[k + 1:])

    run_from(0)
    set_status(node, jobs[0].status)
    return jobs


def _cancel_rest(rest: list[Job], why: str) -> None:
    for job in rest:
        if job.state == "queued":
            job.log.append(why)
            REGISTRY.finish(job, -15, cancelled=True)


def _bake_and_run(node: Any, job: Job, req: request.InpaintRequest, exe: str, predict: bool,
                  then: Callable[[], None], rest: list[Job]) -> None:
    """Bake what needs it (one frame per main-thread call), then write the job file and start ivi-render."""
    where = paths.job_paths(req)
    plate = sources.choose(input_info(node, 0), where.plate, req.first, req.last, req.view)
    predicted = not predict and req.uses_keyframes and predicted_mattes_current(req, where)
    if predicted:
        matte = sources.Source(where.mattes, False, f"the mattes Predict mattes wrote: {where.mattes}")
    else:
        keys = req.keyframes or (req.first, req.last)
        matte = sources.choose(input_info(node, 1), where.matte, min(keys), max(keys), req.view)
    clean = None
    if not predict and upstream(node, 2) is not None:
        clean = sources.choose(input_info(node, 2), where.clean, req.first, req.last, req.view)
    steps: list[Callable[[], None]] = []
    for source, name, frames in (
            (plate, knobs.WRITE_PLATE, range(req.first, req.last + 1)),
            (matte, knobs.WRITE_MATTE, list(req.keyframes) or range(req.first, req.last + 1)),
            (clean, knobs.WRITE_CLEAN, request.parse_frame_list(req.clean_frames) if req.clean_frames
             else range(req.first, req.last + 1))):
        if source is None:
            continue
        job.log.append(f"{name[4:].lower()}: {source.reason}")
        if source.baked:
            steps += [_bake_step(node, name, source.pattern, f, req.view) for f in frames]
    task = nuke.ProgressTask(f"IVI {req.name}" + (" mattes" if predict else ""))
    _TASKS[job.id] = task
    stop = threading.Event()
    job.cancel = stop.set
    REGISTRY.set_state(job, "baking")
    set_status(node, job.status)

    def baked(error: BaseException | None, cancelled: bool) -> None:
        job.cancel = None
        if cancelled or error is not None:
            _TASKS.pop(job.id, None)
            if cancelled:
                job.log.append("cancelled while baking")
                REGISTRY.finish(job, -15, cancelled=True)
            else:
                REGISTRY.fail(job, f"baking the inputs into {where.bakes} failed: {error}")
                nuke.message(f"IVI Inpaint ({node.name()}): baking the inputs into {where.bakes} failed: {error}; "
                             f"check the inputs are connected and the folder can be written")
            _cancel_rest(rest, "not started: the job before it did not end well")
            set_status(node, job.status)
            return
        try:
            _run(node, job, req, exe, predict, where, plate, matte, clean, predicted, task, then, rest)
        except (commands.CommandError, OSError) as exc:
            _TASKS.pop(job.id, None)
            REGISTRY.fail(job, f"{exe}: {exc}")
            _cancel_rest(rest, "not started: the job before it did not end well")
            set_status(node, job.status)

    def progress(done: int, total: int) -> None:
        job.progress = int(100 * done / total)
        task.setProgress(job.progress)
        REGISTRY.set_state(job, "baking")
        set_status(node, job.status)

    if steps:
        where.bakes.mkdir(parents=True, exist_ok=True)
    Steps(steps, post=nuke.executeInMainThread, on_end=baked, on_progress=progress,
          cancelled=lambda: stop.is_set() or task.isCancelled()).start()


def _bake_step(node: Any, name: str, pattern: str, frame: int, view: str | None) -> Callable[[], None]:
    def step() -> None:
        bake_frame(node, name, pattern, frame, view)
    return step


def bake_frame(node: Any, name: str, pattern: str, frame: int, view: str | None = None) -> None:
    """One frame of one internal Write, at full resolution (proxy mode is switched off while it runs).

    The Writes stay disabled outside this call, so rendering the script never runs them.
    """
    write = node.node(name)
    root = nuke.root()
    proxy = bool(root[knobs.ROOT_PROXY].value())
    write["file"].setValue(pattern)
    write["disable"].setValue(False)
    try:
        if proxy:
            root[knobs.ROOT_PROXY].setValue(False)
        nuke.execute(write, frame, frame, 1, [view] if view else None)
    finally:
        write["disable"].setValue(True)
        if proxy:
            root[knobs.ROOT_PROXY].setValue(True)


def predicted_mattes_current(req: request.InpaintRequest, where: paths.JobPaths) -> bool:
    """Whether Predict mattes' mattes are on disk for every frame and made from these knobs (and resume is on)."""
    if not req.resume or not paths.result_exists(where.mattes, req.first, req.last):
        return False
    try:
        return bool(json.loads(where.predict_stamp.read_text()) == req.predict_stamp())
    except (OSError, ValueError):
        return False


def _run(node: Any, job: Job, req: request.InpaintRequest, exe: str, predict: bool, where: paths.JobPaths,
         plate: sources.Source, matte: sources.Source, clean: sources.Source | None, predicted: bool, task: Any,
         then: Callable[[], None], rest: list[Job]) -> None:
    """Write the job file and start ivi-render (or submit for a farm)."""
    where.folder.mkdir(parents=True, exist_ok=True)
    if predict:
        data = req.predict_dict(plate.pattern, matte.pattern, str(where.folder), where.mattes)
        where.predict_file.write_text(json.dumps(data, indent=2) + "\n")
        argv = commands.predict_command(exe, req, where)
    else:
        data = req.job_dict(plate.pattern, matte.pattern, clean.pattern if clean else None, predicted=predicted)
        where.job_file.write_text(json.dumps(data, indent=2) + "\n")
        argv = commands.submit_command(exe, req, where) if req.farm else commands.local_command(exe, req, where)
    baked_any = any(s is not None and s.baked for s in (plate, matte, clean))
    run: LocalRun

    def on_line(text: str, progress: int | None) -> None:
        REGISTRY.line(job, text, progress)
        if progress is not None:
            task.setProgress(progress)
            set_status(node, job.status)

    def on_tick() -> None:  # every half second: the progress bar's cancel, whether or not a line came
        if task.isCancelled():
            run.cancel()

    def on_exit(returncode: int, cancelled: bool) -> None:
        _TASKS.pop(job.id, None)
        REGISTRY.finish(job, returncode, cancelled or task.isCancelled())
        if returncode != 0:
            _cancel_rest(rest, "not started: the job before it did not end well")
            set_status(node, job.status)
            return
        if not req.farm and baked_any:  # the bakes of a 4K shot are gigabytes; a farm job still reads them
            shutil.rmtree(where.bakes, ignore_errors=True)
            job.log.append(f"removed the baked inputs: {where.bakes}")
        try:
            if predict:
                where.predict_stamp.write_text(json.dumps(req.predict_stamp()))
                load_mattes(node, where.mattes, req.first, req.last)
            elif job.has_result:
                show_result(node)
            set_status(node, job.status)
        except ValueError:  # the node was deleted while it ran: the panel's Load result makes a Read
            pass
        then()

    run = LocalRun(argv, on_line, on_exit, post=nuke.executeInMainThread, env=commands.subprocess_env(),
                   on_tick=None if req.farm else on_tick)
    run.start()
    task.setMessage(job.out)
    REGISTRY.start(job, argv, run.cancel, pid=run.pid)
    set_status(node, job.status)


# --- results -----------------------------------------------------------------------------------------

def show_result(node: Any) -> None:
    """Switch the node to its result (the internal Read follows the output knob) and re-read the files."""
    node[knobs.SHOW_RESULT].setValue(True)
    node.node(knobs.RESULT_READ)["reload"].execute()


def load_mattes(node: Any, pattern: str, first: int, last: int) -> Any:
    """The Read of the predicted mattes (``<node>_mattes``), made once and re-read after each prediction."""
    name = f"{node.name()}_mattes"
    read = nuke.toNode(name)
    if read is None:
        read = nuke.nodes.Read(file=pattern, first=first, last=last, origfirst=first, origlast=last, raw=True,
                               on_error="error", name=name)
    else:
        read["file"].setValue(pattern)
        read["reload"].execute()
    return read


def on_load_result(node: Any) -> bool:
    """The Load result button: show the result when every frame is on disk, else say which are missing."""
    try:
        req = request.from_knob_values(knob_values(node), node.name())
        outs = [r.out for r in request.for_views(req, list(nuke.views()))]
    except request.RequestError as exc:
        nuke.message(f"IVI Inpaint ({node.name()}):\n{exc}")
        return False
    for out in outs:
        missing = paths.missing_frames(out, req.first, req.last)
        if missing:
            nuke.message(f"IVI Inpaint ({node.name()}): {len(missing)} of {req.last - req.first + 1} frames of "
                         f"{out} are not on disk yet (first missing: {missing[0]}); press Render, or wait for "
                         f"the job to finish")
            return False
    show_result(node)
    set_status(node, "result loaded")
    return True


def load_job_result(job: Job) -> Any:
    """The panel's "load result": switch the job's node to its result, or, when the node is gone, a new Read."""
    node = nuke.toNode(job.node_name)
    if job.kind == "mattes" and node is not None:
        return load_mattes(node, job.out, job.first, job.last)
    if node is not None and node.Class() == knobs.GIZMO_CLASS and node[knobs.OUTPUT].value() == job.out:
        show_result(node)
        return node
    # raw: the frames are scene-linear as ivi-render wrote them; a missing frame is an error, never black.
    return nuke.nodes.Read(file=job.out, first=job.first, last=job.last, origfirst=job.first,
                           origlast=job.last, raw=True, on_error="error")


# --- node callbacks ------------------------------------------------------------------------------------

def on_create() -> None:
    """addOnCreate callback (menu.py): a node whose result is gone shows its input again; knobs shown to fit."""
    node = nuke.thisNode()
    update_knobs(node)
    if not node[knobs.SHOW_RESULT].value():
        return
    try:
        req = request.from_knob_values(knob_values(node), node.name())
    except request.RequestError:
        return
    if not paths.result_exists(req.out, req.first, req.last):
        node[knobs.SHOW_RESULT].setValue(False)


def update_knobs(node: Any) -> None:
    """Keyframe-only knobs shown only for a keyframe matte; the range knobs editable only for a custom range."""
    keyed = node[knobs.MATTE_MODE].value() == "keyframe matte"
    for name in knobs.KEYFRAME_ONLY:
        node[name].setVisible(keyed)
    custom = node[knobs.RANGE_FROM].value() == "custom"
    for name in (knobs.FIRST_FRAME, knobs.LAST_FRAME):
        node[name].setEnabled(custom)


def on_knob_changed() -> None:
    """addKnobChanged callback (menu.py)."""
    knob = nuke.thisKnob()
    if knob is not None and knob.name() in (knobs.MATTE_MODE, knobs.RANGE_FROM, "showPanel"):
        update_knobs(nuke.thisNode())


# --- the jobs panel and the job file -------------------------------------------------------------------

def jobs_dir() -> Path:
    return Path(os.environ.get(JOBS_DIR_ENV) or Path.home() / ".nuke" / "ivi_jobs")


def _attach_store() -> JobStore | None:
    """The script's job file: read back once (jobs of an earlier session re-attach), then kept up to date."""
    path = store_path(str(nuke.root().name()), jobs_dir())
    state = _STORE
    if path is None or (state.store is not None and state.store.path == path):
        return state.store
    store = JobStore(path)
    state.store = store
    store.attach(REGISTRY)
    if not state.listening:
        state.listening = True
        REGISTRY.subscribe(lambda job: state.store.save_quietly(REGISTRY) if state.store else None)
    store.save_quietly(REGISTRY)
    return store


def reattach_jobs() -> None:
    """addOnScriptLoad callback (menu.py): the script's jobs of an earlier session, in the panel again."""
    _attach_store()


def open_panel() -> Any:
    """The IVI jobs panel, registered once, docked beside the Properties bin unless it is already docked."""
    import nukescripts  # noqa: PLC0415  (GUI only)

    global _PANEL
    _attach_store()
    if _PANEL is None:
        _PANEL = nukescripts.panels.registerWidgetAsPanel(PANEL_WIDGET, "IVI Jobs", PANEL_ID, True)
    if nuke.getPaneFor(PANEL_ID) is None:
        _PANEL.addToPane(nuke.getPaneFor("Properties.1"))
    return _PANEL
