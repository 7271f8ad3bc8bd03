"""Training losses, each a named term; the trainer sums the dictionary.

Reconstruction as the reference computes it: L1 on both outputs, weighted to zero on the
frame's own matte (where the truth is unknown) and on the padding, averaged over every element
(B*3*H*W), not over the known pixels only. The augmented holes lie inside the weighted region,
so the network is taught to fill them from what it sees around them and in other frames.
"""
from __future__ import annotations

import torch


def reconstruction(target: torch.Tensor, coarse: torch.Tensor, refined: torch.Tensor,
                   weight: torch.Tensor) -> dict[str, torch.Tensor]:
    """L1 of both generator outputs.

    Args:
        target: (B, 3, H, W) the frames, network domain.
        coarse, refined: (B, 3, H, W) the generator's two outputs.
        weight: (B, 1, H, W) 1 where the truth is known (outside the own matte, inside the picture).

    Returns:
        {"l1_coarse": scalar, "l1_refined": scalar}
    """
    return {
        "l1_coarse": ((target - coarse).abs() * weight).mean(),
        "l1_refined": ((target - refined).abs() * weight).mean(),
    }
