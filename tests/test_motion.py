"""The motion cue of mask propagation (mattes/motion.py), the per-frame check (mattes/check.py) and the
correction run (a key added: the previous network fine-tuned, far frames kept unless better)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from exr_helpers import write_test_exr
from ivi_vfx.jobs import JobSpec
from ivi_vfx.mattes import motion
from ivi_vfx.mattes.check import edge_margin, frame_checks
from test_propagate import make_object_shot

H, W, COUNT = 80, 128, 10
SIZE = 20
HIDDEN = (5, 6)


def _texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Smooth random texture in [-1, 1] (DIS needs texture; blurred noise gives it at every scale)."""
    import cv2

    noise = rng.uniform(-1, 1, (height, width)).astype(np.float32)
    return np.clip(cv2.GaussianBlur(noise, (0, 0), 1.5) * 3, -1, 1)


def _shot() -> tuple[torch.Tensor, torch.Tensor, np.ndarray, np.ndarray]:
    """A textured background panning 2 px a frame left; a textured object moving 4 px a frame right
    over it, hidden on HIDDEN; and a patch of the background with the object's texture (a bush of its
    colour), moving with the background, 6 px below the object's path.

    Returns:
        images (T, 3, H, W) network domain, probability (T, H, W) (1 on the object where it shows
        and on the patch: a network fooled by the colour), object (T, H, W) bool, patch (T, H, W) bool.
    """
    rng = np.random.default_rng(1)
    wall = _texture(rng, H, W + 2 * COUNT + 8)
    skin = _texture(rng, SIZE, SIZE)
    images, object_, patch = [], [], []
    for t in range(COUNT):
        bg = wall[:, 2 * t: 2 * t + W].copy()
        p = np.zeros((H, W), bool)
        x = 70 - 2 * t  # the patch is painted on the wall: it pans with it
        bg[48:48 + SIZE, x:x + SIZE] = skin
        p[48:48 + SIZE, x:x + SIZE] = True
        o = np.zeros((H, W), bool)
        if t not in HIDDEN:
            x0 = 10 + 4 * t
            bg[22:22 + SIZE, x0:x0 + SIZE] = skin
            o[22:22 + SIZE, x0:x0 + SIZE] = True
        images.append(np.repeat(bg[None], 3, 0))
        object_.append(o)
        patch.append(p)
    obj, pat = np.stack(object_), np.stack(patch)
    probability = (obj | pat).astype(np.float32)
    return torch.from_numpy(np.stack(images)), torch.from_numpy(probability), obj, pat


def test_carried_moves_the_matte_by_the_objects_own_flow() -> None:
    matte = np.zeros((20, 30), bool)
    matte[5:10, 4:9] = True
    flow = np.zeros((20, 30, 2), np.float32)
    flow[..., 0] = -3.0  # every pixel of this frame came from 3 px to its left: the object moved 3 px right
    landed = motion.carried(matte, flow)
    assert landed[5:10, 7:12].all() and landed.sum() == matte.sum()
    assert not motion.carried(np.zeros((20, 30), bool), flow).any()


def test_departure_tells_the_moving_object_from_a_patch_that_moves_with_the_background() -> None:
    import cv2

    images, _, obj, patch = _shot()
    luma = motion.gray(images.permute(0, 2, 3, 1).numpy())
    dis = cv2.DISOpticalFlow_create(motion.DIS_PRESET)
    flow = motion.flow_between(dis, luma[2], luma[1])
    away = motion.departure(flow, obj[2] | patch[2])
    inner = np.zeros_like(obj[2])
    inner[28:36, 10 + 8 + 6:10 + 8 + 14] = True  # the object's inside on frame 2 (its edge's flow is mixed)
    assert np.median(away[inner]) > 3.0  # moves 4 right against the wall's 2 left: 6 px apart
    assert np.median(away[patch[2]]) < 1.0


def test_follow_keeps_the_object_drops_the_lookalike_and_finds_the_object_again() -> None:
    images, probability, obj, patch = _shot()
    anchors = {0: torch.from_numpy(obj[0])}
    cues = motion.Cues(flow_follow=True, departure=1.0, near=2, far=20)
    followed = motion.follow(probability, 0.5, anchors, images, (H, W), cues).numpy()
    back = HIDDEN[-1] + 1  # where it shows again: no frame before shows it there, so its flow is meaningless
    for t in range(1, COUNT):
        if t < HIDDEN[0] or t > back:
            assert (followed[t] & obj[t]).sum() >= 0.8 * obj[t].sum(), t  # found, and found again by its motion
        assert (followed[t] & patch[t]).sum() <= 0.1 * patch[t].sum(), t  # the lookalike is not followed
    # Without the departure cue the lookalike, within reach of the object, is taken as soon as the object hides.
    blind = motion.follow(probability, 0.5, anchors, images, (H, W), motion.Cues(True, 0.0, 2, 20)).numpy()
    assert (blind[HIDDEN[0]] & patch[HIDDEN[0]]).sum() > 0.5 * patch[HIDDEN[0]].sum()


