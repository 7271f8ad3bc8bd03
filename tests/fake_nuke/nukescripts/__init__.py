"""A minimal fake of Nuke's `nukescripts` (only panels.registerWidgetAsPanel)."""
from . import panels  # noqa: F401
