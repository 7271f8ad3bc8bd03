"""Reads a .gizmo file's user knobs and internal nodes (enough of the format for the tests' checks and the fake)."""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

KNOB_TYPES = {1: "string", 2: "file", 3: "int", 4: "enum", 6: "bool", 7: "double", 20: "tab", 22: "pyscript",
              26: "text"}


@dataclass
class UserKnob:
    type: int
    name: str
    menu: list[str] = field(default_factory=list)
    script: str = ""
    value: str | None = None
    """The value line that follows the declaration (``first_frame {{root.first_frame}}``), if any."""


@dataclass
class GizmoFile:
    inputs: int
    knobs: dict[str, UserKnob]
    nodes: dict[str, str]
    """Internal node name -> class."""
    node_knobs: dict[str, dict[str, str]]
    """Internal node name -> its knob lines (name -> raw value)."""


def _quoted(text: str, flag: str) -> str:
    match = re.search(rf' {flag} "((?:[^"\\]|\\.)*)"', text)
    return match.group(1).encode().decode("unicode_escape") if match else ""


def parse(path: Path) -> GizmoFile:
    lines = Path(path).read_text().splitlines()
    inputs, user, nodes, node_knobs, last = 0, {}, {}, {}, None
    body = [line for line in lines if not line.startswith("#")]
    start = body.index("Gizmo {")
    end = body.index("}", start)
    for line in body[start + 1:end]:
        if line.startswith(" addUserKnob {"):
            inner = line[len(" addUserKnob {"):-1]
            kind, name = inner.split()[:2]
            menu = re.search(r" M \{(.*)\}", inner)
            last = UserKnob(int(kind), name, shlex.split(menu.group(1)) if menu else [], _quoted(inner, "T"))
            user[name] = last
        elif line.startswith(" inputs "):
            inputs = int(line.split()[1])
        elif last is not None and line.startswith(f" {last.name} "):
            last.value = line[len(last.name) + 2:]
    current: dict[str, str] = {}
    cls = None
    for line in body[end + 1:]:
        if re.match(r"^ \w+ \{$", line):
            cls, current = line.split()[0], {}
        elif line == " }" and cls:
            name = current.get("name", cls)
            nodes[name], node_knobs[name] = cls, current
            cls = None
        elif cls and line.startswith("  "):
            key, _, value = line.strip().partition(" ")
            current[key] = value
    return GizmoFile(inputs, user, nodes, node_knobs)
