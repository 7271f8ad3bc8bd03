"""A shot in memory at working resolution: the one loader of plates and mattes.

Everything the trainer and the renderer need of a shot comes from `load_shot`: the frames as
network-domain tensors at working resolution (padded to the network's modulo), the holes at the
same size, where the padding lies, and the shaper that maps the plate into the network domain.
The full-resolution originals stay on disk; the renderer reads each one again when it writes
that frame, so the passthrough pixels come from the file itself.
"""
from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ivi_vfx import masks
from ivi_vfx.color import Shaper
from ivi_vfx.errors import ChannelError, MatteError, ShapeError
from ivi_vfx.io.exr import ExrImage, read_exr
from ivi_vfx.io.sequence import FrameSequence

logger = logging.getLogger(__name__)

RGB = ("R", "G", "B")
MODULO = 4  # the generator downsamples twice by 2


@dataclass(frozen=True)
class Geometry:
    """How a plate's display window maps to the working frame.

    Attributes:
        full: (H, W) of the plate's display window, in pixels.
        work: (h, w) of the plate scaled to working resolution (before padding).
        padded: (h, w) after padding bottom/right to a multiple of MODULO.
    """

    full: tuple[int, int]
    work: tuple[int, int]
    padded: tuple[int, int]

    @classmethod
    def for_plate(cls, full: tuple[int, int], work_size: int) -> Geometry:
        """Scale so the longest side is at most `work_size` (never up), then pad to the modulo."""
        height, width = full
        scale = min(1.0, work_size / max(height, width))
        work = (max(MODULO, round(height * scale)), max(MODULO, round(width * scale)))
        padded = tuple(math.ceil(s / MODULO) * MODULO for s in work)
        return cls(full=full, work=work, padded=padded)  # type: ignore[arg-type]

    @property
    def scaled(self) -> bool:
        return self.work != self.full

    def to_work(self, image: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) full resolution -> (N, C, h, w) working resolution, unpadded (antialiased bilinear)."""
        if not self.scaled:
            return image
        return F.interpolate(image, size=self.work, mode="bilinear", antialias=True, align_corners=False)

    def pad(self, image: torch.Tensor) -> torch.Tensor:
        """(N, C, h, w) -> (N, C, ph, pw), replicating the last row and column into the padding."""
        ph, pw = self.padded[0] - self.work[0], self.padded[1] - self.work[1]
        return F.pad(image, (0, pw, 0, ph), mode="replicate") if ph or pw else image

    def valid(self) -> torch.Tensor:
        """(1, 1, ph, pw) float32: 1 over the picture, 0 over the padding."""
        valid = torch.zeros(1, 1, *self.padded)
        valid[..., : self.work[0], : self.work[1]] = 1
        return valid

    def to_full(self, image: torch.Tensor) -> torch.Tensor:
        """(N, C, ph, pw) padded working frame -> (N, C, H, W) full resolution (bilinear)."""
        image = image[..., : self.work[0], : self.work[1]]
        if not self.scaled:
            return image
        return F.interpolate(image, size=self.full, mode="bilinear", align_corners=False)


@dataclass
class Shot:
    """A plate and its mattes, ready for training and rendering.

    Attributes:
        plate: the plate sequence on disk.
        mattes: the matte sequence on disk.
        mask_channel: the matte's channel name.
        dilate: matte growth in full-resolution pixels.
        geometry: full, working and padded sizes.
        shaper: the shot's scene-linear <-> network-domain mapping.
        images: (T, 3, ph, pw) float32 network-domain frames at working resolution.
        holes: (T, 1, ph, pw) float32 {0, 1} mattes at working resolution.
        valid: (1, 1, ph, pw) float32, 1 over the picture and 0 over the padding.
        shapes: (T, 1, ph, pw) float32 {0, 1}: the mattes whose shapes training and validation holes
            are drawn from, when they differ from `holes` (the carry lifts what other frames show out
            of `holes`, but the object keeps its size); None: `holes`.
    """

    plate: FrameSequence
    mattes: FrameSequence
    mask_channel: str
    dilate: int
    geometry: Geometry
    shaper: Shaper
    images: torch.Tensor
    holes: torch.Tensor
    valid: torch.Tensor
    shapes: torch.Tensor | None = None

    @property
    def hole_shapes(self) -> torch.Tensor:
        """(T, 1, ph, pw): the mattes that training holes take their shapes from (`shapes`, else `holes`)."""
        return self.holes if self.shapes is None else self.shapes

    @property
    def frames(self) -> tuple[int, ...]:
        return self.plate.frames

    def index(self, frame: int) -> int:
        return self.plate.frames.index(frame)

    def fingerprint(self) -> str:
        """A short hash of what training sees (pixels, holes, shaper): a checkpoint only resumes on its own shot."""
        digest = hashlib.sha256()
        digest.update(self.images.numpy().tobytes())
        digest.update(self.holes.numpy().tobytes())
        digest.update(repr(self.shaper.to_dict()).encode())
        return digest.hexdigest()[:16]

    def full_matte(self, frame: int) -> np.ndarray:
        """(H, W) bool matte of one frame over the plate's display window, binarised and dilated."""
        return read_matte(read_exr(self.mattes.path(frame)), self.mask_channel, self.dilate)


