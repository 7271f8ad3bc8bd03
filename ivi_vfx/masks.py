"""Mattes: binarising, dilation, resizing to working resolution, and the paper's shifted-mask holes."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def binarize(matte: torch.Tensor) -> torch.Tensor:
    """Any coverage counts as hole, as the reference code does (`bool(mask)`): float {0, 1}, same shape."""
    return (matte > 0).float()


def dilate(mask: torch.Tensor, pixels: int) -> torch.Tensor:
    """Grow a binary mask (..., H, W) by `pixels` in every direction (a square structuring element)."""
    if pixels <= 0:
        return mask
    shape = mask.shape
    m = mask.reshape(-1, 1, *shape[-2:]).float()
    k = 2 * pixels + 1
    m = F.max_pool2d(m, kernel_size=k, stride=1, padding=pixels)
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
