"""The paper's two regularizers: the contextual loss, the perturbation g, gradients, and the two-stage schedule."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import TinyShot
from ivi_vfx import losses, perturb
from ivi_vfx.config import TrainConfig, preset_config
from ivi_vfx.errors import ConfigError
from ivi_vfx.io.sequence import find_sequence
from ivi_vfx.nets import build_generator
from ivi_vfx.nets.encoder import RandomPatchEncoder, VGG19Encoder, build_encoder, features_for_context
from ivi_vfx.shot import Shot, load_shot
from ivi_vfx.train import BatchSampler, Regularizers, fit

STAGED = TrainConfig(preset="test", cnum=8, steps=8, finetune_steps=4, batch_size=3, work_size=64, log_every=2,
                     checkpoint_every=100)


def _shot(tiny: TinyShot) -> Shot:
    return load_shot(find_sequence(tiny.plate), find_sequence(tiny.mask), work_size=64)


def _contextual_by_hand(x: np.ndarray, y: np.ndarray, h: float) -> float:
    """The reference formula written out with loops over frames and positions, in float64."""
    b, c = x.shape[:2]
    xs, ys = x.reshape(b, c, -1), y.reshape(b, c, -1)
    mu = ys.transpose(1, 0, 2).reshape(c, -1).mean(axis=1)
    total = 0.0
    for k in range(b):
        xn = [(xs[k, :, i] - mu) / np.linalg.norm(xs[k, :, i] - mu) for i in range(xs.shape[2])]
        yn = [(ys[k, :, j] - mu) / np.linalg.norm(ys[k, :, j] - mu) for j in range(ys.shape[2])]
        d = np.array([[1.0 - float(xi @ yj) for yj in yn] for xi in xn])
        rel = np.array([row / (row.min() + 1e-5) for row in d])
        w = np.exp((1.0 - rel) / h)
        cx = np.array([row / row.sum() for row in w])
        total += -math.log(np.mean([cx[:, j].max() for j in range(cx.shape[1])]))
    return total / b


def test_contextual_loss_matches_the_formula_computed_by_hand() -> None:
    gen = torch.Generator().manual_seed(3)
    x, y = torch.randn(2, 5, 3, 4, generator=gen), torch.randn(2, 5, 4, 2, generator=gen)
    for h in (0.5, 0.2):
        assert float(losses.contextual(x.double(), y.double(), h)) == pytest.approx(
            _contextual_by_hand(x.numpy().astype(np.float64), y.numpy().astype(np.float64), h), rel=1e-9)


def test_contextual_loss_is_zero_on_a_match_and_ignores_where_things_are() -> None:
    gen = torch.Generator().manual_seed(4)
    y = torch.randn(1, 8, 6, 6, generator=gen)
    shuffled = y.flatten(2)[:, :, torch.randperm(36, generator=gen)].reshape(y.shape)
    assert float(losses.contextual(y, y)) < 1e-3
    assert float(losses.contextual(shuffled, y)) < 1e-3  # the same features elsewhere: no penalty
    assert float(losses.contextual(torch.randn(1, 8, 6, 6, generator=gen), y)) > 0.5


def test_context_features_are_pooled_to_bound_memory() -> None:
    encoder = RandomPatchEncoder()
    image = torch.rand(2, 3, 128, 96) * 2 - 1
    full = features_for_context(encoder, image, 10_000)
    bounded = features_for_context(encoder, image, 200)
    assert full.shape == (2, 128, 32, 24)
    assert bounded.shape[-2] * bounded.shape[-1] <= 200 and bounded.shape[:2] == (2, 128)


def _pattern(height: int = 20, width: int = 28) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    return torch.stack([xs / width, ys / height, ((xs * 7 + ys * 3) % 5) / 5.0]).float()[None]


def test_a_pure_shift_moves_image_and_mask_by_whole_pixels() -> None:
    image = _pattern()
    theta = perturb._affine(20, 28, *(torch.tensor(v, dtype=torch.float64) for v in (2.0, -1.0, 0, 1, 0, 0)))
    g = perturb.Perturbation(theta[None].float(), torch.zeros(1), torch.zeros(1))
    out = g.image(image)
    # Output pixel (x, y) samples the input at (x + 2, y - 1).
    assert torch.allclose(out[0, :, 1:, :-2], image[0, :, :-1, 2:], atol=1e-5)
    cover = g.coverage(image)[0, 0]
    assert cover[1:, :-2].all() and not cover[0].any() and not cover[:, -2:].any()
    mask = torch.zeros(1, 1, 20, 28)
    mask[..., 8:12, 10:15] = 1
    moved = g.mask(mask)
    assert set(moved.unique().tolist()) == {0.0, 1.0}
    assert moved[0, 0].nonzero().min(0).values.tolist() == [9, 8] and moved.sum() == mask.sum()


def test_rotation_and_zoom_pivot_on_the_frame_centre() -> None:
    image = torch.zeros(1, 1, 21, 31)
    image[..., 10, 15] = 1.0  # the centre pixel of an odd-sized frame
    theta = perturb._affine(21, 31, *(torch.tensor(v, dtype=torch.float64) for v in (0, 0, 0.3, 1.2, 0.1, -0.1)))
    out = perturb.Perturbation(theta[None].float(), torch.zeros(1), torch.zeros(1)).image(image)
    assert out[0, 0, 10, 15] == out.max() > 0.5


def test_draws_stay_in_the_reference_ranges_and_parts_switch_off() -> None:
    rng = torch.Generator().manual_seed(0)
    g = perturb.draw(64, (120, 216), rng)
    assert g.brightness.abs().max() <= perturb.BRIGHTNESS and (g.sigma >= 0).all() and g.sigma.max() <= 0.7
    # The worst corner of a 216x120 frame moves by at most shift + what 1 degree, 3% and 1 degree of shear give.
    corner = torch.tensor([1.0, 1.0, 1.0], dtype=torch.float64)
    moved = (g.theta.double() @ corner)
    bound = 2 + 0.03 * 124 + 2 * 124 * math.pi / 180
    assert ((moved - 1.0).abs() * torch.tensor([108.0, 60.0], dtype=torch.float64)).max() < bound
    plain = perturb.draw(4, (16, 16), torch.Generator().manual_seed(0), affine=False, brightness=False, blur=False)
    image = torch.rand(4, 3, 16, 16)
    assert torch.allclose(plain.image(image), image, atol=1e-6)
    blurred = perturb.draw(4, (16, 16), torch.Generator().manual_seed(0), affine=False, brightness=False)
    assert not torch.allclose(blurred.image(image), image, atol=1e-3)
    assert torch.allclose(blurred.image(image).mean(dim=(2, 3)), image.mean(dim=(2, 3)), atol=0.02)


def test_the_matte_jitter_grows_the_hole_against_a_still_picture() -> None:
    image = _pattern()
    mask = torch.zeros(1, 1, 20, 28)
    mask[..., 8:12, 10:15] = 1
    still = dict(affine=False, brightness=False, blur=False)
    g = perturb.draw(1, (20, 28), torch.Generator().manual_seed(3), **still)
    assert torch.allclose(g.image(image), image, atol=1e-6)  # the picture stays put
    assert torch.equal(g.mask(mask), mask)  # so does the own matte, for the loss's keep region
    hole = g.hole(mask)
    assert set(hole.unique().tolist()) == {0.0, 1.0}
    assert (hole >= mask).all() and hole.sum() > mask.sum()  # the matte stays hidden; the outline moves
    ys, xs = (hole[0, 0] - mask[0, 0]).nonzero().T
    reach = perturb.MATTE_SHIFT_PX + 0.5
    assert (xs >= 10 - reach).all() and (xs < 15 + reach).all() and (ys >= 8 - reach).all() and (ys < 12 + reach).all()
    # Switched off, the second pass's hole is g(M) itself, and the other draws are unchanged.
    off = perturb.draw(1, (20, 28), torch.Generator().manual_seed(3), matte=False, **still)
    assert torch.equal(off.hole(mask), mask)
    plain = perturb.draw(1, (20, 28), torch.Generator().manual_seed(3), matte=False)
    assert torch.equal(plain.theta, perturb.draw(1, (20, 28), torch.Generator().manual_seed(3)).theta)


def test_gradients_reach_the_generator_through_each_term(tiny_shot: TinyShot) -> None:
    shot = _shot(tiny_shot)
    cfg = STAGED
    model = build_generator(cfg.cnum)
    images, holes, weight = BatchSampler(shot, cfg, torch.Generator().manual_seed(0)).draw(0)
    coarse, refined = model(images, holes)
    terms = Regularizers(cfg, torch.Generator().manual_seed(1), torch.device("cpu"))(
        model, images, holes, weight, coarse, refined)
    assert set(terms) == {"ambiguity", "stab_coarse", "stab_refined"}
    for name, value in terms.items():
        model.zero_grad()
        value.backward(retain_graph=True)
        reached = {part: any(p.grad is not None and p.grad.abs().sum() > 0 for p in getattr(model, part).parameters())
                   for part in ("coarse", "hallucinate", "plain", "head")}
        # Every term reaches the coarse network; the refined terms reach the refinement branches too.
        assert reached["coarse"], name
        if name != "stab_coarse":
            assert all(reached.values()), (name, reached)


def _weights(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("stop_at", [3, 4, 6])  # before, at and after the stage boundary (step 4)
def test_resume_across_the_stage_boundary_equals_one_run(tiny_shot: TinyShot, tmp_path: Path, stop_at: int) -> None:
    shot = _shot(tiny_shot)
    straight = fit(shot, STAGED)
    assert set(straight.losses) >= {"ambiguity", "stab_coarse", "stab_refined"}
    ckpt = tmp_path / "run.ckpt"
    first = fit(shot, STAGED, checkpoint=ckpt, on_step=lambda info: info.step == stop_at)
    assert first.stopped and first.step == stop_at
    assert torch.load(ckpt, weights_only=True)["finetune_from"] == (4 if stop_at > 4 else -1)
    second = fit(shot, STAGED, checkpoint=ckpt)
    assert second.step == 8
    assert all(torch.equal(a, b) for a, b in zip(_weights(straight.model), _weights(second.model)))


def test_each_regularizer_can_be_switched_off(tiny_shot: TinyShot) -> None:
    shot = _shot(tiny_shot)
    assert set(fit(shot, STAGED.replace(ambiguity_weight=0.0)).losses) & {"ambiguity", "stab_refined"} == {
        "stab_refined"}
    assert "stab_refined" not in fit(shot, STAGED.replace(stabilization_weight=0.0)).losses
    assert not STAGED.replace(ambiguity_weight=0.0, stabilization_weight=0.0).regularized
    paper = preset_config("paper")
    assert (paper.steps, paper.finetune_steps) == (70_000, 20_000)
    assert (paper.rescheduled(700).steps, paper.rescheduled(700).finetune_steps) == (700, 200)


def test_vgg19_weights_load_from_a_file_and_a_wrong_file_is_named(tmp_path: Path) -> None:
    reference = VGG19Encoder()
    for p in reference.parameters():
        p.data.normal_(0, 0.05)
    good = tmp_path / "vgg19.pth"
    torch.save({f"features.{k}": v for k, v in reference.features.state_dict().items()}
               | {"classifier.0.weight": torch.zeros(2, 2)}, good)
    loaded = build_encoder(f"vgg19:{good}")
    image = torch.rand(1, 3, 32, 32) * 2 - 1
    assert torch.equal(loaded(image), reference(image)) and loaded(image).shape == (1, 512, 4, 4)
    assert not any(p.requires_grad for p in loaded.parameters())
    wrong = tmp_path / "wrong.pth"
    torch.save(RandomPatchEncoder().state_dict(), wrong)
    with pytest.raises(ConfigError, match=r"wrong\.pth.*missing features\.0\.weight.*torchvision vgg19"):
        build_encoder(f"vgg19:{wrong}")
    text = tmp_path / "notes.txt"
    text.write_text("not weights")
    with pytest.raises(ConfigError, match=r"notes\.txt: cannot be read as torch weights"):
        build_encoder(f"vgg19:{text}")
    with pytest.raises(ConfigError, match="no such VGG19 weights file"):
        build_encoder(f"vgg19:{tmp_path / 'absent.pth'}")
    with pytest.raises(ConfigError, match="encoder must be"):
        STAGED.replace(encoder="alexnet")


def test_a_reconstruction_checkpoint_can_be_fine_tuned_with_any_regularizer(tiny_shot: TinyShot,
                                                                            tmp_path: Path) -> None:
    shot = _shot(tiny_shot)
    ckpt = tmp_path / "run.ckpt"
    fit(shot, STAGED.replace(steps=4, finetune_steps=0, ambiguity_weight=0.0), checkpoint=ckpt)
    tuned = fit(shot, STAGED.replace(stabilization_weight=0.0), checkpoint=ckpt)
    assert tuned.step == 8 and "ambiguity" in tuned.losses  # resumed at 4, fine-tuned 4
    assert torch.load(ckpt, weights_only=True)["finetune_from"] == 4
    # Once fine-tuning has begun, its settings are part of the run: another weight starts afresh.
    again = fit(shot, STAGED.replace(steps=10, finetune_steps=6, ambiguity_weight=0.5), checkpoint=ckpt,
                on_step=lambda info: info.step == 1)
    assert again.step == 1


def test_the_fine_tune_stage_keeps_adam_unless_told_to_restart_it(tiny_shot: TinyShot) -> None:
    shot = _shot(tiny_shot)
    cfg = STAGED.replace(stabilization_weight=0.0, validate_every=0)
    optimizers: list[int] = []
    original = torch.optim.Adam.step

    def spy(self, *args, **kwargs):  # noqa: ANN001
        optimizers.append(id(self))
        return original(self, *args, **kwargs)

    torch.optim.Adam.step = spy
    try:
        fit(shot, cfg.replace(finetune_restart=True))
        restarted, optimizers[:] = list(optimizers), []
        fit(shot, cfg)
        kept = list(optimizers)
    finally:
        torch.optim.Adam.step = original
    assert len(set(restarted[:4])) == 1 and len(set(restarted[4:])) == 1 and restarted[3] != restarted[4]
    assert len(set(kept)) == 1 and len(kept) == 8
