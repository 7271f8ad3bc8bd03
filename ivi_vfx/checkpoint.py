"""Checkpoints: plain dictionaries of tensors and primitives, loadable with `weights_only=True`.

A checkpoint carries the training configuration, the architecture, the shaper and the shot it
was trained on, so a renderer needs nothing else, and a resumed run continues exactly.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ivi_vfx.errors import CheckpointError
from ivi_vfx.io.atomic import atomic_path

FORMAT = "ivi-vfx-checkpoint"
FORMAT_VERSION = 1


def save(path: Path, payload: dict[str, Any]) -> None:
    """Write atomically (temporary name in the same folder, then rename): a kill never leaves half a file."""
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, "format_version": FORMAT_VERSION, **payload}, tmp)


def load(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by `save`; CheckpointError names the file and the fix."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint there; train first or check the path")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged or foreign file
        raise CheckpointError(f"{path}: not a readable IVI-VFX checkpoint ({exc}); delete it and train again") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an IVI-VFX checkpoint; delete it and train again")
    if data.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{path}: written by a newer IVI-VFX (format {data['format_version']}); upgrade ivi-vfx")
    return data


def restore(path: Path, data: dict[str, Any], model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Put a loaded checkpoint's weights and optimiser state into fresh ones; CheckpointError when they do not fit."""
    try:
        model.load_state_dict(data["model"])
        optimizer.load_state_dict(data["optimizer"])
    except (RuntimeError, KeyError, ValueError) as exc:
        raise CheckpointError(f"{path}: does not fit this network ({exc}); delete it and train again") from exc
