"""IVI-VFX inside Nuke: the IVI_Inpaint gizmo's callbacks and the jobs panel.

Nothing here imports torch or the engine (`ivi_vfx`): Nuke bakes its inputs to EXR, writes a
JobSpec (plain JSON) and runs `ivi-render` as a subprocess or submits a farm job, then reads the
result back. Only `gizmo.py` and `startup.py` touch `nuke`, only `panel.py` touches Qt; every
other module is plain Python that the tests import directly.
"""
from __future__ import annotations

GIZMO_VERSION = "4"
"""The version of gizmos/IVI_Inpaint.gizmo that this code reads (its `gizmo_version` knob)."""
