"""What init.py and menu.py do, as functions of the `nuke` module they are given (so tests pass a fake).

init.py runs in every session, render nodes and `nuke -t` included: plugin paths only.
menu.py runs in GUI sessions: the toolbar, the menu and the jobs panel.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from . import knobs

PLUGIN_DIR = Path(__file__).resolve().parents[1]
"""nuke_plugin/: the folder on NUKE_PATH."""
GIZMO_DIR = PLUGIN_DIR.parent / "gizmos"
"""gizmos/ beside it in the repository (or in an installed copy of both folders)."""


def add_plugin_paths(nuke: Any) -> None:
    """Make IVI_Inpaint.gizmo findable by nuke.createNode (every session: a render node loads the gizmo too)."""
    if not (GIZMO_DIR / f"{knobs.GIZMO_CLASS}.gizmo").is_file():
        raise FileNotFoundError(f"{GIZMO_DIR / (knobs.GIZMO_CLASS + '.gizmo')}: missing; install the gizmos/ "
                                f"folder beside {PLUGIN_DIR} (the README's 'In Nuke' section)")
    nuke.pluginAddPath(str(GIZMO_DIR))


def install_menus(nuke: Any) -> None:
    """The IVI toolbar entry (with its icon), the Nuke menu's IVI commands, the node callbacks (result
    frames on create, keyframe knobs shown to fit) and the script's jobs re-attached on load."""
    from . import gizmo  # noqa: PLC0415  (imports nuke: only inside Nuke, or with the tests' fake)

    create = f"nuke.createNode('{knobs.GIZMO_CLASS}')"
    toolbar = nuke.menu("Nodes").addMenu("IVI", icon=knobs.ICON)
    toolbar.addCommand("IVI Inpaint", create, icon=knobs.ICON)
    menu = nuke.menu("Nuke").addMenu("IVI")
    menu.addCommand("IVI Inpaint", create, icon=knobs.ICON)
    menu.addCommand("Jobs panel", "import ivi_nuke.gizmo; ivi_nuke.gizmo.open_panel()")
    nuke.addOnCreate(gizmo.on_create, nodeClass=knobs.GIZMO_CLASS)
    nuke.addKnobChanged(gizmo.on_knob_changed, nodeClass=knobs.GIZMO_CLASS)
    nuke.addOnScriptLoad(gizmo.reattach_jobs)
    import nukescripts  # noqa: PLC0415

    # Registered by name, so Nuke can rebuild the panel when it restores a saved workspace.
    nukescripts.panels.registerWidgetAsPanel(gizmo.PANEL_WIDGET, "IVI Jobs", gizmo.PANEL_ID)
