"""Mask propagation beyond the key frames' backgrounds: self-training on the other frames, and the
temporal constraint that keeps what stays near the object from frame to frame."""
from __future__ import annotations

from pathlib import Path

import torch

from ivi_vfx.config import PropagateConfig
from ivi_vfx.io.sequence import find_sequence
from ivi_vfx.mattes.fitting import fit_propagation, round_fraction, self_training_unknown
from ivi_vfx.mattes.keys import key_distance, load_keys
from ivi_vfx.mattes.sampling import PasteSampler
from ivi_vfx.mattes.tracking import chained, reach, reconstruct, track, tracked_mattes
from ivi_vfx.shot import load_frames
from test_propagate import TINY, make_object_shot


def _blob(height: int, width: int, y: int, x: int, size: int = 3) -> torch.Tensor:
    out = torch.zeros(height, width, dtype=torch.bool)
    out[y:y + size, x:x + size] = True
    return out


def test_reconstruct_keeps_the_parts_that_touch_the_seed() -> None:
    mask = _blob(12, 12, 1, 1, 4) | _blob(12, 12, 7, 7, 4)
    mask[5, 5] = True  # touches the first part diagonally: 8-connected, one part with it
    kept = reconstruct(_blob(12, 12, 2, 2, 1), mask)
    assert kept[1:5, 1:5].all() and kept[5, 5] and not kept[7:, 7:].any()
    assert not reconstruct(torch.zeros(12, 12, dtype=torch.bool), mask).any()


def test_track_follows_the_object_both_ways_and_drops_what_is_far() -> None:
    count, height, width = 7, 20, 30
    binary = torch.zeros(count, height, width, dtype=torch.bool)
    for t in range(count):
        binary[t] |= _blob(height, width, 8, 3 + 3 * t)  # the object, 3 px a frame to the right
        binary[t] |= _blob(height, width, 1, 25)  # a false positive far from it
    binary[5] = _blob(height, width, 1, 25)  # frame 5: the object missed, only the far part left
    key = 3
    kept = track(binary, {key: _blob(height, width, 8, 3 + 3 * key)}, radius=2)
    for t in (0, 1, 2, 4, 6):
        assert kept[t, 8:11, 3 + 3 * t:6 + 3 * t].all(), t  # followed forward and backward
        assert not kept[t, 1:4, 25:28].any(), t  # dropped
    assert torch.equal(kept[5], binary[5])  # nothing near: the whole prediction is kept (recall first)
    # Without the constraint every part is kept, and the key frame keeps its roto.
    loose = track(binary, {key: _blob(height, width, 8, 3 + 3 * key)}, radius=0)
    assert loose[0, 1:4, 25:28].all() and torch.equal(loose[key], _blob(height, width, 8, 12))
    # Between two keys, a frame gets what either direction found.
    both = track(binary, {0: _blob(height, width, 8, 3), 6: _blob(height, width, 1, 25)}, radius=2)
    assert both[3, 8:11, 12:15].all() and both[3, 1:4, 25:28].all()


def test_chained_bound_follows_the_object_and_cuts_what_grows_faster() -> None:
    count, height, width, key = 6, 12, 60, 0
    found = torch.zeros(count, height, width, dtype=torch.bool)
    for t in range(count):
        found[t] |= _blob(height, width, 4, 2 + 2 * t)  # the object, 2 px a frame to the right
        found[t, 4:7, 5 + 2 * t:5 + 10 * t] = True  # a false part growing out of it, 8 px a frame
    found[3] = False  # frame 3: the object missed
    region = chained(found, {key: _blob(height, width, 4, 2)}, step=2)
    for t in range(count):
        assert region[t, 4:7, 2 + 2 * t:5 + 2 * t].all(), t  # the object is always inside
    assert not region[5, :, 30:].any()  # the false part's far end (up to x=55) is cut
    assert region[3].sum() > _blob(height, width, 4, 2).sum()  # a missed frame keeps the neighbourhood
    assert torch.equal(region[key], _blob(height, width, 4, 2))


def test_reach_is_bounded_by_every_key(tmp_path: Path) -> None:
    shot = make_object_shot(tmp_path, key_frames=(0, 5))  # 6 px right and 2 down a frame
    frames = load_frames(find_sequence(shot.plate), work_size=56)  # the plate's own size: pixels are pixels
    cfg = TINY.replace(work_size=56, max_speed=0.125)  # 7 px a frame; margin 3 px
    both = reach(load_keys(frames, find_sequence(shot.roto, [1001, 1006])), cfg)[:, 0] > 0
    height, width = shot.truth.shape[1:]
    for t in range(len(shot.frames)):
        assert both[t, :height, :width][torch.from_numpy(shot.truth[t])].all(), t  # the object is always within
    # (8, 0) on frame 1 is 5 px from the first key's matte, but 35 px from the last key's, farther than the
    # object travels in 4 frames (3 + 4 * 7 = 31): the last key rules it out. The first key alone does not.
    assert not both[1, 8, 0]
    first = reach(load_keys(frames, find_sequence(shot.roto, [1001])), cfg)[:, 0] > 0
    assert first[1, 8, 0] and (first >= both).all()


