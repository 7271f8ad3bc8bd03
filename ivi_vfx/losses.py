"""Training losses, each a named term; the trainer weights and sums the dictionary.

Reconstruction as the reference computes it: L1 on both outputs, weighted to zero on the
frame's own matte (where the truth is unknown) and on the padding, averaged over every element
(B*3*H*W), not over the known pixels only. The augmented holes lie inside the weighted region,
so the network is taught to fill them from what it sees around them and in other frames.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ivi_vfx.nets.encoder import features_for_context


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


def contextual(pred: torch.Tensor, target: torch.Tensor, h: float = 0.5) -> torch.Tensor:
    """The contextual loss (Mechrez et al.) exactly as the reference code computes it.

    For each frame: centre both feature sets on the target's mean (per channel, over the batch
    and all positions), normalise each feature vector, take cosine distances d_ij between
    prediction position i and target position j, make them relative to each i's nearest target
    (d_ij / (min_j d_ij + 1e-5)), turn them into affinities w_ij = exp((1 - d~_ij) / h) normalised
    over j, and score CX = mean_j max_i CX_ij. The loss is mean over frames of -log CX.

    Args:
        pred, target: (B, C, h, w) features.
        h: bandwidth; the reference uses 0.5.

    Returns:
        scalar loss; 0 when every target feature has an exact match in the prediction.
    """
    mu = target.mean(dim=(0, 2, 3), keepdim=True)
    # The reference normalises with no epsilon; a tiny one keeps an all-equal feature finite.
    x = F.normalize((pred - mu).flatten(2), dim=1, eps=1e-12)    # (B, C, Ni)
    y = F.normalize((target - mu).flatten(2), dim=1, eps=1e-12)  # (B, C, Nj)
    d = 1.0 - torch.bmm(x.transpose(1, 2), y)                    # (B, Ni, Nj) cosine distances
    relative = d / (d.min(dim=2, keepdim=True).values + 1e-5)
    w = torch.exp((1.0 - relative) / h)
    cx = w / w.sum(dim=2, keepdim=True)
    score = cx.max(dim=1).values.mean(dim=1)                     # (B,)
    return -torch.log(score).mean()


def anti_ambiguity(target: torch.Tensor, refined: torch.Tensor, weight: torch.Tensor, encoder: nn.Module,
                   max_positions: int = 2048) -> torch.Tensor:
    """The paper's anti-ambiguity term: each frame's refined output against another frame's known pixels.

    As the reference: the batch is reversed to pair frame k with frame B-1-k of the same
    consecutive batch (the middle one with itself), both images are blanked where the partner's
    truth is unknown, and only the refined output takes part.

    Args:
        target: (B, 3, H, W) the frames, network domain.
        refined: (B, 3, H, W) the generator's refined output.
        weight: (B, 1, H, W) 1 where each frame's truth is known.
        encoder: frozen feature encoder (nets.encoder).
        max_positions: feature positions per frame above which features are pooled (memory bound).

    Returns:
        scalar contextual loss (unweighted).
    """
    known = weight.flip(0)
    pred = features_for_context(encoder, refined * known, max_positions)
    real = features_for_context(encoder, target.flip(0) * known, max_positions)
    return contextual(pred, real)


def stabilization(change_in: torch.Tensor, coarse: torch.Tensor, refined: torch.Tensor, coarse_g: torch.Tensor,
                  refined_g: torch.Tensor, keep: torch.Tensor) -> dict[str, torch.Tensor]:
    """The paper's stabilisation terms: the output may change only as much as the input did.

    L1 of (f(gX) - f(X)) - (gI - I) on both outputs, outside the own matte and its transformed
    copy, and (our addition) only where gI holds picture rather than the zeros the warp brings in
    from outside the frame; averaged over every element, as the reference.

    Args:
        change_in: (B, 3, H, W) gI - I.
        coarse, refined: (B, 3, H, W) outputs on the input X.
        coarse_g, refined_g: (B, 3, H, W) outputs on the transformed input gX.
        keep: (B, 1, H, W) {0, 1} where the term applies.

    Returns:
        {"stab_coarse": scalar, "stab_refined": scalar} (unweighted)
    """
    return {
        "stab_coarse": (((coarse_g - coarse) - change_in).abs() * keep).mean(),
        "stab_refined": (((refined_g - refined) - change_in).abs() * keep).mean(),
    }
