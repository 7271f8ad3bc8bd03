"""Bake only what needs it: whether a gizmo input can be given to ivi-render by its files, or must be baked.

Plain Python. The Nuke layer describes the node behind each input (`InputInfo`: Dots skipped); `choose` says
whether ivi-render can read that node's own files (a plain EXR Read: its pixels, pixel types, channels and
metadata reach the engine untouched, nothing is written) or the input must be baked (anything that changes
pixels, colour, frames or format), and why. A bake writes 16-bit half EXRs with all metadata (the gizmo's
internal Writes), at full resolution whatever the proxy mode.

Also here: whether a working space is scene-linear, which the engine assumes of the values it is given.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .request import FRAME_TOKEN, VIEW_TOKEN

LINEAR_COLORSPACES = ("linear", "scene_linear", "default (linear)", "default", "")
"""A Read's colorspace knob values that leave an EXR's scene-linear values as they are (Nuke's default for an
EXR is linear)."""


@dataclass(frozen=True)
class InputInfo:
    """The node behind a gizmo input, as far as `choose` needs it."""

    node_class: str
    """``Read``, ``Grade`` ...; a Dot is followed to the node above it."""
    file: str = ""
    """A Read's file pattern with its expressions evaluated and its frame token kept (nuke.filename)."""
    raw: bool = False
    """A Read's raw knob: no colour conversion."""
    colorspace: str = ""
    """A Read's colorspace knob (``default (linear)``, ``sRGB``, an OCIO name)."""
    first: int = 0
    last: int = 0
    """The Read's frame range."""
    frame_mode: str = ""
    """A Read's frame knob (an expression or offset), empty when frames are read as numbered."""
    disabled: bool = False
    working_space: str = "linear"
    """The script's working space: a Read whose colorspace is the working space converts nothing."""


@dataclass(frozen=True)
class Source:
    """Where ivi-render reads one input from."""

    pattern: str
    """The frame pattern the JobSpec gets."""
    baked: bool
    """True: the internal Write must write `pattern` first."""
    reason: str
    """Why (said in the job's log): ``read by path: ...`` or ``baked: ...``."""


def read_pattern(file: str, view: str | None) -> str:
    """A Read's pattern for one view: %V -> the view's name, %v -> its first letter."""
    if view is None:
        return file
    return file.replace("%V", view).replace("%v", view[:1])


def why_bake(info: InputInfo | None, first: int, last: int, view: str | None) -> str | None:
    """None when ivi-render can read the input's own files for frames first..last; else why it must be baked."""
    if info is None:
        return "not connected"
    if info.node_class != "Read":
        return f"the input is a {info.node_class}, not a Read"
    if info.disabled:
        return "the Read is disabled"
    name = info.file.rsplit("/", 1)[-1]
    if not name.lower().endswith(".exr"):
        return f"{info.file or 'the Read'} is not an EXR sequence"
    if not FRAME_TOKEN.search(name):
        return f"{info.file} has no frame token"
    if VIEW_TOKEN.search(info.file) and view is None:
        return f"{info.file} has a view token but the script has one view"
    if "[" in info.file:
        return f"{info.file} holds an expression that was not evaluated"
    if not info.raw and info.colorspace.strip().lower() not in (*LINEAR_COLORSPACES, info.working_space.lower()):
        return f"the Read converts its colour ({info.colorspace})"
    if info.frame_mode.strip():
        return f"the Read shifts its frames ({info.frame_mode})"
    if info.first > first or info.last < last:
        return f"the Read holds frames {info.first}-{info.last}, not all of {first}-{last}"
    return None


def choose(info: InputInfo | None, bake_pattern: str, first: int, last: int, view: str | None = None) -> Source:
    """The input's own files when it is a plain EXR Read (for `view`), else the bake at `bake_pattern`."""
    reason = why_bake(info, first, last, view)
    if reason is None:
        assert info is not None
        return Source(read_pattern(info.file, view), False, f"read by path: {read_pattern(info.file, view)}")
    return Source(bake_pattern, True, f"baked: {reason}")


_LINEAR_WORDS = re.compile(r"(^|[^a-z])(linear|lin|acescg|aces2065|acescg_|scene_linear)([^a-z]|$)", re.I)


def scene_linear(working_space: str) -> bool:
    """Whether a working space (Nuke's workingSpaceLUT: ``linear``, ``scene_linear``, ``ACES - ACEScg``) is
    scene-linear, which the engine's training assumes. ``Linear Rec.709 (sRGB)`` is; ``sRGB``, ``ACEScct`` and
    ``Cineon`` are not."""
    name = working_space.strip()
    if not name:
        return True  # Nuke's default working space is linear
    if re.search(r"acescct|acescc\b|log|cineon|gamma", name, re.I):
        return False
    return bool(_LINEAR_WORDS.search(name.replace("-", " ")))
