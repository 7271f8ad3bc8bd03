"""The carry of a shot, in memory and in its job folder (carry.npz)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ivi_vfx.carry.chains import Hits
from ivi_vfx.carry.still import Still
from ivi_vfx.errors import ConfigError
from ivi_vfx.io.atomic import atomic_path

VERSION = 2
"""2: the still backgrounds of locked-off runs (a version-1 file reads as a carry without them)."""


@dataclass
class Carry:
    """What a shot's frames show of each other's mattes, at working resolution.

    Attributes:
        frames: the shot's frame numbers, in order (index t of the lists below).
        work: (h, w) working resolution the carry was traced at.
        exposure: (T, 3) float32 log exposure of each frame against the first, per channel.
        clean: shot indices of the frames whose source picture is a clean reference.
        static: (T-1,) bool: pairs of neighbouring frames found locked off.
        hits: per frame, where other frames show its traced matte pixels (chains.Hits).
        values: per frame, (n, 3) float32 scene-linear working-resolution values carried into
            its traced pixels (0 where nothing shows one).
        stills: the still background of each locked-off run, at full resolution (still.py).
    """

    frames: tuple[int, ...]
    work: tuple[int, int]
    exposure: np.ndarray
    clean: tuple[int, ...]
    static: np.ndarray
    hits: list[Hits]
    values: list[np.ndarray]
    stills: list[Still] = field(default_factory=list)

    def point_confidence(self, t: int) -> np.ndarray:
        """(n,) float32 confidence of frame t's traced pixels: the weight of each one's best hit."""
        return self.hits[t].best

    def confidence(self, t: int) -> np.ndarray:
        """(h, w) float32 confidence of frame t at working resolution: 0 off the traced pixels."""
        h, w = self.work
        out = np.zeros(h * w, np.float32)
        out[self.hits[t].points] = self.point_confidence(t)
        return out.reshape(h, w)

    def share(self, trust: float) -> float:
        """The share of all traced pixels carried with at least `trust` confidence (0..1)."""
        traced = sum(len(h.points) for h in self.hits)
        carried = sum(int((h.best >= trust).sum()) for h in self.hits)
        return carried / traced if traced else 1.0


def save_carry(path: Path, carry: Carry, fingerprint: str) -> Path:
    """Write a carry atomically, with the fingerprint of the shot and settings it was traced for."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {
        "version": np.array(VERSION), "fingerprint": np.array(fingerprint), "frames": np.array(carry.frames),
        "work": np.array(carry.work), "exposure": carry.exposure, "clean": np.array(carry.clean, np.int64),
        "static": carry.static,
    }
    for t, (hits, value) in enumerate(zip(carry.hits, carry.values)):
        arrays |= {f"points_{t}": hits.points, f"source_{t}": hits.source, f"pos_{t}": hits.pos,
                   f"weight_{t}": hits.weight, f"value_{t}": value}
    for k, still in enumerate(carry.stills):
        arrays |= {f"still_run_{k}": np.array([still.first, still.last]), f"still_box_{k}": np.array(still.box),
                   f"still_mean_{k}": still.mean, f"still_count_{k}": still.count}
    with atomic_path(path) as tmp, open(tmp, "wb") as file:  # a file object: savez would append .npz to a name
        np.savez_compressed(file, **arrays)  # type: ignore[arg-type]
    return path


def load_carry(path: Path, fingerprint: str | None = None) -> Carry | None:
    """Read a carry; None when there is none, or (with `fingerprint`) it was traced for another shot.

    Raises:
        ConfigError: the file is not a carry this version reads (names it and the fix).
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            if int(data["version"]) > VERSION:
                raise ConfigError(f"{path}: made by a newer IVI-VFX; upgrade ivi-vfx, or delete it to trace again")
            if fingerprint is not None and str(data["fingerprint"]) != fingerprint:
                return None
            count = len(data["frames"])
            hits = [Hits(points=data[f"points_{t}"], source=data[f"source_{t}"], pos=data[f"pos_{t}"],
                         weight=data[f"weight_{t}"]) for t in range(count)]
            stills = [_still(data, k) for k in range(sum(name.startswith("still_run_") for name in data.files))]
            return Carry(frames=tuple(int(f) for f in data["frames"]),
                         work=(int(data["work"][0]), int(data["work"][1])), exposure=data["exposure"],
                         clean=tuple(int(c) for c in data["clean"]), static=data["static"], hits=hits,
                         values=[data[f"value_{t}"] for t in range(count)], stills=stills)
    except (OSError, KeyError, ValueError) as exc:
        raise ConfigError(f"{path}: not a readable carry ({exc}); delete it and train again to trace it") from exc


def _still(data: np.lib.npyio.NpzFile, k: int) -> Still:
    """The k-th still background of a carry file."""
    first, last = (int(v) for v in data[f"still_run_{k}"])
    x0, y0, x1, y1 = (int(v) for v in data[f"still_box_{k}"])
    return Still(first=first, last=last, box=(x0, y0, x1, y1), mean=data[f"still_mean_{k}"],
                 count=data[f"still_count_{k}"])
