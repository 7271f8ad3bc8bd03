"""A minimal fake of Nuke's `nuke` module for tests: it records what the plugin creates and calls.

Only what ivi_nuke uses is here. executeInMainThread queues the call; the test's main thread runs
the queue with pump(), as Nuke's event loop would. Every knob and ProgressTask call notes whether it
ran on the main thread (`off_main_thread` lists those that did not).
"""
from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

env: dict[str, Any] = {"gui": True}
NUKE_VERSION_MAJOR = 15
GIZMO_PATH: list[Path] = []
"""Folders where createNode looks for <Class>.gizmo (what pluginAddPath added)."""

log: list[tuple[Any, ...]] = []
off_main_thread: list[str] = []
main_queue: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
tasks: list[ProgressTask] = []
on_execute: Callable[[Node, int, int], None] | None = None
"""Test hook for execute(): e.g. write the frames a Write would write, or raise RuntimeError."""
_nodes: dict[str, Node] = {}
_menus: dict[str, Menu] = {}
_counter = itertools.count(1)
_this: Node | None = None
_this_knob: Knob | None = None
_lock = threading.Lock()
_views: list[str] = ["main"]
_docked: set[str] = set()
"""Panel ids that addToPane has docked (getPaneFor finds them)."""


def _note(what: str) -> None:
    if threading.current_thread() is not threading.main_thread():
        off_main_thread.append(what)


def reset() -> None:
    global on_execute, _this, _this_knob, _root
    for items in (log, off_main_thread, main_queue, tasks, GIZMO_PATH):
        items.clear()
    _nodes.clear()
    _menus.clear()
    _docked.clear()
    _views[:] = ["main"]
    on_execute, _this, _this_knob = None, None, None
    _root = Node("Root", "Root", {"proxy": False, "workingSpaceLUT": "linear", "first_frame": 1, "last_frame": 100})


class Knob:
    def __init__(self, owner: str, name: str, value: Any = None) -> None:
        self.owner, self._name, self._value = owner, name, value
        self.visible, self.enabled = True, True

    def name(self) -> str:
        return self._name

    def value(self) -> Any:
        _note(f"{self.owner}.{self._name}.value")
        return self._value

    def setValue(self, value: Any) -> bool:
        _note(f"{self.owner}.{self._name}.setValue")
        self._value = value
        log.append(("setValue", self.owner, self._name, value))
        return True

    def execute(self) -> None:
        _note(f"{self.owner}.{self._name}.execute")
        log.append(("execute_knob", self.owner, self._name))

    def setVisible(self, visible: bool) -> None:
        _note(f"{self.owner}.{self._name}.setVisible")
        self.visible = bool(visible)

    def setEnabled(self, enabled: bool) -> None:
        _note(f"{self.owner}.{self._name}.setEnabled")
        self.enabled = bool(enabled)


class Node:
    def __init__(self, cls: str, name: str, knobs: dict[str, Any] | None = None,
                 children: dict[str, Node] | None = None) -> None:
        self._class, self._name = cls, name
        self._knobs = {k: Knob(name, k, v) for k, v in (knobs or {}).items()}
        self._children = children or {}
        self._inputs: dict[int, Node] = {}
        self.deleted = False

    def __getitem__(self, name: str) -> Knob:
        if self.deleted:
            raise ValueError("A PythonObject is not attached to a node")
        if name not in self._knobs:
            raise NameError(f"knob {name} does not exist")  # what Nuke raises
        return self._knobs[name]

    def knobs(self) -> dict[str, Knob]:
        return dict(self._knobs)

    def name(self) -> str:
        return self._name

    def Class(self) -> str:
        return self._class

    def node(self, name: str) -> Node | None:
        return self._children.get(name)

    def input(self, index: int) -> Node | None:
        return self._inputs.get(index)

    def setInput(self, index: int, node: Node | None) -> bool:
        if node is None:
            self._inputs.pop(index, None)
        else:
            self._inputs[index] = node
        return True

    def firstFrame(self) -> int:
        """A Read's first knob; anything else the node above it, or the script's range."""
        if "first" in self._knobs:
            return int(self._knobs["first"].value())
        return self._inputs[0].firstFrame() if 0 in self._inputs else int(_root["first_frame"].value())

    def lastFrame(self) -> int:
        if "last" in self._knobs:
            return int(self._knobs["last"].value())
        return self._inputs[0].lastFrame() if 0 in self._inputs else int(_root["last_frame"].value())

    def set_name(self, name: str) -> None:
        self._name = name


def _register(node: Node) -> Node:
    _nodes[node.name()] = node
    log.append(("create", node.Class(), node.name()))
    return node


class _Nodes:
    """nuke.nodes.Read(file=..., ...)"""

    def __getattr__(self, cls: str) -> Callable[..., Node]:
        def make(**knobs: Any) -> Node:
            name = knobs.pop("name", None) or f"{cls}{next(_counter)}"
            defaults = {"reload": None, "disable": False, "raw": False, "colorspace": "default", "frame": ""}
            return _register(Node(cls, name, {**defaults, **knobs}))
        return make


nodes = _Nodes()


