# IVI-VFX plugin start-up, every Nuke session (render nodes and `nuke -t` too): plugin paths only.
# Install: add this folder (nuke_plugin/) to NUKE_PATH; gizmos/ must sit beside it.
import traceback

import nuke

try:
    import ivi_nuke.startup

    ivi_nuke.startup.add_plugin_paths(nuke)
except Exception:  # a broken plugin must not stop Nuke from starting
    nuke.tprint("IVI-VFX: init.py failed\n" + traceback.format_exc())
