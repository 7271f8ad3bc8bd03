"""A stopping rule that needs no ground truth: known pixels held back as a validation hole.

Internal learning has no test set, and the loss it minimises (L1 on known pixels) keeps falling
long after the fill has stopped improving. So a few frames lend a second hole: a copy of the
frame's own matte moved onto known background elsewhere in the frame. Its pixels never enter the training loss
(the trainer zeroes their weight in every batch that holds the frame), yet their truth is known;
every `validate_every` steps the network fills that hole with the frame's own matte hidden too,
and the error there estimates the error of the real fill: the same shape, the same kind of
surroundings, never seen as a target.

The rule: stop when `patience` validations in a row have not improved the best error by 1%. In a
run with a fine-tune stage, the first plateau begins that stage instead (the reference recipe:
train, then fine-tune), and the second one ends the run. The last estimate is also the user's
quality figure (hole PSNR on display-referred pixels, in dB, as the shared scorer measures).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch

from ivi_vfx.shot import Shot

FRAMES = 4
"""Frames that lend a validation hole (spread over the shot)."""
MIN_GAIN = 0.01
"""A validation error must fall by this share of the best one to count as an improvement."""
_TRIES = 64
"""Random positions tried for each frame's hole before the frame is given up."""


def holdout_masks(shot: Shot, seed: int) -> torch.Tensor:
    """The held-out holes of the shot, one per frame (empty on frames that lend none).

    Each lending frame's own matte is moved by a random whole-pixel shift to a place where it
    covers only known picture (no pixel of the own matte, grown by 2 px, and none of the padding).
    The draws use their own generator, so the training's draws are the same with or without.

    Returns:
        (T, 1, H, W) float32 {0, 1} at the padded working size.
    """
    count = len(shot.frames)
    height, width = shot.geometry.padded
    out = torch.zeros(count, 1, height, width)
    rng = torch.Generator().manual_seed(seed + 104_729)
    grown = torch.nn.functional.max_pool2d(shot.holes, 5, 1, 2)  # (T, 1, H, W)
    blocked = torch.maximum(grown, 1.0 - shot.valid.expand(count, -1, -1, -1))
    lenders = sorted({round(i * (count - 1) / max(FRAMES - 1, 1)) for i in range(min(FRAMES, count))})
    shapes = shot.hole_shapes  # the object's own shapes, also where the carry lifted them
    for t in lenders:
        matte = shapes[t]
        if not matte.any():  # an empty matte: borrow the nearest frame's shape
            filled = [s for s in range(count) if shapes[s].any()]
            if not filled:
                continue
            matte = shapes[min(filled, key=lambda s: abs(s - t))]
        for _ in range(_TRIES):
            dy = int(torch.randint(height, (1,), generator=rng))
            dx = int(torch.randint(width, (1,), generator=rng))
            moved = torch.roll(matte, (dy, dx), dims=(-2, -1))
            if not (moved * blocked[t]).any():
                out[t] = moved
                break
    return out


def display(linear: torch.Tensor) -> torch.Tensor:
    """Scene-linear -> display-referred [0, 1] by the sRGB curve (what the shared scorer compares)."""
    x = linear.clamp(0.0, 1.0)
    return torch.where(x <= 0.0031308, 12.92 * x, 1.055 * x.clamp_min(1e-12) ** (1 / 2.4) - 0.055)


@dataclass
class StoppingRule:
    """The validation history of a run and the plateau test; checkpointed with the model."""

    patience: int
    """Validations without a MIN_GAIN improvement that make a plateau; 0 never stops."""
    history: list[tuple[int, float, float]] = field(default_factory=list)
    """(step, L1 error in the network domain, hole PSNR in dB) of every validation."""
    best: float = math.inf
    since_best: int = 0
    plateaus: int = 0
    """Plateaus met so far (a plateau in the reconstruction stage begins the fine-tune stage)."""

    def update(self, step: int, error: float, psnr: float) -> bool:
        """Record a validation; True when it completes a plateau (the counter then starts again)."""
        self.history.append((step, error, psnr))
        if error < self.best * (1.0 - MIN_GAIN):
            self.best, self.since_best = error, 0
            return False
        self.since_best += 1
        if self.patience and self.since_best >= self.patience:
            self.plateaus += 1
            self.since_best = 0
            self.best = error  # the next stage is judged against where it starts
            return True
        return False

    @property
    def estimate_db(self) -> float | None:
        """The latest validation's hole PSNR (dB), the run's quality estimate; None before any."""
        return self.history[-1][2] if self.history else None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict, patience: int) -> StoppingRule:
        return cls(patience=patience, history=[tuple(h) for h in data.get("history", [])],
                   best=float(data.get("best", math.inf)), since_best=int(data.get("since_best", 0)),
                   plateaus=int(data.get("plateaus", 0)))


class Validator:
    """Fills the held-out holes of a shot and measures the error there."""

    def __init__(self, shot: Shot, seed: int) -> None:
        self.shot = shot
        self.holdout = holdout_masks(shot, seed)  # (T, 1, H, W)
        self.frames = [t for t in range(len(shot.frames)) if self.holdout[t].any()]

    @property
    def active(self) -> bool:
        return bool(self.frames)

    def keep(self) -> torch.Tensor:
        """(T, 1, H, W) {0, 1}: where the training loss may look (inside the picture, not held out)."""
        return self.shot.valid * (1.0 - self.holdout)

    @torch.no_grad()
    def measure(self, model: torch.nn.Module, device: torch.device) -> tuple[float, float]:
        """(L1 error in the network domain, hole PSNR in dB on display-referred pixels) over the held-out holes."""
        index = torch.tensor(self.frames)
        images = self.shot.images[index].to(device)
        held = self.holdout[index].to(device)
        holes = torch.maximum(self.shot.holes[index].to(device), held)
        was_training = model.training
        model.eval()
        _, refined = model(images, holes)
        model.train(was_training)
        refined = refined.float()
        count = held.sum() * images.shape[1]
        error = float(((refined - images).abs() * held).sum() / count)
        shaper = self.shot.shaper
        diff = display(shaper.decode(refined.cpu())) - display(shaper.decode(images.cpu()))
        mse = float((diff ** 2 * held.cpu()).sum() / count)
        return error, 10.0 * math.log10(1.0 / max(mse, 1e-12))
