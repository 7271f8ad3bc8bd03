"""The knob names and menu values of gizmos/IVI_Inpaint.gizmo: the contract between the file and Python.

Every knob that Python reads or sets is named here once; tests/test_gizmo_file.py parses the gizmo
and checks that each one exists with these menu entries, so a renamed knob fails a test, not a
compositor's render.
"""
from __future__ import annotations

GIZMO_CLASS = "IVI_Inpaint"
"""The node class: the gizmo's file name without `.gizmo`."""

# Knobs the Python side reads.
RANGE_FROM = "range_from"
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
OVERWRITE = "overwrite"
CLEAN_FRAMES = "clean_frames"
RUN_ON = "run_on"
RESUME = "resume"
EXECUTABLE = "executable"
GIZMO_VERSION = "gizmo_version"

# Knobs the Python side sets.
STATUS = "status"
SHOW_RESULT = "show_result"

READ_KNOBS = (RANGE_FROM, FIRST_FRAME, LAST_FRAME, MATTE_MODE, KEY_FRAMES, MAX_SPEED, ROUNDS, MATTE_CHANNEL, PRESET,
              STEPS, WORK_SIZE, OUTPUT, OVERWRITE, CLEAN_FRAMES, RUN_ON, RESUME, EXECUTABLE, GIZMO_VERSION)
"""What `gizmo.knob_values` reads: the inputs of request.from_knob_values."""
SET_KNOBS = (STATUS, SHOW_RESULT)
"""Besides these, Render sets first_frame/last_frame from the plate input (range_from: input) and the output
knob when it versions up."""

# Buttons (PyScript knobs whose one-line script calls gizmo.py).
PREDICT = "predict"
BUTTONS = ("render", PREDICT, "load_result", "open_panel")

KEYFRAME_ONLY = (KEY_FRAMES, MAX_SPEED, ROUNDS, PREDICT)
"""Knobs shown only when the matte is a keyframe matte (gizmo.on_knob_changed)."""

# Internal nodes the Python side drives.
WRITE_PLATE = "BakePlate"
WRITE_MATTE = "BakeMatte"
WRITE_CLEAN = "BakeClean"
RESULT_READ = "ResultRead"
INTERNAL_NODES = (WRITE_PLATE, WRITE_MATTE, WRITE_CLEAN, RESULT_READ, "ResultSwitch")
INPUTS = ("plate", "matte", "clean")
"""The gizmo's inputs, in order (input 0, 1, 2)."""
WRITE_OF_INPUT = {"plate": WRITE_PLATE, "matte": WRITE_MATTE, "clean": WRITE_CLEAN}

# Menu entries, in the gizmo's order (an enum knob's value() is the entry's text).
RANGE_FROMS = ("input", "custom")
MATTE_MODES = ("matte sequence", "keyframe matte")
MATTE_CHANNELS = ("alpha", "red", "green", "blue")
PRESETS = ("auto", "quick", "final", "paper")
RUN_ON_CHOICES = ("this machine", "farm: openjd", "farm: opencue", "farm: deadline")

CHANNEL_TO_EXR = {"alpha": "A", "red": "R", "green": "G", "blue": "B"}
"""Nuke's channel name -> the EXR channel that the baking Write (channels rgba) writes it as."""

# Knobs of nodes outside the gizmo that the Nuke layer reads or sets (a Read upstream, the script's root).
READ_RAW, READ_COLORSPACE, READ_FIRST, READ_LAST, READ_FRAME = "raw", "colorspace", "first", "last", "frame"
ROOT_PROXY = "proxy"
ROOT_WORKING_SPACE = "workingSpaceLUT"
OUTSIDE_KNOBS = (READ_RAW, READ_COLORSPACE, READ_FIRST, READ_LAST, READ_FRAME, ROOT_PROXY, ROOT_WORKING_SPACE)

ICON = "IVI_Inpaint.png"
"""The toolbar icon, in gizmos/ (on the plugin path)."""
