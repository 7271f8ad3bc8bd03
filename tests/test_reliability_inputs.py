"""Reliability of what the network learns from: nothing under the matte and no non-finite pixel reaches a
known working pixel, and a matte that leaves nothing known is refused by name (issue 24)."""
from __future__ import annotations

import logging
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner, Result

from conftest import TinyShot, make_tiny_shot
from exr_helpers import write_test_exr
from ivi_cli.main import cli
from ivi_vfx.config import TrainConfig
from ivi_vfx.errors import MatteError
from ivi_vfx.io.sequence import find_sequence
from ivi_vfx.shot import Shot, load_shot
from ivi_vfx.train import fit

BACKGROUND = 0.25  # exact in half
TINY = TrainConfig(preset="test", cnum=8, steps=2, batch_size=2, work_size=32, log_every=1, validate_every=0,
                   threads=1)  # one thread: two on a loaded 2-core machine stall


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # two on a loaded 2-core machine stall


def run_cli(*args: str) -> Result:
    """`ivi-render ARGS` in this process (seconds faster than a subprocess); leaves logging and SIGTERM as found."""
    root, handlers, level = logging.getLogger(), list(logging.getLogger().handlers), logging.getLogger().level
    sigterm = signal.getsignal(signal.SIGTERM)
    try:
        return CliRunner().invoke(cli, list(args), catch_exceptions=True)
    finally:
        root.handlers[:], root.level = handlers, level
        signal.signal(signal.SIGTERM, sigterm)


def _write(folder: Path, plates: list[np.ndarray], mattes: list[np.ndarray]) -> tuple[str, str]:
    for t, (plate, matte) in enumerate(zip(plates, mattes)):
        rgba = np.concatenate([plate, np.ones((*plate.shape[:2], 1), np.float32)], -1)
        write_test_exr(folder / f"plate.{1001 + t}.exr", rgba)
        write_test_exr(folder / f"mask.{1001 + t}.exr", matte[..., None], channels=("A",))
    return str(folder / "plate.####.exr"), str(folder / "mask.####.exr")


def _load(plate: str, mask: str, work_size: int, dilate: int = 0) -> Shot:
    return load_shot(find_sequence(plate), find_sequence(mask), work_size=work_size, dilate=dilate)


def _known_linear(shot: Shot) -> torch.Tensor:
    """(n, 3) scene-linear values of every working pixel that training takes as known."""
    linear = shot.shaper.decode(shot.images)  # (T, 3, H, W)
    known = (shot.valid * (1 - shot.holes))[:, 0] > 0
    return linear.permute(0, 2, 3, 1)[known]


@pytest.mark.parametrize("work_size", [64, 32, 20])  # shrink factors 2, 4 and 6.4
@pytest.mark.parametrize("under", ["object", "nan", "inf"])
def test_nothing_under_the_matte_reaches_a_known_working_pixel(tmp_path: Path, work_size: int, under: str) -> None:
    """The plate was shrunk with an antialiased filter and the matte with a max-pool: at a factor of 2 and
    more the object's colour (or NaN made 0) reached one working pixel past the working hole."""
    plate = np.full((96, 128, 3), BACKGROUND, np.float32)
    matte = np.zeros((96, 128), np.float32)
    matte[38:61, 45:83] = 1  # edges even and odd, at no multiple of the larger factors
    plate[matte > 0] = {"object": (8.0, 0.0, 0.5), "nan": (np.nan,) * 3, "inf": (np.inf, -np.inf, np.inf)}[under]
    shot = _load(*_write(tmp_path, [plate], [matte]), work_size=work_size)
    assert shot.geometry.scaled and shot.holes.sum() > 0
    known = _known_linear(shot)
    assert torch.isfinite(shot.images).all()
    torch.testing.assert_close(known, torch.full_like(known, BACKGROUND), atol=1e-4, rtol=1e-4)


