"""gizmos/IVI_Inpaint.gizmo against the Python that reads it: every knob, menu entry, button and internal node."""
from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
sys.path[:0] = [str(TESTS / "fake_nuke"), str(ROOT / "nuke_plugin")]

from gizmo_file import parse  # noqa: E402

import ivi_nuke  # noqa: E402
from ivi_nuke import gizmo, knobs  # noqa: E402

GIZMO = parse(ROOT / "gizmos" / f"{knobs.GIZMO_CLASS}.gizmo")
TYPES = {knobs.RANGE_FROM: 4, knobs.OVERWRITE: 6, knobs.CLEAN_FRAMES: 1,
         knobs.FIRST_FRAME: 3, knobs.LAST_FRAME: 3, knobs.MATTE_MODE: 4, knobs.KEY_FRAMES: 1, knobs.MAX_SPEED: 7,
         knobs.ROUNDS: 3, knobs.MATTE_CHANNEL: 4,
         knobs.PRESET: 4, knobs.STEPS: 3, knobs.WORK_SIZE: 3, knobs.OUTPUT: 2, knobs.RUN_ON: 4, knobs.RESUME: 6,
         knobs.EXECUTABLE: 1, knobs.GIZMO_VERSION: 1, knobs.STATUS: 26, knobs.SHOW_RESULT: 6}
"""The knob type each name must have: what gizmo.py's value() and setValue() expect of it."""


def test_every_knob_python_reads_or_sets_exists_with_its_type() -> None:
    assert set(TYPES) == set(knobs.READ_KNOBS) | set(knobs.SET_KNOBS)
    for name, kind in TYPES.items():
        assert name in GIZMO.knobs, f"{name} is read by ivi_nuke but missing from the gizmo"
        assert GIZMO.knobs[name].type == kind, f"{name}: type {GIZMO.knobs[name].type}, Python expects {kind}"


@pytest.mark.parametrize("name, entries", [(knobs.MATTE_MODE, knobs.MATTE_MODES),
                                           (knobs.MATTE_CHANNEL, knobs.MATTE_CHANNELS),
                                           (knobs.PRESET, knobs.PRESETS), (knobs.RUN_ON, knobs.RUN_ON_CHOICES),
                                           (knobs.RANGE_FROM, knobs.RANGE_FROMS)])
def test_menus_hold_exactly_the_entries_python_understands(name: str, entries: tuple[str, ...]) -> None:
    assert tuple(GIZMO.knobs[name].menu) == entries


def test_version_knob_matches_the_plugin() -> None:
    assert GIZMO.knobs[knobs.GIZMO_VERSION].value == ivi_nuke.GIZMO_VERSION


def test_buttons_call_functions_that_exist() -> None:
    for name in knobs.BUTTONS:
        script = GIZMO.knobs[name].script
        assert GIZMO.knobs[name].type == 22 and script.startswith("import ivi_nuke.gizmo; ")
        call = re.fullmatch(r"import ivi_nuke\.gizmo; ivi_nuke\.gizmo\.(\w+)\((.*)\)", script)
        assert call and callable(getattr(gizmo, call.group(1), None)), script


def test_internal_nodes_and_their_links_to_user_knobs() -> None:
    assert GIZMO.inputs == 3
    for name in knobs.INTERNAL_NODES:
        assert name in GIZMO.nodes, f"internal node {name} is missing"
    assert [n for n, c in GIZMO.nodes.items() if c == "Input"] == list(knobs.INPUTS)
    for write in knobs.WRITE_OF_INPUT.values():
        w = GIZMO.node_knobs[write]
        # Off unless Render runs them; EXR, lossless, raw, half with all the input's metadata: the plate's
        # linear values, as Nuke reads them, with its timecode, camera and custom metadata.
        assert (w["disable"], w["file_type"], w["raw"], w["datatype"], w["metadata"]) == (
            "true", "exr", "true", '"16 bit half"', '"all metadata"')
        assert w["channels"] == ("all" if write == knobs.WRITE_PLATE else "rgba")  # every channel of the plate
    read = GIZMO.node_knobs[knobs.RESULT_READ]
    assert read["file"] == f'"\\[value parent.{knobs.OUTPUT}]"' and read["raw"] == "true"
    assert read["on_error"] == "error"  # a missing frame fails the render, never a silent black frame
    assert GIZMO.node_knobs["ResultSwitch"]["which"] == f"{{{{parent.{knobs.SHOW_RESULT}}}}}"
    # Every parent.<knob> an internal node refers to is a user knob of the gizmo.
    text = (ROOT / "gizmos" / f"{knobs.GIZMO_CLASS}.gizmo").read_text()
    for ref in set(re.findall(r"parent\.(\w+)", text)):
        assert ref in GIZMO.knobs, f"parent.{ref} does not exist"


def test_python_reads_knobs_only_through_the_named_constants() -> None:
    """A literal node["name"] in the Nuke layer would bypass the checks above; only internal nodes' own knobs may."""
    internal_knobs = {"file", "disable", "reload"}  # of internal nodes and of Reads; others are in knobs.py
    for module in ("gizmo.py", "startup.py"):
        tree = ast.parse((ROOT / "nuke_plugin" / "ivi_nuke" / module).read_text())
        literals = {n.slice.value for n in ast.walk(tree)
                    if isinstance(n, ast.Subscript) and isinstance(n.slice, ast.Constant)
                    and isinstance(n.slice.value, str)}
        assert literals <= internal_knobs, f"{module} reads knobs {literals - internal_knobs} by literal name"


def test_keyframe_only_knobs_and_the_predict_button_exist() -> None:
    for name in knobs.KEYFRAME_ONLY:
        assert name in GIZMO.knobs
    assert GIZMO.knobs[knobs.PREDICT].script == "import ivi_nuke.gizmo; ivi_nuke.gizmo.on_predict(nuke.thisNode())"
