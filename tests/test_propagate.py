"""Mask propagation: from the object's roto on keyframes to mattes that cover it on every frame."""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import OpenEXR
import pytest
import torch

from exr_helpers import write_test_exr
from ivi_vfx.config import PRESET_NAMES, PropagateConfig, propagate_config
from ivi_vfx.errors import CheckpointError
from ivi_vfx.io.sequence import find_sequence
from ivi_vfx.mattes.fitting import fit_propagation, load_propagation
from ivi_vfx.mattes.keys import load_keys
from ivi_vfx.mattes.sampling import PasteSampler, weighted_bce
from ivi_vfx.mattes.writing import predict_matte
from ivi_vfx.nets.unet import build_unet
from ivi_vfx.shot import load_frames

TINY = PropagateConfig(preset="test", width=8, steps=250, batch_size=4, lr=1e-3, work_size=64, log_every=40,
                       checkpoint_every=1000)


@dataclass
class ObjectShot:
    plate: str
    roto: str
    frames: list[int]
    truth: np.ndarray  # (T, H, W) bool: where the object is


def make_object_shot(folder: Path, count: int = 6, height: int = 40, width: int = 56,
                     key_frames: tuple[int, ...] = (0,)) -> ObjectShot:
    """A checkered object crossing a panning random wall; the roto written on `key_frames` only."""
    rng = np.random.default_rng(0)
    wall = rng.uniform(0.05, 0.6, (height, width + 3 * count, 3)).astype(np.float32)
    yy, xx = np.mgrid[:10, :10]
    obj = np.where(((yy // 2 + xx // 2) % 2)[..., None] > 0, (0.9, 0.8, 0.1), (0.1, 0.2, 0.9)).astype(np.float32)
    truth = []
    for t in range(count):
        bg = wall[:, 3 * t: 3 * t + width].copy()
        matte = np.zeros((height, width), np.float32)
        y0, x0 = 8 + 2 * t, 5 + 6 * t
        bg[y0:y0 + 10, x0:x0 + 10] = obj
        matte[y0:y0 + 10, x0:x0 + 10] = 1
        truth.append(matte > 0)
        write_test_exr(folder / f"plate.{1001 + t}.exr", np.dstack([bg, np.ones((height, width, 1), np.float32)]))
        if t in key_frames:
            write_test_exr(folder / f"roto.{1001 + t}.exr", matte, channels=("A",))
    return ObjectShot(str(folder / "plate.####.exr"), str(folder / "roto.####.exr"),
                      list(range(1001, 1001 + count)), np.stack(truth))


def _keys(shot: ObjectShot, key_frames: list[int]):
    return load_keys(load_frames(find_sequence(shot.plate), work_size=64), find_sequence(shot.roto, key_frames))


def test_predicted_mattes_cover_the_moving_object(tmp_path: Path) -> None:
    shot = make_object_shot(tmp_path)
    keys = _keys(shot, [1001])
    result = fit_propagation(keys, TINY)
    recalls, ious = [], []
    for t, frame in enumerate(shot.frames):
        matte, truth = predict_matte(result.model, keys, frame, TINY), shot.truth[t]
        recalls.append((matte & truth).sum() / truth.sum())
        ious.append((matte & truth).sum() / (matte | truth).sum())
    assert recalls[0] == 1.0 and ious[0] == 1.0  # the key frame keeps the user's roto
    assert min(recalls[1:]) >= 0.9, recalls
    assert np.mean(ious[1:]) >= 0.4, ious


def test_samples_paste_the_object_and_leave_its_own_place_out_of_the_loss(tmp_path: Path) -> None:
    shot = make_object_shot(tmp_path, key_frames=(0, 4))
    keys = _keys(shot, [1001, 1005])
    cfg = TINY.replace(batch_size=16)
    inputs, target, weight = PasteSampler(keys, cfg, torch.Generator().manual_seed(0)).draw()
    sources = keys.frames.images[[0, 4]]
    for b in range(16):
        # Outside the pasted copy, the input is one of the two keyframes, untouched.
        outside = target[b, 0] == 0
        matches = [torch.equal(inputs[b][:, outside], src[:, outside]) for src in sources]
        assert any(matches)
        own = keys.mattes[0 if matches[0] else 1][0]
        assert (weight[b, 0][own > 0] == 0).all()
        assert torch.allclose(weight[b, 0][(target[b, 0] > 0) & (own == 0)], torch.tensor(0.8))
        assert torch.allclose(weight[b, 0][(target[b, 0] == 0) & (own == 0)], torch.tensor(0.2))
        # The pasted copy is the object, jittered in size: about as many pixels as the roto.
        assert 0.5 * own.sum() <= target[b, 0].sum() <= 1.8 * own.sum()
    both = {bool(torch.equal(inputs[b][:, target[b, 0] == 0], sources[0][:, target[b, 0] == 0]))
            for b in range(16)}
    assert both == {True, False}  # both keyframes teach


def test_object_weight_makes_a_miss_cost_more_than_a_false_alarm() -> None:
    target = torch.tensor([[[[1.0, 0.0]]]])
    weight = torch.where(target > 0, 0.8, 0.2)
    miss = weighted_bce(torch.tensor([[[[-3.0, -3.0]]]]), target, weight)
    false_alarm = weighted_bce(torch.tensor([[[[3.0, 3.0]]]]), target, weight)
    assert miss > 3 * false_alarm


def test_unet_is_the_reference_size_and_takes_any_frame_size() -> None:
    # The reference's 31,032,837 parameters, less 580 of its head: one 3x3 conv (577) instead of conv(2,
    # 3x3) + ReLU + conv(1, 1x1) (1,157), whose two ReLU channels can leave the logit one way to move.
    assert sum(p.numel() for p in build_unet(64).parameters()) == 31_032_837 - 580
    assert build_unet(4)(torch.zeros(1, 3, 37, 50)).shape == (1, 1, 37, 50)


def _ivi(*args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("ivi-render")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})


def test_propagate_command_writes_a_matte_per_frame_and_resumes(tmp_path: Path) -> None:
    shot = make_object_shot(tmp_path / "shot")
    out = tmp_path / "mattes" / "matte.####.exr"
    args = ["propagate", "--plate", shot.plate, "--key-mask", shot.roto, "--key-frames", "1001", "--out", str(out),
            "--preset", "quick", "--propagate-steps", "4", "--propagate-work-size", "32", "--device", "cpu"]
    r = _ivi(*args)
    assert r.returncode == 0, r.stderr
    assert "Progress: 100%" in r.stdout
    for t, frame in enumerate(shot.frames):
        matte = OpenEXR.File(str(tmp_path / "mattes" / f"matte.{frame}.exr"), separate_channels=True)
        channels = matte.channels()
        assert list(channels) == ["A"]
        plate = OpenEXR.File(str(tmp_path / "shot" / f"plate.{frame}.exr"))
        assert matte.header()["capDate"] == plate.header()["capDate"]  # the plate's date, not the matte's writing
        if t == 0:
            assert np.array_equal(channels["A"].pixels > 0, shot.truth[0])
    again = _ivi(*args, "--overwrite", "--propagate-steps", "6")
    assert again.returncode == 0 and "resuming propagation" in again.stderr and "step 6/6" in again.stderr
    # A checkpoint of the reference's head (an earlier IVI-VFX) is not loaded: named, and retrained afresh.
    path = tmp_path / "mattes" / ".ivi" / "matte" / "propagate.ckpt"
    data = torch.load(path, weights_only=False)
    del data["arch"]["head"]
    torch.save(data, path)
    with pytest.raises(CheckpointError, match="earlier IVI-VFX.*--no-resume"):
        load_propagation(path)
    fresh = _ivi(*args, "--overwrite")
    assert fresh.returncode == 0 and "starting afresh" in fresh.stderr and "step 4/4" in fresh.stderr


@pytest.mark.parametrize("case", ["outside", "empty", "no_keys_on_disk"])
def test_bad_keys_are_named_and_nothing_is_written(tmp_path: Path, case: str) -> None:
    shot = make_object_shot(tmp_path / "shot")
    keys = "1001"
    if case == "outside":
        write_test_exr(tmp_path / "shot" / "roto.1090.exr", shot.truth[0].astype(np.float32), channels=("A",))
        keys, expect = "1090", "key frame 1090 is not among the plate's frames"
    elif case == "empty":
        write_test_exr(tmp_path / "shot" / "roto.1001.exr", np.zeros_like(shot.truth[0], np.float32), channels=("A",))
        expect = "roto.1001.exr: the key matte is empty"
    else:
        keys, expect = "1003", "roto"
    out = tmp_path / "mattes"
    r = _ivi("propagate", "--plate", shot.plate, "--key-mask", shot.roto, "--key-frames", keys,
             "--out", str(out / "m.####.exr"), "--preset", "quick", "--propagate-steps", "2", "--device", "cpu")
    assert r.returncode == 1 and expect in r.stderr, r.stderr
    assert not list(out.glob("m.*.exr")) if out.exists() else True


def test_propagate_presets_are_valid() -> None:
    for name in PRESET_NAMES:
        for device in ("cpu", "cuda"):
            cfg = propagate_config(name, device)
            assert PropagateConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ValueError, match="object_weight"):
        TINY.replace(object_weight=1.5)


def test_inpaint_from_key_frames_fills_the_predicted_mattes(tmp_path: Path) -> None:
    shot = make_object_shot(tmp_path / "shot")
    out = tmp_path / "clean"
    r = _ivi("inpaint", "--plate", shot.plate, "--key-mask", shot.roto, "--key-frames", "1001",
             "--out", str(out / "clean.####.exr"), "--preset", "quick", "--steps", "3", "--work-size", "32",
             "--device", "cpu", "--max-speed", "0.3", "--rounds", "1", "--track", "0.1")
    assert r.returncode == 0, r.stderr
    # The propagation options reach the first stage (its checkpoint keeps the configuration it trained with).
    _, trained = load_propagation(out / ".ivi" / "clean" / "propagate.ckpt")
    assert (trained.max_speed, trained.rounds, trained.track) == (0.3, 1, 0.1)
    assert "stage 1 of 2" in r.stderr and "stage 2 of 2" in r.stderr
    percents = [int(line.split()[1].rstrip("%")) for line in r.stdout.splitlines() if line.startswith("Progress:")]
    assert percents == sorted(percents) and percents[-1] == 100
    mattes = out / ".ivi" / "clean" / "mattes"
    for t, frame in enumerate(shot.frames):
        alpha = OpenEXR.File(str(out / f"clean.{frame}.exr"), separate_channels=True).channels()["A"].pixels
        predicted = OpenEXR.File(str(mattes / f"matte.{frame}.exr"), separate_channels=True).channels()["A"].pixels
        assert np.array_equal(alpha, predicted)  # the output's alpha is the predicted matte
        if t == 0:
            assert np.array_equal(alpha > 0, shot.truth[0])
    usage = _ivi("inpaint", "--plate", shot.plate, "--key-mask", shot.roto, "--out", str(out / "x.####.exr"))
    assert usage.returncode == 2 and "--key-mask with --key-frames" in usage.stderr
    usage = _ivi("inpaint", "--plate", shot.plate, "--mask", shot.roto, "--rounds", "2",
                 "--out", str(out / "x.####.exr"))
    assert usage.returncode == 2 and "give them with --key-mask" in usage.stderr
