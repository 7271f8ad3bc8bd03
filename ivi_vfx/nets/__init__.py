"""Networks: the inpainting generator (gated convolutions)."""
from __future__ import annotations

from ivi_vfx.nets.generator import Generator, build_generator

__all__ = ["Generator", "build_generator"]
