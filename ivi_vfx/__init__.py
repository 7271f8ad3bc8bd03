"""IVI-VFX: internal video inpainting for VFX plates (the engine; no CLI, Nuke or Qt here)."""
from __future__ import annotations

__version__ = "0.1.0"