def mask_channel_of(image: ExrImage, requested: str | None) -> str:
    """The channel that holds the matte: the one asked for, else 'A', else the file's only channel."""
    names = image.channel_names
    if requested is not None:
        image.channel_index(requested)  # raises ChannelError naming the file and what exists
        return requested
    if "A" in names:
        return "A"
    if len(names) == 1:
        return names[0]
    raise ChannelError(
        f"{image.path}: no 'A' channel for the matte (channels: {', '.join(names)}); "
        f"pass --mask-channel with the channel that holds it"
    )


def read_matte(image: ExrImage, channel: str, dilate: int) -> np.ndarray:
    """(H, W) bool matte over the display window: binarised as the reference does (> 0), then dilated."""
    matte = torch.from_numpy(np.nan_to_num(image.display((channel,))[..., 0], nan=0.0))
    return masks.dilate(masks.binarize(matte), dilate).numpy() > 0


def read_plate_rgb(image: ExrImage) -> np.ndarray:
    """(H, W, 3) float32 scene-linear RGB over the display window (may hold NaN and inf)."""
    for name in RGB:
        if name not in image.channel_names:
            raise ChannelError(
                f"{image.path}: the plate has no {name} channel (channels: {', '.join(image.channel_names)}); "
                f"IVI-VFX fills R, G and B: shuffle the plate's colour into them before rendering"
            )
    return image.display(RGB)


def load_shot(plate: FrameSequence, mattes: FrameSequence, *, work_size: int, mask_channel: str | None = None,
              dilate: int = 0, shaper: Shaper | None = None) -> Shot:
    """Read every frame of a plate and its mattes, check they agree, and build the working-resolution shot.

    The plate is scaled down from its known pixels alone (`plate_rgb_work`): what lies under the
    matte (the object, NaN, anything) and non-finite pixels never reach a working pixel outside
    the working hole.

    Args:
        shaper: the shot's shaper when it is known (a checkpoint carries it), so that a chunk of the
            shot loads only its own frames; None: computed from these frames, as training does.

    Raises:
        ExrReadError: a frame is not a readable EXR (names it).
        ShapeError: a matte's format differs from its plate's, or the plate's frames differ in format.
        ChannelError: the plate has no RGB, or the matte has no such channel.
    """
    geometry: Geometry | None = None
    rgb_frames: list[torch.Tensor] = []
    hole_frames: list[torch.Tensor] = []
    channel: str | None = None
    for frame in plate.frames:
        image = read_exr(plate.path(frame))
        geometry = _frame_geometry(image, geometry, plate, work_size)
        matte_image = read_exr(mattes.path(frame))
        matte_full = matte_image.display_window[3], matte_image.display_window[2]
        if matte_full != geometry.full:
            raise ShapeError(
                f"{matte_image.path} is {matte_full[1]}x{matte_full[0]} but its plate {plate.path(frame)} is "
                f"{geometry.full[1]}x{geometry.full[0]}; give a matte in the plate's format (Reformat it to the plate)"
            )
        channel = channel or mask_channel_of(matte_image, mask_channel)
        matte = read_matte(matte_image, channel, dilate)
        rgb_frames.append(plate_rgb_work(image, geometry, matte))
        hole_frames.append(masks.downsample(torch.from_numpy(matte).float()[None, None], geometry.work)[0])
    assert geometry is not None and channel is not None  # a FrameSequence is never empty
    linear = torch.stack(rgb_frames)  # (T, 3, h, w) scene-linear, finite
    shaper = shaper or Shaper.for_plate(linear.numpy())
    images = geometry.pad(shaper.encode(linear)).contiguous()
    holes = geometry.pad(torch.stack(hole_frames))
    logger.info("shot: %d frames %dx%d, working %dx%d (padded %dx%d), matte channel %s, hole %.1f%% of pixels",
                len(plate), geometry.full[1], geometry.full[0], geometry.work[1], geometry.work[0],
                geometry.padded[1], geometry.padded[0], channel, 100 * float(holes.mean()))
    return Shot(plate=plate, mattes=mattes, mask_channel=channel, dilate=dilate, geometry=geometry,
                shaper=shaper, images=images, holes=holes.contiguous(), valid=geometry.valid())


