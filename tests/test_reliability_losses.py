"""What the loss terms look at, held against the weights and regions the trainer builds (issue 24): the
propagation's weighted BCE with its sampler's own weights, the anti-ambiguity term's pairing and masking,
and the stabilisation term's excluded region."""
from __future__ import annotations

from pathlib import Path

import torch

from conftest import TinyShot
from ivi_vfx import losses, perturb
from ivi_vfx.config import TrainConfig
from ivi_vfx.io.sequence import find_sequence
from ivi_vfx.mattes.keys import load_keys
from ivi_vfx.mattes.sampling import PasteSampler, weighted_bce
from ivi_vfx.nets import build_generator
from ivi_vfx.nets.encoder import RandomPatchEncoder
from ivi_vfx.shot import load_frames, load_shot
from ivi_vfx.train import BatchSampler, Regularizers
from test_propagate import TINY as PROPAGATE
from test_propagate import make_object_shot


def test_the_propagation_loss_weighs_a_miss_four_times_a_false_alarm_and_ignores_the_own_matte(
        tmp_path: Path) -> None:
    """The weighted-BCE test built its own weights; these are the sampler's, at object_weight 0.8."""
    shot = make_object_shot(tmp_path)
    keys = load_keys(load_frames(find_sequence(shot.plate), work_size=64), find_sequence(shot.roto, [1001]))
    cfg = PROPAGATE.replace(batch_size=4, object_weight=0.8)
    _, target, weight = PasteSampler(keys, cfg, torch.Generator().manual_seed(0)).draw()
    own = keys.mattes[0].expand_as(target) > 0  # the key's roto, in every sample of a one-key shot
    logits = torch.zeros_like(target, requires_grad=True)
    weighted_bce(logits, target, weight).backward()
    grad = logits.grad * target.numel()  # d loss / d logit = weight * (sigmoid(logit) - target), per element
    pasted, background = (target > 0) & ~own, (target == 0) & ~own
    assert pasted.any() and background.any() and own.any()
    torch.testing.assert_close(grad[pasted], torch.full_like(grad[pasted], 0.8 * (0.5 - 1.0)))
    torch.testing.assert_close(grad[background], torch.full_like(grad[background], 0.2 * 0.5))
    assert torch.equal(grad[own], torch.zeros_like(grad[own]))  # where the object stood: taught nothing


def _frames(batch: int = 3, size: tuple[int, int] = (24, 32)) -> torch.Tensor:
    g = torch.Generator().manual_seed(5)
    return torch.rand(batch, 3, *size, generator=g) * 2 - 1


def test_anti_ambiguity_pairs_each_frame_with_the_mirror_frame_of_its_batch() -> None:
    target = _frames()
    weight = torch.ones(3, 1, 24, 32)
    encoder = RandomPatchEncoder()
    paired = float(losses.anti_ambiguity(target, target.flip(0), weight, encoder))
    unpaired = float(losses.anti_ambiguity(target, target, weight, encoder))
    assert paired < 1e-3 < 0.1 < unpaired  # frame k is held against frame B-1-k, not itself


def test_anti_ambiguity_looks_only_where_the_partner_is_known() -> None:
    target, refined = _frames(), _frames().flip(-1)
    weight = torch.ones(3, 1, 24, 32)
    weight[0, :, 4:12, 6:20] = 0  # frame 0's own matte: frame 2 is held against it there
    weight[2, :, 10:20, 2:9] = 0
    encoder = RandomPatchEncoder()
    base = losses.anti_ambiguity(target, refined, weight, encoder)
    # Frame 2's output where frame 0 is unknown, and frame 0's truth there: neither counts.
    moved_output, moved_truth = refined.clone(), target.clone()
    moved_output[2, :, 4:12, 6:20] += 3.0
    moved_truth[0, :, 4:12, 6:20] -= 3.0
    assert torch.equal(losses.anti_ambiguity(target, moved_output, weight, encoder), base)
    assert torch.equal(losses.anti_ambiguity(moved_truth, refined, weight, encoder), base)
    moved_output[2, :, 14:20, 22:30] += 3.0  # where frame 0 is known: it counts
    assert not torch.equal(losses.anti_ambiguity(target, moved_output, weight, encoder), base)


def test_stabilisation_leaves_out_the_matte_its_moved_copy_and_what_the_warp_brought_in(tiny_shot: TinyShot) -> None:
    shot = load_shot(find_sequence(tiny_shot.plate), find_sequence(tiny_shot.mask), work_size=32)
    cfg = TrainConfig(preset="test", cnum=8, steps=2, finetune_steps=2, batch_size=3, ambiguity_weight=0.0)
    torch.manual_seed(0)
    model = build_generator(cfg.cnum).eval()
    images, holes, weight = BatchSampler(shot, cfg, torch.Generator().manual_seed(0)).draw(0)
    with torch.no_grad():
        coarse, refined = model(images, holes)

    def terms(coarse: torch.Tensor, refined: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return Regularizers(cfg, torch.Generator().manual_seed(1), torch.device("cpu"))(
                model, images, holes, weight, coarse, refined)

    # The region the term keeps, from the same draw of g.
    g = perturb.draw(3, tuple(images.shape[-2:]), torch.Generator().manual_seed(1))
    unknown = 1.0 - weight
    keep = (1.0 - torch.maximum(unknown, g.mask(unknown))) * g.coverage(images)
    out = keep.expand_as(coarse) == 0
    assert (keep[unknown > 0] == 0).all() and (keep[g.mask(unknown) > 0] == 0).all()
    assert (keep[g.coverage(images) == 0] == 0).all() and (keep > 0).any() and out.any()
    base = terms(coarse, refined)
    assert set(base) == {"stab_coarse", "stab_refined"} and all(float(v) > 0 for v in base.values())
    changed = terms(torch.where(out, coarse + 5.0, coarse), torch.where(out, refined - 5.0, refined))
    assert all(torch.equal(changed[k], base[k]) for k in base)  # nothing left out counts
    inside = ~out & (torch.rand(coarse.shape, generator=torch.Generator().manual_seed(2)) < 0.05)
    changed = terms(torch.where(inside, coarse + 5.0, coarse), torch.where(inside, refined - 5.0, refined))
    assert all(float(changed[k]) > float(base[k]) for k in base)  # what is kept does
