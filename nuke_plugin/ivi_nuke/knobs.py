"""The knob names and menu values of gizmos/IVI_Inpaint.gizmo: the contract between the file and Python.

Every knob that Python reads or sets is named here once; tests/test_gizmo_file.py parses the gizmo
and checks that each one exists with these menu entries, so a renamed knob fails a test, not a
compositor's render.
"""
from __future__ import annotations

GIZMO_CLASS = "IVI_Inpaint"
"""The node class: the gizmo's file name without `.gizmo`."""

# Knobs the Python side reads.
FIRST_FRAME = "first_frame"
LAST_FRAME = "last_frame"
MATTE_MODE = "matte_mode"
KEY_FRAMES = "key_frames"
MAX_SPEED = "max_speed"
ROUNDS = "rounds"
MATTE_CHANNEL = "matte_channel"
PRESET = "preset"
STEPS = "steps"
WORK_SIZE = "work_size"
OUTPUT = "output"
RUN_ON = "run_on"
RESUME = "resume"
EXECUTABLE = "executable"
GIZMO_VERSION = "gizmo_version"

# Knobs the Python side sets.
STATUS = "status"
SHOW_RESULT = "show_result"

READ_KNOBS = (FIRST_FRAME, LAST_FRAME, MATTE_MODE, KEY_FRAMES, MAX_SPEED, ROUNDS, MATTE_CHANNEL, PRESET, STEPS,
              WORK_SIZE, OUTPUT, RUN_ON, RESUME, EXECUTABLE, GIZMO_VERSION)
"""What `gizmo.knob_values` reads: the inputs of request.from_knob_values."""
SET_KNOBS = (STATUS, SHOW_RESULT)

# Buttons (PyScript knobs whose one-line script calls gizmo.py).
BUTTONS = ("render", "load_result", "open_panel")

# Internal nodes the Python side drives.
WRITE_PLATE = "BakePlate"
WRITE_MATTE = "BakeMatte"
INTERNAL_NODES = (WRITE_PLATE, WRITE_MATTE, "ResultRead", "ResultSwitch")

# Menu entries, in the gizmo's order (an enum knob's value() is the entry's text).
MATTE_MODES = ("matte sequence", "keyframe matte")
MATTE_CHANNELS = ("alpha", "red", "green", "blue")
PRESETS = ("auto", "quick", "final", "paper")
RUN_ON_CHOICES = ("this machine", "farm: openjd", "farm: opencue", "farm: deadline")

CHANNEL_TO_EXR = {"alpha": "A", "red": "R", "green": "G", "blue": "B"}
"""Nuke's channel name -> the EXR channel that the baking Write (channels rgba) writes it as."""
