"""The background cue of mask propagation (mattes/background.py): what the nearby frames, aligned by the
background's motion, show in the same place is background."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ivi_vfx.config import propagate_config
from ivi_vfx.jobs import JobSpec
from ivi_vfx.mattes import background
from test_motion import COUNT, HIDDEN, H, W, _shot


def test_a_lookalike_that_pans_with_the_wall_is_background_and_the_moving_object_is_kept() -> None:
    images, probability, obj, patch = _shot()  # the network fooled by the colour: 1 on both
    key = {0: torch.from_numpy(obj[0])}
    moving = background.moving_part(probability, 0.5, images, (H, W), 0.1, key).numpy()
    for t in range(COUNT):
        assert not (moving[t] & ~(obj[t] | patch[t])).any(), t  # only ever the network's own matte
        assert (moving[t] & patch[t]).sum() <= 0.1 * patch[t].sum(), t
        if t not in HIDDEN:
            assert (moving[t] & obj[t]).sum() >= 0.9 * obj[t].sum(), t


def test_where_no_near_frame_shows_the_place_the_networks_matte_stays() -> None:
    images, probability, obj, patch = _shot()
    # One frame alone: nothing to compare with.
    alone = background.moving_part(probability[:1], 0.5, images[:1], (H, W), 0.1, {}).numpy()
    assert np.array_equal(alone[0], obj[0] | patch[0])
    # A threshold over any difference calls everything background.
    assert not background.moving_part(probability, 0.5, images, (H, W), 1.99, {}).any()


def test_the_option_reaches_the_configuration_and_the_paper_preset_goes_without() -> None:
    spec = JobSpec(plate="p.####.exr", key_mask="k.####.exr", key_frames="1001", out="m.####.exr", writes="mattes",
                   background_match=0.05)
    assert spec.propagate_config().background_match == 0.05
    default = JobSpec(plate="p.####.exr", key_mask="k.####.exr", key_frames="1001", out="m.####.exr")
    assert default.propagate_config().background_match == 0.1
    assert propagate_config("paper", "cpu").background_match == 0
    with pytest.raises(Exception, match="background_match"):
        JobSpec(plate="p.####.exr", key_mask="k.####.exr", key_frames="1001", out="m.####.exr",
                background_match=-1.0).propagate_config()


def _disc_shot(speed: int, radius: int) -> tuple[torch.Tensor, np.ndarray]:
    """A textured wall panning 2 px a frame left, a flat disc moving `speed` px a frame right over it:
    (T, 3, H, W) network-domain frames and (T, H, W) bool the disc."""
    import cv2

    rng = np.random.default_rng(3)
    wall = cv2.GaussianBlur(rng.uniform(-1, 1, (H, W + 40)).astype(np.float32), (0, 0), 1.5) * 3
    images, disc = [], []
    for t in range(COUNT):
        frame = np.clip(wall[:, 2 * t:2 * t + W], -1, 1).copy()
        d = np.zeros((H, W), np.uint8)
        cv2.circle(d, (30 + speed * t, 40), radius, 1, -1)
        frame[d > 0] = 0.6
        images.append(np.repeat(frame[None], 3, 0))
        disc.append(d > 0)
    return torch.from_numpy(np.stack(images)), np.stack(disc)


def test_a_plain_object_whose_inside_matches_itself_is_kept_whole() -> None:
    import cv2

    frames, inside = _disc_shot(3, 14)
    t = 4
    luma = background.gray(frames.permute(0, 2, 3, 1).numpy())
    least = background.mismatch(frames.permute(0, 2, 3, 1).numpy(), luma, t, inside[t])
    core = cv2.erode(inside[t].astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    assert (least[core] < 0.1).mean() > 0.3  # its inside matches itself: only its outline moves
    key = {0: torch.from_numpy(inside[0])}
    probability = torch.from_numpy(inside.astype(np.float32))
    moving = background.moving_part(probability, 0.5, frames, (H, W), 0.1, key).numpy()
    for t in range(COUNT):
        assert (moving[t] & inside[t]).sum() >= 0.95 * inside[t].sum(), t


def test_the_key_lowers_the_cut_where_the_object_would_match_itself() -> None:
    frames, inside = _disc_shot(1, 22)  # slow for its size: its outline matches too
    probability = torch.from_numpy(inside.astype(np.float32))
    unkeyed = background.moving_part(probability, 0.5, frames, (H, W), 0.1, {}).numpy()
    assert (unkeyed & inside).sum() < 0.9 * inside.sum()  # the cut as given takes much of it away
    # A key inside the shot, seen from both sides (the first frame's, seen from one, is judged more kindly).
    key = {4: torch.from_numpy(inside[4])}
    frames_np = frames.permute(0, 2, 3, 1).numpy()
    cut = background.calibrated(frames_np, background.gray(frames_np), {4: inside[4]}, 0.1, 3, 4)
    assert 0 <= cut < 0.1
    moving = background.moving_part(probability, 0.5, frames, (H, W), 0.1, key).numpy()
    assert (moving & inside).sum() > (unkeyed & inside).sum() + 0.2 * inside.sum()