def test_rounds_sweep_outward_from_the_keys(tmp_path: Path) -> None:
    shot = make_object_shot(tmp_path)
    keys = load_keys(load_frames(find_sequence(shot.plate), work_size=48), find_sequence(shot.roto, [1001]))
    cfg = PropagateConfig(preset="test", width=4, steps=2, batch_size=2, work_size=48, rounds=2, max_speed=0.05)
    model = fit_propagation(keys, cfg).model
    distance = key_distance(keys)
    assert distance.tolist() == list(range(len(shot.frames)))  # one key, on the first frame
    unknown = self_training_unknown(model, keys, cfg, within=1)
    assert (unknown[2:] == 1).all()  # not reached yet: nothing taught there
    assert (unknown[1] == 0).any()  # reached: background outside the region around the object
    sampler = PasteSampler(keys, cfg.replace(other_frames=1.0, batch_size=64), torch.Generator().manual_seed(0))
    sampler.set_unknown(unknown)
    assert sampler.teaching.tolist() == [0, 1]  # only frames with a lesson are drawn
    assert 0 < round_fraction(1, 4) < round_fraction(4, 4) < 1 and round_fraction(1, 1) == round_fraction(1, 4)


def test_after_a_self_training_round_other_frames_teach_their_background(tmp_path: Path) -> None:
    shot = make_object_shot(tmp_path)
    keys = load_keys(load_frames(find_sequence(shot.plate), work_size=64), find_sequence(shot.roto, [1001]))
    cfg = TINY.replace(batch_size=32, other_frames=1.0)
    sampler = PasteSampler(keys, cfg, torch.Generator().manual_seed(0))
    count = len(shot.frames)
    unknown = torch.zeros(count, 1, *keys.frames.geometry.padded)
    unknown[:, :, :, :20] = 1  # "the object may be in the left columns" on every frame
    unknown[0] = keys.mattes[0]
    sampler.set_unknown(unknown)
    inputs, target, weight = sampler.draw()
    bases = set()
    for b in range(len(inputs)):
        outside = target[b, 0] == 0
        base = [t for t in range(count) if torch.equal(inputs[b][:, outside], keys.frames.images[t][:, outside])]
        assert base, b
        bases.add(base[0])
        w = weight[b, 0]
        assert (w[outside & (unknown[base[0], 0] > 0)] == 0).all()  # where the object may be: no lesson
        assert torch.allclose(w[outside & (unknown[base[0], 0] == 0) & (keys.frames.valid[0, 0] > 0)],
                              torch.tensor(0.2))  # elsewhere: background
        pasted = ~outside & (unknown[base[0], 0] == 0)
        assert torch.allclose(w[pasted], torch.tensor(0.8))  # the pasted copy is the object
    assert len(bases - {0}) >= 3  # samples on frames other than the key


def test_self_training_region_holds_the_object_and_resume_reaches_the_same_weights(tmp_path: Path) -> None:
    shot = make_object_shot(tmp_path)
    keys = load_keys(load_frames(find_sequence(shot.plate), work_size=48), find_sequence(shot.roto, [1001]))
    cfg = PropagateConfig(preset="test", width=4, steps=8, batch_size=2, lr=1e-3, work_size=48, rounds=1,
                          max_speed=0.05, checkpoint_every=100)
    straight = fit_propagation(keys, cfg)
    checkpoint = tmp_path / "p.ckpt"
    first = fit_propagation(keys, cfg, checkpoint=checkpoint, on_step=lambda step, fraction: step == 6)
    assert first.stopped and first.step == 6  # past the round at step 4: the checkpoint carries its region
    resumed = fit_propagation(keys, cfg, checkpoint=checkpoint)
    assert resumed.step == 8
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    unknown = self_training_unknown(straight.model, keys, cfg)
    assert torch.equal(unknown[0], keys.mattes[0])  # the key frame: its roto exactly
    assert unknown.shape == (len(shot.frames), 1, *keys.frames.geometry.padded)
    kept = tracked_mattes(straight.model, keys, cfg, cfg.threshold)
    assert kept.shape == unknown.shape and torch.equal(kept[0, 0], keys.mattes[0, 0] > 0)
