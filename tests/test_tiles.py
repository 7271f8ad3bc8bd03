"""The tile grid and its blend: full coverage, only tiles touching the matte, and no seam."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ivi_vfx import tiles
from ivi_vfx.nets.detail import DetailNet


def _coverage(grid: list[tiles.Tile], height: int, width: int) -> np.ndarray:
    count = np.zeros((height, width), int)
    for t in grid:
        count[t.core[0]:t.core[1], t.core[2]:t.core[3]] += 1
    return count


@pytest.mark.parametrize("height,width,tile,overlap", [(70, 100, 32, 8), (32, 32, 32, 8), (20, 90, 64, 16)])
def test_grid_covers_the_frame_with_overlapping_cores(height: int, width: int, tile: int, overlap: int) -> None:
    grid = tiles.grid(height, width, tile, overlap, halo=5)
    assert _coverage(grid, height, width).min() >= 1
    for t in grid:
        y0, y1, x0, x1 = t.core
        assert 0 <= y0 < y1 <= height and 0 <= x0 < x1 <= width
        assert y1 - y0 == min(tile, height) and x1 - x0 == min(tile, width)  # the last tile is flush, never short
        cy0, cy1, cx0, cx1 = t.context
        assert cy0 == max(y0 - 5, 0) and cy1 == min(y1 + 5, height) and cx0 == max(x0 - 5, 0)
    # Neighbouring cores share at least `overlap` pixels, so the blend has room to ramp.
    ys = sorted({t.core[0] for t in grid})
    for a, b in zip(ys, ys[1:]):
        assert a + min(tile, height) - b >= overlap


def test_only_tiles_touching_the_matte_run() -> None:
    grid = tiles.grid(100, 100, 40, 8, halo=0)
    mask = np.zeros((100, 100), bool)
    mask[5, 5] = True
    chosen = tiles.touching(grid, mask)
    assert [t.core for t in chosen] == [(0, 40, 0, 40)]
    assert tiles.touching(grid, np.zeros_like(mask)) == []


def test_blend_weights_ramp_only_towards_neighbours() -> None:
    grid = tiles.grid(64, 64, 40, 16, halo=0)
    first = tiles.blend_weight(grid[0], 64, 64, 16)
    assert first.min() > 0
    assert first[0, 0] == 1.0  # the frame's corner: no neighbour there, full weight
    assert first[-1, -1] < 0.1  # towards the next tiles it fades out


def _net(seed: int = 0) -> DetailNet:
    torch.manual_seed(seed)
    net = DetailNet(width=4).eval()
    torch.nn.init.normal_(net.body[-1].conv.weight, std=0.3)  # a net that does something everywhere
    return net


def _tiled(net: DetailNet, inputs: torch.Tensor, tile: int, overlap: int) -> tuple[tiles.Box, np.ndarray]:
    height, width = inputs.shape[-2:]
    grid = tiles.grid(height, width, tile, overlap, halo=net.radius)

    def run(t: tiles.Tile) -> np.ndarray:
        y0, y1, x0, x1 = t.context
        x = inputs[..., y0:y1, x0:x1]
        with torch.no_grad():
            return net(x[:, :3], x[:, 3:6], x[:, 6:])[0].numpy()

    return tiles.run_tiled(run, grid, height, width, overlap, channels=3)


def test_tiled_inference_equals_the_whole_frame_and_leaves_no_seam_on_a_constant_plate() -> None:
    net = _net()
    height, width = 150, 170
    # A constant plate with a constant hole pattern: every tile sees the same thing.
    const = torch.cat([torch.full((1, 3, height, width), 0.3), torch.full((1, 3, height, width), -0.2),
                       torch.zeros(1, 1, height, width)], dim=1)
    box, out = _tiled(net, const, tile=64, overlap=16)
    assert box == (0, height, 0, width)
    r = net.radius
    inner = out[:, r:-r, r:-r]  # away from the frame's edge, where zero padding speaks
    assert np.ptp(inner, axis=(1, 2)).max() < 1e-5, "a seam: tiles disagree on a constant plate"
    with torch.no_grad():
        whole = net(const[:, :3], const[:, 3:6], const[:, 6:])[0].numpy()
    np.testing.assert_allclose(out, whole, atol=1e-6)  # the frame's edges too

    # On any plate, tiles with a halo as wide as the receptive field reproduce the whole-frame result.
    rng = torch.Generator().manual_seed(1)
    plate = torch.rand(1, 7, height, width, generator=rng)
    plate[:, 6:] = (plate[:, 6:] > 0.7).float()
    _, tiled = _tiled(net, plate, tile=48, overlap=12)
    with torch.no_grad():
        whole = net(plate[:, :3], plate[:, 3:6], plate[:, 6:])[0].numpy()
    np.testing.assert_allclose(tiled, whole, atol=2e-5)
