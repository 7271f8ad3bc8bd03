"""Shared fixtures: tiny real EXR shots written into tmp_path."""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from exr_helpers import write_test_exr


@dataclass
class TinyShot:
    folder: Path
    plate: str
    mask: str
    frames: list[int]
    plates: np.ndarray   # (T, H, W, 3) float32 as written (half-rounded)
    mattes: np.ndarray   # (T, H, W) float32 {0, 1}

    def digest(self) -> str:
        """Hash of every input file, to prove a run left its inputs untouched."""
        h = hashlib.sha256()
        for p in sorted(self.folder.glob("*.exr")):
            h.update(p.name.encode())
            h.update(p.read_bytes())
        return h.hexdigest()


def make_tiny_shot(folder: Path, count: int = 5, height: int = 24, width: int = 32, first: int = 1001,
                   seed: int = 0, empty_frames: tuple[int, ...] = (), **plate_kwargs) -> TinyShot:
    """A textured background panning under a moving square object; the square's matte (1 = fill)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    wall = rng.uniform(0.02, 0.8, (height, width + 2 * count, 3)).astype(np.float32)
    wall = (wall + np.roll(wall, 1, 0) + np.roll(wall, 1, 1)) / 3  # some spatial structure
    plates, mattes = [], []
    for t in range(count):
        bg = wall[:, 2 * t: 2 * t + width].copy()
        matte = np.zeros((height, width), np.float32)
        if t not in empty_frames:
            y0, x0 = height // 3, 4 + 3 * t
            matte[y0:y0 + 7, x0:x0 + 7] = 1
            bg[matte > 0] = (0.9, 0.1, 0.1)
        plates.append(bg.astype(np.float16).astype(np.float32))
        mattes.append(matte)
    frames = list(range(first, first + count))
    for t, f in enumerate(frames):
        rgba = np.concatenate([plates[t], np.ones((height, width, 1), np.float32)], -1)
        write_test_exr(folder / f"plate.{f:04d}.exr", rgba, **plate_kwargs)
        write_test_exr(folder / f"mask.{f:04d}.exr", mattes[t][..., None], channels=("A",))
    return TinyShot(folder, str(folder / "plate.####.exr"), str(folder / "mask.####.exr"), frames,
                    np.stack(plates), np.stack(mattes))


@pytest.fixture
def tiny_shot(tmp_path: Path) -> TinyShot:
    return make_tiny_shot(tmp_path / "shot")


@contextmanager
def learning_rates() -> Iterator[list[float]]:
    """Within it, every Adam step appends its learning rate (the first group's) to the yielded list."""
    seen: list[float] = []
    original = torch.optim.Adam.step

    def spy(self, *args, **kwargs):  # noqa: ANN001
        seen.append(self.param_groups[0]["lr"])
        return original(self, *args, **kwargs)

    torch.optim.Adam.step = spy  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        torch.optim.Adam.step = original  # type: ignore[method-assign]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `cuda` need a CUDA GPU: skipped without one (bench/gpu_check.py runs them on one)."""
    marked = [item for item in items if item.get_closest_marker("cuda")]
    if not marked:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
    for item in marked:
        item.add_marker(skip)


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """One torch thread for a test (two on a loaded 2-core machine stall), and the count as found afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
