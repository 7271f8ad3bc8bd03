# IVI-VFX plugin start-up, GUI sessions only: the IVI menu, the toolbar and the jobs panel.
import traceback

import nuke

try:
    import ivi_nuke.startup

    ivi_nuke.startup.install_menus(nuke)
except Exception:  # a broken plugin must not stop Nuke from starting
    nuke.tprint("IVI-VFX: menu.py failed\n" + traceback.format_exc())