def check_learnable(shot: Shot) -> None:
    """MatteError when the mattes leave no known pixel to learn the fill from, naming them and the fix.

    Training learns only from known pixels (outside every frame's own matte). A matte that covers
    every pixel of every frame, or that does so once scaled to working resolution (a working pixel
    is hole when any plate pixel under it is), leaves the network nothing but invention.
    """
    known = float((shot.valid * (1.0 - shot.holes)).sum())
    if known > 0:
        return
    (height, width), (h, w) = shot.geometry.full, shot.geometry.work
    full_known = any(not shot.full_matte(frame).all() for frame in shot.frames)
    if not full_known:
        raise MatteError(
            f"the matte {shot.mattes.pattern} covers every pixel of every frame ({len(shot.frames)} frames, "
            f"channel {shot.mask_channel}{f', grown by --dilate {shot.dilate}' if shot.dilate else ''}): there is "
            f"nothing known to learn the fill from; give a matte of the object alone (0 outside it)"
        )
    raise MatteError(
        f"the matte {shot.mattes.pattern} leaves no known pixel at the working size {w}x{h} (a working pixel is "
        f"hole when any of the plate's {width}x{height} pixels under it is): nothing to learn the fill from; "
        f"raise --work-size towards {max(height, width)}, or give a tighter matte"
        f"{' or a smaller --dilate' if shot.dilate else ''}"
    )


def shot_path_summary(shot: Shot) -> dict[str, object]:
    """Where a shot came from, as plain data for checkpoints and logs."""
    return {"plate": shot.plate.pattern, "mattes": shot.mattes.pattern, "frames": list(shot.frames),
            "mask_channel": shot.mask_channel, "dilate": shot.dilate, "full": list(shot.geometry.full),
            "work": list(shot.geometry.work), "folder": str(Path(shot.plate.pattern).parent)}


def plate_rgb_work(image: ExrImage, geometry: Geometry, unknown: np.ndarray | None = None) -> torch.Tensor:
    """(3, h, w) float32 finite scene-linear RGB of a plate frame at working resolution (unpadded).

    The plate is scaled from its known pixels alone: each working pixel is the filter's weighted
    mean of the finite plate pixels under it that are outside `unknown` (normalised convolution),
    so neither the object under a matte nor a NaN or inf anywhere reaches a working pixel (an
    antialiased filter reaches past the working hole, which is grown by max-pooling, by up to one
    working pixel). A working pixel with no such pixel under it takes the mean of its neighbours
    outside the working hole (`_fill_from_neighbours`), or 0 inside it, where the network never
    looks. The renderer puts the originals back outside the matte.

    Args:
        unknown: (H, W) bool over the display window, True where the plate's value must not be
            used (the dilated matte); None: only non-finite pixels are left out.
    """
    rgb = read_plate_rgb(image)
    known = np.isfinite(rgb).all(axis=-1)
    if unknown is not None:
        known &= ~unknown
    weight = torch.from_numpy(known.astype(np.float32))[None, None]
    values = torch.from_numpy(np.where(known[..., None], rgb, 0.0).astype(np.float32)).permute(2, 0, 1)[None]
    if geometry.scaled:
        values, weight = geometry.to_work(values * weight), geometry.to_work(weight)
    have = weight > 1e-6
    values = torch.where(have, values / weight.clamp_min(1e-6), torch.zeros(()))
    if not have.all():
        hole = None if unknown is None else masks.downsample(torch.from_numpy(unknown).float()[None, None],
                                                             geometry.work) > 0
        values = _fill_from_neighbours(values, have, hole)
    return values[0]


