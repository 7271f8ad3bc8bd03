"""The generator matches the reference architecture."""
from __future__ import annotations

import pytest
import torch

from ivi_vfx.nets.generator import GatedConv, Generator


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_parameter_count_is_the_papers() -> None:
    g = Generator(48)
    assert _count(g) == 4_051_278
    # The reference's parts, counted from its layer definitions.
    assert _count(g.coarse) == 1_629_951
    assert _count(g.hallucinate) == 990_000
    assert _count(g.plain) == 782_352
    assert _count(g.head) == 648_975


def test_gated_layer_outputs_half_its_filters() -> None:
    layer = GatedConv(4, 48, k=5)
    assert layer(torch.randn(2, 4, 16, 16)).shape == (2, 24, 16, 16)
    raw = GatedConv(12, 3, gated=False)
    assert raw(torch.randn(1, 12, 8, 8)).shape == (1, 3, 8, 8)


@pytest.mark.parametrize("size", [(15, 17), (16, 16)])
def test_stride_two_pads_like_tensorflow_same(size: tuple[int, int]) -> None:
    layer = GatedConv(3, 8, k=3, stride=2)
    out = layer(torch.randn(1, 3, *size))
    assert out.shape[-2:] == tuple(-(-s // 2) for s in size)


@pytest.mark.parametrize("k, rate", [(3, 1), (5, 1), (3, 2), (3, 16)])
def test_stride_one_pads_inside_the_convolution_as_tensorflow_same(k: int, rate: int) -> None:
    layer = GatedConv(3, 8, k=k, rate=rate)
    assert layer.inner_pad
    x = torch.randn(2, 3, 19, 24)
    eff = (k - 1) * rate + 1
    padded = torch.nn.functional.pad(x, [(eff - 1) // 2] * 4)  # TF SAME, stride 1: the same zeros each side
    explicit = torch.nn.functional.conv2d(padded, layer.conv.weight, layer.conv.bias, dilation=rate)
    feat, gate = explicit.chunk(2, dim=1)
    torch.testing.assert_close(layer(x), torch.nn.functional.elu(feat) * torch.sigmoid(gate), atol=1e-5, rtol=1e-5)
    assert not GatedConv(3, 8, stride=2).inner_pad  # stride 2 pads bottom/right: _same_pad


def test_forward_gives_two_images_in_tanh_range_and_every_parameter_learns() -> None:
    torch.manual_seed(0)
    g = Generator(8)
    image = torch.rand(2, 3, 16, 24) * 2 - 1
    hole = torch.zeros(2, 1, 16, 24)
    hole[..., 4:10, 6:14] = 1
    coarse, refined = g(image, hole)
    assert coarse.shape == refined.shape == image.shape
    assert coarse.abs().max() <= 1 and refined.abs().max() <= 1
    (coarse.mean() + refined.mean()).backward()
    silent = [name for name, p in g.named_parameters() if p.grad is None or not (p.grad.abs().sum() > 0)]
    assert not silent, silent  # every layer of all four parts takes part in the output
    assert all(torch.isfinite(p.grad).all() for p in g.parameters())
    # The refined output alone reaches the coarse network through the pasted coarse fill.
    g.zero_grad()
    refined.detach_()
    _, refined = g(image, hole)
    refined.mean().backward()
    assert g.coarse[0].conv.weight.grad.abs().sum() > 0 and g.coarse[-1].conv.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("under", ["random", "nan", "inf"])
def test_the_output_does_not_depend_on_what_lies_under_the_hole(under: str) -> None:
    """The network must never see the object: whatever the hole hides, both outputs are the same bits."""
    torch.manual_seed(0)
    g = Generator(8).eval()
    image = torch.rand(2, 3, 16, 24) * 2 - 1
    hole = torch.zeros(2, 1, 16, 24)
    hole[0, :, 4:10, 6:14] = 1
    hole[1, :, 0:5, 15:24] = 1
    other = image.clone()
    inside = hole.expand_as(image) > 0
    other[inside] = {"random": torch.rand(int(inside.sum())) * 2 - 1, "nan": torch.tensor(float("nan")),
                     "inf": torch.tensor(float("inf"))}[under]
    with torch.no_grad():
        for a, b in zip(g(image, hole), g(other, hole)):
            assert torch.equal(a, b)
    changed = image.clone()
    changed[0, :, 12, 2] += 0.5  # a known pixel does matter
    with torch.no_grad():
        assert not torch.equal(g(changed, hole)[1], g(image, hole)[1])


def test_width_must_divide_by_four() -> None:
    with pytest.raises(ValueError, match="multiple of 4"):
        Generator(30)
