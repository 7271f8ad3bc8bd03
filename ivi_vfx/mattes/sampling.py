"""The paste trainer's samples and loss: a key's object pasted at a random shift, scaled, rotated and
mirrored, and the weighted binary cross-entropy it is taught with."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ivi_vfx.config import PropagateConfig
from ivi_vfx.mattes.keys import Keys

JITTER_SCALE = (0.85, 1.2)
JITTER_ROTATE_DEG = 8.0


class PasteSampler:
    """Training samples: a frame with a key's object pasted at a random cyclic shift (and jittered).

    Without `unknown`, the frame is the key frame the object comes from (the reference). Once
    `unknown` is set (`reach`, then `self_training_unknown` after each round), a share
    cfg.other_frames of the samples are drawn on any plate frame instead, and that frame's pixels
    outside its unknown region are taught as background.

    Attributes:
        unknown: None, or (T, 1, ph, pw) float32 {0, 1} per plate frame: 1 where the object may
            be (the key matte itself on a key frame), so left out of the background term.
        teaching: (F,) int64 the frame indices that other-frame samples are drawn from: the keys,
            and the frames with some background outside `unknown` (set_unknown).
    """

    def __init__(self, keys: Keys, cfg: PropagateConfig, rng: torch.Generator) -> None:
        self.keys, self.cfg, self.rng = keys, cfg, rng
        self.index = torch.tensor(keys.indices)
        self.unknown: torch.Tensor | None = None
        self.teaching = self.index

    def set_unknown(self, unknown: torch.Tensor) -> None:
        """Set `unknown`; only frames with some background outside it are drawn as other frames."""
        self.unknown = unknown
        background = ((1 - unknown) * self.keys.frames.valid).flatten(1).amax(1) > 0
        self.teaching = torch.unique(torch.cat([self.index, background.nonzero()[:, 0]]))

    def _uniform(self, n: int, low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, generator=self.rng)

    def draw(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One batch.

        Returns:
            inputs: (B, 3, ph, pw) network-domain frames with a pasted object copy.
            target: (B, 1, ph, pw) {0, 1} the pasted copy's matte.
            weight: (B, 1, ph, pw) per-pixel loss weight: object_weight on the target, 1 - object_weight
                elsewhere, 0 where the frame's own object may be and on the padding.
        """
        keys, batch = self.keys, self.cfg.batch_size
        height, width = keys.frames.geometry.padded
        pick = torch.randint(len(self.index), (batch,), generator=self.rng)
        source = keys.frames.images[self.index[pick]]
        own = keys.mattes[pick]
        frames = source
        if self.unknown is not None:
            # Some samples on other frames: the same pasted copy over a background the keys never showed.
            other = torch.rand(batch, generator=self.rng) < self.cfg.other_frames
            anywhere = self.teaching[torch.randint(len(self.teaching), (batch,), generator=self.rng)]
            base = torch.where(other, anywhere, self.index[pick])
            frames, own = keys.frames.images[base], self.unknown[base]
        dy = torch.randint(height, (batch,), generator=self.rng)
        dx = torch.randint(width, (batch,), generator=self.rng)
        rolled = torch.stack([torch.roll(source[b], (int(dy[b]), int(dx[b])), dims=(-2, -1)) for b in range(batch)])
        pasted = torch.stack([torch.roll(keys.mattes[pick[b]], (int(dy[b]), int(dx[b])), dims=(-2, -1))
                              for b in range(batch)])
        theta = self._jitter(batch, height, width)
        grid = F.affine_grid(theta, [batch, 1, height, width], align_corners=False)
        rolled = F.grid_sample(rolled, grid, mode="bilinear", padding_mode="border", align_corners=False)
        pasted = F.grid_sample(pasted, grid, mode="nearest", padding_mode="zeros", align_corners=False)
        inputs = frames * (1 - pasted) + rolled * pasted
        w = self.cfg.object_weight
        # The frame's own object (or where it may be) is no background: out of the loss, as the
        # reference does (its pasted-over part too: the reference's weighting, kept unmeasured).
        weight = (1 - own) * keys.frames.valid * torch.where(pasted > 0, w, 1 - w)
        return inputs, pasted, weight

    def _jitter(self, batch: int, height: int, width: int) -> torch.Tensor:
        """(B, 2, 3) random scale, rotation and mirror about the frame centre, in affine_grid coordinates."""
        scale = torch.exp(self._uniform(batch, *(math.log(s) for s in JITTER_SCALE)))
        angle = self._uniform(batch, -JITTER_ROTATE_DEG, JITTER_ROTATE_DEG) * math.pi / 180
        mirror = torch.where(torch.rand(batch, generator=self.rng) < 0.5, -1.0, 1.0)
        aspect = width / height  # rotate in pixels, not in the normalised square
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        theta = torch.zeros(batch, 2, 3)
        theta[:, 0, 0], theta[:, 0, 1] = cos * mirror, -sin / aspect
        theta[:, 1, 0], theta[:, 1, 1] = sin * aspect * mirror, cos
        return theta


def weighted_bce(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean over every element of weight * binary cross-entropy (from logits, for stability)."""
    return (F.binary_cross_entropy_with_logits(logits, target, reduction="none") * weight).mean()