def _fill_from_neighbours(values: torch.Tensor, have: torch.Tensor, hole: torch.Tensor | None,
                          rounds: int = 64) -> torch.Tensor:
    """Give the working pixels outside `hole` that have no value the mean of their neighbours' values.

    A plate's NaN or inf region outside the matte is a loss target like any known pixel: a value
    spread in from around it, a ring a round, teaches nothing odd. Pixels still without one after
    `rounds` rounds (a plate that is mostly non-finite) stay 0. Values inside `hole` are not used.

    Args:
        values: (1, 3, h, w); have: (1, 1, h, w) bool, where `values` holds a value.
        hole: (1, 1, h, w) bool, or None.
    """
    have = have.clone() if hole is None else have & ~hole
    want = ~have if hole is None else ~have & ~hole
    kernel = torch.ones(1, 1, 3, 3)
    for _ in range(rounds):
        if not want.any():
            break
        count = F.conv2d(have.float(), kernel, padding=1)
        total = F.conv2d(values * have, kernel.expand(3, 1, 3, 3), padding=1, groups=3)
        new = want & (count > 0)
        values = torch.where(new, total / count.clamp_min(1.0), values)
        have, want = have | new, want & ~new
    return values


def _frame_geometry(image: ExrImage, geometry: Geometry | None, plate: FrameSequence, work_size: int) -> Geometry:
    """The geometry of the first frame, or ShapeError when a later frame's format differs from it."""
    full = image.display_window[3], image.display_window[2]
    if geometry is None:
        return Geometry.for_plate(full, work_size)
    if full != geometry.full:
        raise ShapeError(
            f"{image.path} is {full[1]}x{full[0]} but frame {plate.frames[0]} is "
            f"{geometry.full[1]}x{geometry.full[0]}; every frame of a plate must share one format"
        )
    return geometry


@dataclass
class Frames:
    """A plate alone at working resolution (for mask propagation, where most mattes are unknown).

    Attributes:
        plate: the plate sequence on disk.
        geometry: full, working and padded sizes.
        shaper: the plate's scene-linear <-> network-domain mapping.
        images: (T, 3, ph, pw) float32 network-domain frames.
        valid: (1, 1, ph, pw) float32, 1 over the picture.
    """

    plate: FrameSequence
    geometry: Geometry
    shaper: Shaper
    images: torch.Tensor
    valid: torch.Tensor

    def index(self, frame: int) -> int:
        return self.plate.frames.index(frame)


def load_frames(plate: FrameSequence, *, work_size: int, shaper: Shaper | None = None) -> Frames:
    """Read every frame of a plate at working resolution; frames must share one format.

    Args:
        shaper: the shot's shaper when known (a checkpoint carries it); None computes it from these frames.
    """
    geometry: Geometry | None = None
    rgb_frames = []
    for frame in plate.frames:
        image = read_exr(plate.path(frame))
        geometry = _frame_geometry(image, geometry, plate, work_size)
        rgb_frames.append(plate_rgb_work(image, geometry))
    assert geometry is not None
    linear = torch.stack(rgb_frames)  # (T, 3, h, w) scene-linear
    shaper = shaper or Shaper.for_plate(linear.numpy())
    logger.debug("plate: %d frames %dx%d, working %dx%d", len(plate), geometry.full[1], geometry.full[0],
                 geometry.work[1], geometry.work[0])
    images = geometry.pad(shaper.encode(linear)).contiguous()
    return Frames(plate=plate, geometry=geometry, shaper=shaper, images=images, valid=geometry.valid())
