"""The farm's shape: finer scales trained once (scales.ckpt beside the generator's checkpoint), rendered in chunks."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ivi_vfx import checkpoint
from ivi_vfx.errors import CheckpointError
from ivi_vfx.hires import HiresConfig
from ivi_vfx.nets.detail import DetailNet
from ivi_vfx.progressive.scales import Level


def save_levels(path: Path, levels: list[Level], cfg: HiresConfig, *, full: tuple[int, int], model_step: int) -> None:
    """Write the trained finer scales beside the generator's checkpoint (atomically).

    Args:
        cfg: the settings they were trained with (as given, automatic zeros kept: `for_device` is
            applied again where they render, so a GPU node may tile wider than the CPU that trained).
        full: (H, W) of the plate's data window they were planned for.
        model_step: the generator's step they were trained on: a longer training makes them stale.
    """
    checkpoint.save(path, {
        "kind": "finer-scales", "hires": cfg.to_dict(), "full": list(full), "model_step": int(model_step),
        "levels": [{"scale": float(lv.scale), "size": list(lv.size), "width": cfg.width,
                    "model": lv.net.state_dict()} for lv in levels],
    })


def load_levels(path: Path, device: torch.device | str = "cpu") -> tuple[list[Level], dict[str, Any]]:
    """Read finer scales written by `save_levels`: the levels (eval mode, on `device`) and the file's data."""
    data = checkpoint.load(path, map_location=device)
    if data.get("kind") != "finer-scales":
        raise CheckpointError(f"{path}: not a finer-scales file; delete it and run `ivi-render train` again")
    levels = []
    for entry in data["levels"]:
        net = DetailNet(int(entry["width"]))
        try:
            net.load_state_dict(entry["model"])
        except RuntimeError as exc:
            raise CheckpointError(f"{path}: does not fit this version's finer-scale network ({exc}); "
                                  f"run `ivi-render train` again") from exc
        levels.append(Level(scale=float(entry["scale"]), size=(int(entry["size"][0]), int(entry["size"][1])),
                            net=net.to(device).eval()))
    return levels, data


def levels_current(path: Path, cfg: HiresConfig, model_step: int) -> bool:
    """Whether `path` holds finer scales trained with `cfg` on the generator at `model_step`."""
    if not Path(path).is_file():
        return False
    try:
        data = checkpoint.load(path)
    except CheckpointError:
        return False  # a damaged file is trained again
    return data.get("hires") == cfg.to_dict() and data.get("model_step") == model_step
