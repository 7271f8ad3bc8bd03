"""Mattes: binarising, dilation, resizing to working resolution, and the paper's shifted-mask holes."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def binarize(matte: torch.Tensor) -> torch.Tensor:
    """Any coverage counts as hole, as the reference code does (`bool(mask)`): float {0, 1}, same shape."""
    return (matte > 0).float()


def dilate(mask: torch.Tensor, pixels: int) -> torch.Tensor:
    """Grow a binary mask (..., H, W) by `pixels` in every direction (a square structuring element).

    The square's maximum is taken as two 1-D passes (exact: a max is separable), so a wide
    growth (a search radius over many frames) costs 2r, not r^2, a pixel; `pixels` beyond the
    frame's size changes nothing and is capped. Returns float32 {0, 1}, or `mask` itself for 0.
    """
    if pixels <= 0:
        return mask
    shape = mask.shape
    pixels = min(pixels, max(shape[-2:]))
    m = mask.reshape(-1, 1, *shape[-2:]).float()
    m = F.max_pool2d(m, (2 * pixels + 1, 1), 1, (pixels, 0))
    m = F.max_pool2d(m, (1, 2 * pixels + 1), 1, (0, pixels))
    return m.reshape(shape)


def downsample(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Binary mask (N, 1, H, W) -> (N, 1, h, w): a working pixel is hole if any full-res pixel under it is.

    Being conservative here matters: a fill that stops short of the matte edge would leave the
    object's fringe in the plate once the fill is scaled back up.
    """
    if tuple(mask.shape[-2:]) == tuple(size):
        return mask
    return binarize(F.adaptive_max_pool2d(mask.float(), size))


def shifted_holes(own: torch.Tensor, other: torch.Tensor, shift: tuple[int, int]) -> torch.Tensor:
    """The paper's training hole: a frame's own matte joined with another frame's matte rolled cyclically.

    Args:
        own: (B, 1, H, W) the batch frames' own mattes, {0, 1}.
        other: (B, 1, H, W) mattes of randomly drawn frames, {0, 1}.
        shift: (dy, dx) one cyclic shift for the whole batch, in pixels.

    Returns:
        (B, 1, H, W) float {0, 1}: own OR roll(other, shift).
    """
    rolled = torch.roll(other, shifts=shift, dims=(-2, -1))
    return torch.maximum(own, rolled)
