"""The small random change g of the stabilisation loss: an affine warp, a brightness change, a blur.

The reference code (`get_transform`) draws, per frame, an affine map only: shift U[-2, 2] px,
rotation U[-1, 1] degree, zoom U[0.97, 1.03], shear U[-1, 1] degree on each axis. Its centre is
(H/2, W/2) in (column, row) order, an apparent bug that puts the pivot off-centre on a wide frame;
here the pivot is the frame's centre. The paper's text also names a brightness change and a blur,
which its code lacks; both are here, each switchable.

Our addition, the matte's own jitter: the hole of the second pass also reaches U[-2, 2] px further,
one way on each axis, over a picture that does not move with it. The reference's g moves picture and
hole together, as a camera shake does, so it teaches a fill that follows the picture; it never shows
the network a hole whose outline changes over a picture that stays put, which is what a roto or an
object that barely moves does from frame to frame. On such a shot (deficient_coffee) the whole
frame-to-frame change of the fill comes from the change of the hole's outline: with one fixed matte
for every frame, the fill moves 0.0001 per frame, against 0.004 with the shot's own mattes
(bench/ablation.py). The jitter makes the term ask for a fill that does not depend on exactly where
the hole's edge lies.

Brightness is an offset in the network domain: the shaper is logarithmic above its toe, so an
offset there is an exposure change in scene-linear light (U[-0.03, 0.03] is about +-0.1 stop on a
typical plate). The blur is a Gaussian of sigma U[0, 0.7] working pixels.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

SHIFT_PX = 2.0
ROTATE_DEG = 1.0
ZOOM = (0.97, 1.03)
SHEAR_DEG = 1.0
BRIGHTNESS = 0.03
BLUR_SIGMA = 0.7
MATTE_SHIFT_PX = 2.0
_BLUR_TAPS = 5


def _uniform(rng: torch.Generator, n: int, low: float, high: float) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=rng, dtype=torch.float64)


@dataclass
class Perturbation:
    """One draw of g for a batch of B frames of size (H, W).

    Attributes:
        theta: (B, 2, 3) float32 affine maps in the normalised coordinates of `F.affine_grid`
            (align_corners=False); output pixel p samples the input at theta @ p.
        brightness: (B,) float32 offsets in the network domain (zeros when switched off).
        sigma: (B,) float32 blur sigmas in working pixels (zeros when switched off).
        matte_theta: (B, 2, 3) float32 the hole's own map: theta followed by the matte's jitter
            (equal to theta when the jitter is off).
    """

    theta: torch.Tensor
    brightness: torch.Tensor
    sigma: torch.Tensor
    matte_theta: torch.Tensor | None = None

    _grids: dict[tuple, torch.Tensor] = field(default_factory=dict, repr=False)

    def _grid(self, x: torch.Tensor, theta: torch.Tensor | None = None) -> torch.Tensor:
        """The sampling grid of theta (default: the picture's) for x's batch and size, made once."""
        theta = self.theta if theta is None else theta
        key = (id(theta), x.shape[0], *x.shape[-2:], x.device)
        if key not in self._grids:
            self._grids[key] = F.affine_grid(theta.to(x.device), [x.shape[0], 1, *x.shape[-2:]],
                                             align_corners=False)
        return self._grids[key]

    def image(self, x: torch.Tensor) -> torch.Tensor:
        """g(I): (B, C, H, W) -> (B, C, H, W); warped bilinearly (0 outside the frame), blurred, brightened."""
        out = F.grid_sample(x, self._grid(x), mode="bilinear", padding_mode="zeros", align_corners=False)
        if bool((self.sigma > 0).any()):
            out = _blur(out, self.sigma.to(x.device))
        return out + self.brightness.to(x.device).view(-1, 1, 1, 1)

    def mask(self, m: torch.Tensor) -> torch.Tensor:
        """g(M) for a binary mask (B, 1, H, W) that belongs to the picture (the own matte, the padding):
        warped as the picture is, with nearest sampling, so it stays {0, 1}."""
        return F.grid_sample(m, self._grid(m), mode="nearest", padding_mode="zeros", align_corners=False)

    def hole(self, m: torch.Tensor) -> torch.Tensor:
        """The second pass's hole (B, 1, H, W) {0, 1}: g(M) joined with a copy moved by the matte's jitter.

        The join, rather than the moved copy alone, keeps every pixel of g(M) hidden: M holds the
        frame's own matte, whose pixels are the object and must never become context."""
        warped = self.mask(m)
        if self.matte_theta is None:
            return warped
        grid = self._grid(m, self.matte_theta)
        return torch.maximum(warped, F.grid_sample(m, grid, mode="nearest", padding_mode="zeros", align_corners=False))

    def coverage(self, like: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) {0, 1}: 1 where g(I) is made only of the frame's own pixels (no fill from outside)."""
        ones = torch.ones_like(like[:, :1])
        inside = F.grid_sample(ones, self._grid(ones), mode="bilinear", padding_mode="zeros", align_corners=False)
        inside = (inside > 0.999).float()
        # The blur pulls in the zero border from up to two pixels away: shrink by the blur's reach.
        if bool((self.sigma > 0).any()):
            inside = -F.max_pool2d(-inside, _BLUR_TAPS, 1, _BLUR_TAPS // 2)
        return inside


def draw(batch: int, size: tuple[int, int], rng: torch.Generator, *, affine: bool = True,
         brightness: bool = True, blur: bool = True, matte: bool = True) -> Perturbation:
    """Draw g for every frame of a batch.

    Args:
        batch: frames in the batch.
        size: (H, W) of the frames, working pixels.
        rng: the trainer's generator (the draws are part of the resumable state).
        affine, brightness, blur: which parts of g are on (the reference's and the paper's).
        matte: the hole's own jitter (ours) is on.
    """
    height, width = size
    deg = math.pi / 180.0
    tx, ty = _uniform(rng, batch, -SHIFT_PX, SHIFT_PX), _uniform(rng, batch, -SHIFT_PX, SHIFT_PX)
    rot = _uniform(rng, batch, -ROTATE_DEG, ROTATE_DEG) * deg
    zoom = _uniform(rng, batch, *ZOOM)
    hx, hy = _uniform(rng, batch, -SHEAR_DEG, SHEAR_DEG) * deg, _uniform(rng, batch, -SHEAR_DEG, SHEAR_DEG) * deg
    offsets = _uniform(rng, batch, -BRIGHTNESS, BRIGHTNESS)
    sigmas = _uniform(rng, batch, 0.0, BLUR_SIGMA)
    if not affine:
        tx, ty, rot, hx, hy, zoom = (torch.zeros_like(tx),) * 5 + (torch.ones_like(zoom),)
    theta = torch.stack([_affine(height, width, *p) for p in zip(tx, ty, rot, zoom, hx, hy)])
    # Drawn whether or not it is used, so switching it leaves the other draws (and a resume) alike.
    mx = _uniform(rng, batch, -MATTE_SHIFT_PX, MATTE_SHIFT_PX)
    my = _uniform(rng, batch, -MATTE_SHIFT_PX, MATTE_SHIFT_PX)
    matte_theta = None
    if matte:
        # The hole samples the already-warped picture's grid at a further shift: theta composed with it.
        one, zero = torch.ones((), dtype=torch.float64), torch.zeros((), dtype=torch.float64)
        matte_theta = torch.stack([
            (_homogeneous(t) @ _homogeneous(_affine(height, width, x, y, zero, one, zero, zero)))[:2]
            for t, x, y in zip(theta, mx, my)]).float()
    return Perturbation(theta=theta.float(),
                        brightness=(offsets if brightness else torch.zeros_like(offsets)).float(),
                        sigma=(sigmas if blur else torch.zeros_like(sigmas)).float(), matte_theta=matte_theta)


def _homogeneous(theta: torch.Tensor) -> torch.Tensor:
    """(2, 3) -> (3, 3) with the row (0, 0, 1)."""
    return torch.cat([theta, torch.tensor([[0.0, 0.0, 1.0]], dtype=theta.dtype)])


def _affine(height: int, width: int, tx: torch.Tensor, ty: torch.Tensor, rot: torch.Tensor, zoom: torch.Tensor,
            hx: torch.Tensor, hy: torch.Tensor) -> torch.Tensor:
    """(2, 3) float64: shift + rotation + shear + zoom about the frame's centre, in affine_grid's coordinates."""
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    to_centre = torch.tensor([[1.0, 0.0, -cx], [0.0, 1.0, -cy], [0.0, 0.0, 1.0]], dtype=torch.float64)
    back = torch.tensor([[1.0, 0.0, cx], [0.0, 1.0, cy], [0.0, 0.0, 1.0]], dtype=torch.float64)
    c, s = torch.cos(rot), torch.sin(rot)
    one, zero = torch.ones((), dtype=torch.float64), torch.zeros((), dtype=torch.float64)
    rotate = torch.stack([torch.stack([c, -s, zero]), torch.stack([s, c, zero]), torch.stack([zero, zero, one])])
    shear = torch.stack([torch.stack([one, torch.tan(hx), zero]), torch.stack([torch.tan(hy), one, zero]),
                         torch.stack([zero, zero, one])])
    scale = torch.diag(torch.stack([zoom, zoom, one]))
    shift = torch.stack([torch.stack([one, zero, tx]), torch.stack([zero, one, ty]), torch.stack([zero, zero, one])])
    pixels = shift @ back @ rotate @ shear @ scale @ to_centre  # output pixel (x, y, 1) -> input pixel
    # Pixel centres (x + 0.5) / W * 2 - 1 are affine_grid's coordinates with align_corners=False.
    norm = torch.tensor([[2.0 / width, 0.0, 1.0 / width - 1.0], [0.0, 2.0 / height, 1.0 / height - 1.0],
                         [0.0, 0.0, 1.0]], dtype=torch.float64)
    return (norm @ pixels @ torch.linalg.inv(norm))[:2]


def _blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Per-frame Gaussian blur of (B, C, H, W) with sigmas (B,); sigma 0 leaves a frame as it is."""
    b, c, h, w = x.shape
    taps = torch.arange(_BLUR_TAPS, device=x.device, dtype=x.dtype) - _BLUR_TAPS // 2
    s = sigma.clamp_min(1e-3).view(-1, 1)
    g = torch.exp(-0.5 * (taps.view(1, -1) / s) ** 2)
    g = g / g.sum(dim=1, keepdim=True)  # (B, taps); sigma near 0 gives (0, 0, 1, 0, 0)
    kernel = (g[:, :, None] * g[:, None, :]).repeat_interleave(c, dim=0).unsqueeze(1)  # (B*C, 1, taps, taps)
    pad = _BLUR_TAPS // 2
    out = F.conv2d(F.pad(x.reshape(1, b * c, h, w), (pad,) * 4, mode="replicate"), kernel, groups=b * c)
    return out.reshape(b, c, h, w)
