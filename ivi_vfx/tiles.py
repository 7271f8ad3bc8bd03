"""A grid of overlapping tiles over a large frame, and their seamless blend.

High-resolution inference runs a network tile by tile so that its memory is bounded by the tile,
not by the frame (issue 7). Each tile has a *core* (the pixels it contributes) and a *context*:
the core grown by a halo on every side, clipped to the frame, which the network sees so that its
receptive field finds real pixels instead of zero padding. Neighbouring cores overlap; inside an
overlap each tile's output is weighted by a linear ramp and the sum is divided by the sum of the
weights. The weights are a partition of unity by construction, so a network that gives the same
answer in two tiles (a constant plate, or any network whose receptive field fits in the halo)
gives that answer in the blend too: no seam.

Boxes are (y0, y1, x0, x1), half-open, in the pixels of the frame being tiled.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

Box = tuple[int, int, int, int]
"""(y0, y1, x0, x1), half-open, in pixels."""


@dataclass(frozen=True)
class Tile:
    """One tile of a grid.

    Attributes:
        core: the box whose pixels this tile contributes to the blend.
        context: the box the network is run on: the core grown by the halo, clipped to the frame.
    """

    core: Box
    context: Box

    @property
    def inner(self) -> tuple[slice, slice]:
        """Where the core lies inside the context's output, as (rows, columns) slices."""
        cy0, cy1, cx0, cx1 = self.core
        y0, _, x0, _ = self.context
        return slice(cy0 - y0, cy1 - y0), slice(cx0 - x0, cx1 - x0)


def _starts(length: int, tile: int, stride: int) -> list[int]:
    """Start offsets of tiles of `tile` pixels every `stride` pixels covering [0, length); the last is flush."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)  # the last tile ends on the frame's edge rather than past it
    return starts


def grid(height: int, width: int, tile: int, overlap: int, halo: int) -> list[Tile]:
    """Tiles of `tile` x `tile` pixels covering a frame, neighbours overlapping by at least `overlap`.

    Args:
        height, width: the frame, in pixels.
        tile: side of a tile's core, in pixels (a smaller frame is one tile).
        overlap: pixels that neighbouring cores share, where their outputs are blended.
        halo: context pixels added around each core (clipped to the frame).

    Returns:
        The tiles, row by row.
    """
    if tile <= overlap:
        raise ValueError(f"tile ({tile}) must be larger than overlap ({overlap})")
    stride = tile - overlap
    tiles = []
    for y0 in _starts(height, tile, stride):
        for x0 in _starts(width, tile, stride):
            y1, x1 = min(y0 + tile, height), min(x0 + tile, width)
            context = (max(y0 - halo, 0), min(y1 + halo, height), max(x0 - halo, 0), min(x1 + halo, width))
            tiles.append(Tile(core=(y0, y1, x0, x1), context=context))
    return tiles


def touching(tiles: Sequence[Tile], mask: np.ndarray) -> list[Tile]:
    """The tiles whose core holds at least one True pixel of `mask` ((H, W) bool over the frame)."""
    return [t for t in tiles if mask[t.core[0]:t.core[1], t.core[2]:t.core[3]].any()]


def bounds(tiles: Sequence[Tile]) -> Box:
    """The smallest box holding every core of `tiles` (which must not be empty)."""
    return (min(t.core[0] for t in tiles), max(t.core[1] for t in tiles),
            min(t.core[2] for t in tiles), max(t.core[3] for t in tiles))


def _ramp(start: int, stop: int, length: int, overlap: int) -> np.ndarray:
    """1-D blend weights of a core [start, stop) on an axis of `length` pixels.

    Rises linearly over `overlap` pixels from each side that has a neighbour (not on the frame's
    edge), and never reaches 0, so that every pixel of a core counts for something.
    """
    n = stop - start
    weights = np.ones(n, np.float32)
    if overlap <= 0:
        return weights
    ramp = (np.arange(n, dtype=np.float32) + 1.0) / (overlap + 1.0)
    if start > 0:
        weights = np.minimum(weights, ramp)
    if stop < length:
        weights = np.minimum(weights, ramp[::-1])
    return weights


def blend_weight(tile: Tile, height: int, width: int, overlap: int) -> np.ndarray:
    """(h, w) float32 weights of a tile's core in the blend (separable ramps, > 0 everywhere)."""
    y0, y1, x0, x1 = tile.core
    return np.outer(_ramp(y0, y1, height, overlap), _ramp(x0, x1, width, overlap))


def run_tiled(fn: Callable[[Tile], np.ndarray], tiles: Sequence[Tile], height: int, width: int, overlap: int,
              channels: int) -> tuple[Box, np.ndarray]:
    """Run `fn` on every tile and blend the cores into one array over the tiles' bounds.

    Memory: one float32 accumulator and one weight plane over the bounds of `tiles` (which are
    the tiles touching a matte, so it grows with the matte, not the frame), plus one tile.

    Args:
        fn: tile -> (channels, ch, cw) float32 output over the tile's context box.
        tiles: the tiles to run (e.g. `touching(grid(...), matte)`); not empty.
        height, width: the frame the grid covers, in pixels.
        overlap: the grid's overlap (the blend ramps' length).
        channels: channels of fn's output.

    Returns:
        The bounds box and (channels, h, w) float32 blended output over it.
    """
    by0, by1, bx0, bx1 = bounds(tiles)
    total = np.zeros((channels, by1 - by0, bx1 - bx0), np.float32)
    weight_sum = np.zeros((by1 - by0, bx1 - bx0), np.float32)
    for tile in tiles:
        out = fn(tile)
        rows, cols = tile.inner
        weight = blend_weight(tile, height, width, overlap)
        y0, y1, x0, x1 = tile.core
        ys, xs = slice(y0 - by0, y1 - by0), slice(x0 - bx0, x1 - bx0)
        total[:, ys, xs] += out[:, rows, cols] * weight
        weight_sum[ys, xs] += weight
    # Pixels of the bounds that no core covers (between two non-adjacent tiles) keep weight 0 and value 0.
    np.divide(total, weight_sum, out=total, where=weight_sum > 0)
    return (by0, by1, bx0, bx1), total