def gizmo_node(cls: str, name: str | None = None, **values: Any) -> Node:
    """A node of a gizmo on GIZMO_PATH: its user knobs (defaults from the file, else empty) and internal nodes."""
    from gizmo_file import parse  # noqa: PLC0415

    for folder in GIZMO_PATH:
        path = Path(folder) / f"{cls}.gizmo"
        if path.is_file():
            break
    else:
        raise RuntimeError(f"{cls}: unknown command")  # Nuke's message for a class it cannot find
    gizmo = parse(path)
    empty = {1: "", 2: "", 3: 0, 6: False, 7: 0.0, 26: ""}
    knobs: dict[str, Any] = {}
    for knob in gizmo.knobs.values():
        default = knob.menu[0] if knob.menu else empty.get(knob.type)
        if knob.value is not None and not knob.value.startswith("{"):
            default = {"true": True, "false": False}.get(knob.value, knob.value)
        knobs[knob.name] = default
    knobs.update(values)
    name = name or f"{cls}{next(_counter)}"
    children = {n: Node(c, n, {"file": "", "disable": c == "Write", "reload": None})
                for n, c in gizmo.nodes.items()}
    return _register(Node(cls, name, knobs, children))


def createNode(cls: str, args: str = "", inpanel: bool = True) -> Node:
    return gizmo_node(cls)


def toNode(name: str) -> Node | None:
    node = _nodes.get(name)
    return None if node is None or node.deleted else node


def delete(node: Node) -> None:
    node.deleted = True


def thisNode() -> Node | None:
    return _this


def thisKnob() -> Knob | None:
    return _this_knob


def set_this_knob(knob: Knob | None) -> None:
    global _this_knob
    _this_knob = knob


_root = Node("Root", "Root", {"proxy": False, "workingSpaceLUT": "linear", "first_frame": 1, "last_frame": 100})


def root() -> Node:
    return _root


def set_script(path: str) -> None:
    """What nuke.root().name() returns: the saved script's path ("Root" while unsaved)."""
    _root.set_name(path)


def views() -> list[str]:
    return list(_views)


def set_views(names: list[str]) -> None:
    _views[:] = names


def filename(node: Node, replace: int = 0) -> str | None:
    """The node's file with its expressions evaluated and the frame token kept (the fake has no expressions)."""
    return node["file"].value() if "file" in node.knobs() else None


def set_this_node(node: Node | None) -> None:
    global _this
    _this = node


def execute(node: Node, first: int, last: int, incr: int = 1, views: list[str] | None = None) -> None:
    _note(f"execute {node.name()}")
    log.append(("execute", node.name(), node["file"].value(), node["disable"].value(), first, last, views,
                _root["proxy"].value()))
    if on_execute is not None:
        on_execute(node, first, last)


def message(text: str) -> None:
    _note("message")
    log.append(("message", text))


def executeInMainThread(fn: Callable[..., Any], args: tuple[Any, ...] = ()) -> None:
    with _lock:
        main_queue.append((fn, tuple(args)))


def pump() -> int:
    """Run the queued main-thread calls (call it from the test's main thread); how many ran."""
    with _lock:
        calls, main_queue[:] = list(main_queue), []
    for fn, args in calls:
        fn(*args)
    return len(calls)


class ProgressTask:
    def __init__(self, title: str) -> None:
        _note("ProgressTask")
        self.title, self.progress, self.text, self.cancelled = title, 0, "", False
        tasks.append(self)
        log.append(("ProgressTask", title))

    def setProgress(self, value: int) -> None:
        _note("ProgressTask.setProgress")
        self.progress = value

    def setMessage(self, text: str) -> None:
        _note("ProgressTask.setMessage")
        self.text = text

    def isCancelled(self) -> bool:
        _note("ProgressTask.isCancelled")
        return self.cancelled


def pluginAddPath(path: str, addToSysPath: bool = True) -> None:
    GIZMO_PATH.insert(0, Path(path))
    log.append(("pluginAddPath", path))


class Menu:
    def __init__(self, name: str) -> None:
        self.name = name

    def addMenu(self, name: str, **kwargs: Any) -> Menu:
        log.append(("addMenu", self.name, name))
        return _menus.setdefault(f"{self.name}/{name}", Menu(f"{self.name}/{name}"))

    def addCommand(self, name: str, command: Any = None, shortcut: str = "", icon: str = "", **kwargs: Any) -> None:
        log.append(("addCommand", self.name, name, command))


def menu(name: str) -> Menu:
    return _menus.setdefault(name, Menu(name))


def addOnCreate(fn: Callable[..., Any], args: tuple[Any, ...] = (), kwargs: dict | None = None,
                nodeClass: str = "*") -> None:
    log.append(("addOnCreate", fn, nodeClass))


def getPaneFor(name: str) -> str | None:
    """A pane by name; a panel id only once addToPane docked it."""
    if "." in name and not name.startswith("com."):
        return f"pane:{name}"
    return f"pane:{name}" if name in _docked else None


def addKnobChanged(fn: Callable[..., Any], args: tuple[Any, ...] = (), kwargs: dict | None = None,
                   nodeClass: str = "*") -> None:
    log.append(("addKnobChanged", fn, nodeClass))


def addOnScriptLoad(fn: Callable[..., Any], args: tuple[Any, ...] = (), kwargs: dict | None = None,
                    nodeClass: str = "Root") -> None:
    log.append(("addOnScriptLoad", fn))


def tprint(*args: Any) -> None:
    log.append(("tprint", " ".join(map(str, args))))