def test_the_dilated_matte_is_what_is_left_out(tmp_path: Path) -> None:
    """The object's fringe outside the drawn matte is what --dilate is for: the grown matte is left out too."""
    plate = np.full((96, 128, 3), BACKGROUND, np.float32)
    matte = np.zeros((96, 128), np.float32)
    matte[40:60, 50:80] = 1
    plate[38:62, 48:82] = (4.0, 0.0, 0.0)  # a 2-pixel fringe outside the matte
    shot = _load(*_write(tmp_path, [plate], [matte]), work_size=32, dilate=2)
    known = _known_linear(shot)
    torch.testing.assert_close(known, torch.full_like(known, BACKGROUND), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("work_size", [64, 32])  # at the plate's size and shrunk by 2
def test_one_infinite_pixel_changes_neither_the_range_nor_the_rest_of_the_frame(tmp_path: Path,
                                                                                 work_size: int) -> None:
    """+inf became 65504 before resizing and the shaper took it as the shot's brightest value: one pixel
    compressed the whole network range (and, scaled, spread 65504 into its working pixel)."""
    rng = np.random.default_rng(0)
    plate = rng.uniform(0.05, 2.0, (48, 64, 3)).astype(np.float16).astype(np.float32)
    matte = np.zeros((48, 64), np.float32)
    matte[20:30, 30:40] = 1
    clean = _load(*_write(tmp_path / "clean", [plate], [matte]), work_size=work_size)
    hot = plate.copy()
    hot[0, 0] = (np.inf, np.nan, -np.inf)
    damaged = _load(*_write(tmp_path / "hot", [hot], [matte]), work_size=work_size)
    assert damaged.shaper == clean.shaper and 1.5 < clean.shaper.hi <= float(plate.max())
    away = torch.ones_like(clean.images, dtype=torch.bool)
    away[..., :3, :3] = False  # the working pixels whose filter reaches the damaged one
    assert torch.equal(damaged.images[away], clean.images[away])
    corner = damaged.shaper.decode(damaged.images[0, :, 0, 0])
    assert torch.isfinite(corner).all() and 0.05 <= float(corner.min()) and float(corner.max()) <= 2.0


def test_a_nan_region_outside_the_matte_takes_its_surroundings(tmp_path: Path) -> None:
    """A plate's NaN patch outside the matte is a loss target like any known pixel: it takes the values
    around it, not 0 (which taught the network black there)."""
    plate = np.full((32, 48, 3), BACKGROUND, np.float32)
    plate[4:12, 4:12] = np.nan
    matte = np.zeros((32, 48), np.float32)
    matte[16:24, 30:40] = 1
    shot = _load(*_write(tmp_path, [plate], [matte]), work_size=48)
    known = _known_linear(shot)
    torch.testing.assert_close(known, torch.full_like(known, BACKGROUND), atol=1e-4, rtol=1e-4)


# --- a matte that leaves nothing known ------------------------------------------------------------


def _cover_every_pixel(shot: TinyShot) -> None:
    for frame in shot.frames:
        write_test_exr(shot.folder / f"mask.{frame}.exr", np.ones((48, 64, 1), np.float32), channels=("A",))


def _cover_every_working_pixel(shot: TinyShot) -> None:
    """Known plate pixels on a 4-pixel lattice only: at a quarter of the size every working pixel holds hole."""
    matte = np.ones((48, 64, 1), np.float32)
    matte[1::4, 1::4] = 0
    for frame in shot.frames:
        write_test_exr(shot.folder / f"mask.{frame}.exr", matte, channels=("A",))


def test_fit_refuses_a_matte_over_every_pixel(tmp_path: Path) -> None:
    tiny = make_tiny_shot(tmp_path / "shot", height=48, width=64)
    _cover_every_pixel(tiny)
    shot = _load(tiny.plate, tiny.mask, work_size=32)
    with pytest.raises(MatteError, match=r"mask\.####\.exr covers every pixel of every frame \(5 frames"):
        fit(shot, TINY, checkpoint=tmp_path / "model.ckpt")
    assert not (tmp_path / "model.ckpt").exists()


@pytest.mark.parametrize("damage, words", [
    (_cover_every_pixel, ["mask.####.exr", "covers every pixel of every frame", "object alone"]),
    (_cover_every_working_pixel, ["mask.####.exr", "working size 16x12", "--work-size towards 64"]),
])
def test_inpaint_refuses_a_matte_that_leaves_nothing_known(tmp_path: Path, damage, words: list[str]) -> None:  # noqa: ANN001
    """It exited 0 and wrote five 'clean' frames of pure invention."""
    tiny = make_tiny_shot(tmp_path / "shot", height=48, width=64)
    damage(tiny)
    before = tiny.digest()
    out = tmp_path / "out"
    r = run_cli("inpaint", "--plate", tiny.plate, "--mask", tiny.mask, "--out", str(out / "clean.####.exr"),
                "--preset", "quick", "--steps", "2", "--work-size", "16", "--device", "cpu")
    assert r.exit_code == 1, (r.output, r.exception)
    message = r.output.strip().splitlines()[-1]
    assert message.startswith("ivi-render: error:"), r.output
    for word in words:
        assert word in message, message
    assert not list(out.glob("*.exr")) if out.exists() else True
    assert not (out / ".ivi/clean/model.ckpt").exists()
    assert tiny.digest() == before


def test_a_matte_over_some_frames_alone_still_trains(tmp_path: Path) -> None:
    """Frames wholly under the matte are filled from the others: only a shot with nothing known is refused."""
    tiny = make_tiny_shot(tmp_path / "shot")
    write_test_exr(tiny.folder / "mask.1003.exr", np.ones((24, 32, 1), np.float32), channels=("A",))
    result = fit(_load(tiny.plate, tiny.mask, work_size=32), TINY)
    assert result.step == 2
