"""Fake nukescripts.panels: records registerWidgetAsPanel and addToPane."""
from __future__ import annotations

from typing import Any

import nuke


class _Panel:
    def __init__(self, widget: str, name: str, panel_id: str) -> None:
        self.widget, self.name, self.id = widget, name, panel_id

    def addToPane(self, pane: Any) -> _Panel:
        nuke.log.append(("addToPane", self.id, pane))
        nuke._docked.add(self.id)
        return self


def registerWidgetAsPanel(widget: str, name: str, panel_id: str, create: bool = False) -> _Panel | None:
    nuke.log.append(("registerWidgetAsPanel", widget, name, panel_id, create))
    return _Panel(widget, name, panel_id) if create else None