def test_the_check_flags_a_jump_an_empty_matte_and_an_unsure_edge() -> None:
    count, h, w = 8, 20, 20
    mattes = torch.zeros(count, h, w, dtype=torch.bool)
    mattes[:, 5:10, 5:10] = True
    mattes[4, 2:18, 2:18] = True  # jumps to 10x its neighbours' area
    mattes[6] = False  # lost
    probability = mattes.float()
    probability[2][mattes[2]] = 0.55  # frame 2: the network barely over the threshold along the edge
    probability[2][~mattes[2]] = 0.45
    checks = frame_checks(probability, mattes, list(range(1001, 1001 + count)), {1001},
                          torch.ones(h, w, dtype=torch.bool), 0.5)
    flagged = {c.frame for c in checks if c.flagged}
    assert flagged == {1003, 1005, 1007}, [(c.frame, c.why) for c in checks]
    assert "area" in checks[4].why and "empty" in checks[6].why and "margin" in checks[2].why
    assert edge_margin(probability[0], mattes[0], 0.5) == 1.0


def test_the_cue_options_reach_the_configuration() -> None:
    spec = JobSpec(plate="p.####.exr", key_mask="k.####.exr", key_frames="1001", out="m.####.exr", writes="mattes",
                   flow_follow=True, departure=0.004)
    cfg = spec.propagate_config()
    assert cfg.flow_follow is True and cfg.departure == 0.004 and motion.uses_motion(cfg)
    cues = motion.cues_of(cfg, (144, 256))
    assert cues.departure == 0.004 * 256 and cues.far > cues.near
    default = JobSpec(plate="p.####.exr", key_mask="k.####.exr", key_frames="1001", out="m.####.exr").propagate_config()
    assert not default.flow_follow and default.departure == 0 and not motion.uses_motion(default)


def _ivi(*args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("ivi-render")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})


def test_a_key_added_fine_tunes_the_network_and_keeps_the_far_frames_unless_better(tmp_path: Path) -> None:
    shot = make_object_shot(tmp_path / "shot", count=7)
    out = tmp_path / "mattes" / "matte.####.exr"
    args = ["propagate", "--plate", shot.plate, "--key-mask", shot.roto, "--out", str(out), "--preset", "quick",
            "--propagate-steps", "40", "--propagate-work-size", "32", "--device", "cpu", "--overwrite"]
    first = _ivi(*args, "--key-frames", "1001")
    assert first.returncode == 0, first.stderr
    check = tmp_path / "mattes" / ".ivi" / "matte" / "propagation.json"
    rows = json.loads(check.read_text())["frames"]
    assert [r["frame"] for r in rows] == shot.frames and rows[0]["key"] and "propagation check" in first.stderr
    before = {f: (tmp_path / "mattes" / f"matte.{f}.exr").read_bytes() for f in shot.frames}
    # The artist adds a roto on the last frame and reruns.
    write_test_exr(tmp_path / "shot" / "roto.1007.exr", shot.truth[-1].astype(np.float32), channels=("A",))
    again = _ivi(*args, "--key-frames", "1001,1007")
    assert again.returncode == 0, again.stderr
    assert "correction run" in again.stderr and "step 40/40" in again.stderr
    assert "step 10/40" not in again.stderr and "starting afresh" not in again.stderr  # fine-tuned from step 30
    rows = {r["frame"]: r for r in json.loads(check.read_text())["frames"]}
    for frame in shot.frames:
        path = tmp_path / "mattes" / f"matte.{frame}.exr"
        if rows[frame]["kept"]:
            assert frame - 1001 < 3 and path.read_bytes() == before[frame]  # only frames nearer the old key
    for frame in (1004, 1005, 1006):  # nearer the new key (or as near): always the new network's
        assert not rows[frame]["kept"]
    assert rows[1007]["key"] and (tmp_path / "mattes" / "matte.1007.exr").read_bytes() != before[1007]
