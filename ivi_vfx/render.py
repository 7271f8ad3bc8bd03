"""Trained generator + plate frames -> composited clean-plate frames (any subset of the shot).

The plate fidelity rules (shared/DESIGN.md) live here:
1. every pixel outside the matte comes from the original file's buffer through `np.where`,
   never through arithmetic or a resize, so its half bits are unchanged;
2. the output keeps the plate's windows, pixel types, channel names and metadata;
3. alpha is the matte that was filled, not premultiplied;
4. NaN and inf outside the matte are written back untouched;
5. frames are written atomically and never over an existing file without `overwrite`.
"""
from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch

from ivi_vfx.carry.agreement import Agreement
from ivi_vfx.carry.sampling import CarrySampler
from ivi_vfx.errors import ExrReadError, OutputExistsError
from ivi_vfx.interpolate import smooth_fill
from ivi_vfx.io.exr import ExrImage, check_writable, read_exr, read_header
from ivi_vfx.io.sequence import FrameSequence
from ivi_vfx.nets import Generator
from ivi_vfx.provenance import write_frame
from ivi_vfx.shot import RGB, Shot

logger = logging.getLogger(__name__)

Compose = Callable[[ExrImage, int], tuple[np.ndarray, tuple[str, ...]]]
"""(plate frame as read, frame number) -> (pixels over its data window, channel names): a whole output frame."""


@torch.no_grad()
def predict(model: Generator, shot: Shot, frame: int, device: torch.device | str = "cpu") -> np.ndarray:
    """The generator's fill of one frame at full resolution.

    Returns:
        (H, W, 3) float32 scene-linear over the plate's display window. Only the matte's pixels
        of it are used; the rest is whatever the network made of the known pixels.
    """
    return to_plate(shot, network_fill(model, shot, shot.index(frame), device))


def to_plate(shot: Shot, fill: torch.Tensor) -> np.ndarray:
    """(1, 3, ph, pw) network-domain working fill -> (H, W, 3) float32 scene-linear over the display window."""
    # Scale back up in the network (log) domain, where a bilinear blend of neighbours is tamer on
    # highlights than in linear; then out to scene-linear.
    return shot.shaper.decode(shot.geometry.to_full(fill))[0].permute(1, 2, 0).numpy()


@torch.no_grad()
def network_fill(model: torch.nn.Module, shot: Shot, index: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """The generator's output for one shot frame, met to the plate at its hole's edge (`match_boundary`).

    The one way a fill is made from the network, for rendering, the finer scales' prior and the
    run's previews.

    Args:
        index: the frame's position in the shot (0-based).

    Returns:
        (1, 3, ph, pw) float32 network-domain output on the CPU, padded as the shot; only its hole's
        pixels are a fill, the rest is the network's reconstruction of what it was given.
    """
    image = shot.images[index:index + 1].to(device)
    hole = shot.holes[index:index + 1].to(device)
    _, refined = model(image, hole)
    return match_boundary(refined.float().cpu(), image.float().cpu(), hole.cpu(), shot.valid)


def match_boundary(fill: torch.Tensor, image: torch.Tensor, hole: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """The network's fill, offset inside the hole by its own error just outside it, so it meets the plate.

    Outside the hole the network reconstructs the pixels it was given; where it reconstructs them
    a little brighter, darker or of another hue, its fill just inside the hole is off the same way,
    and the difference shows as an edge. That error, measured on the known pixels and spread
    smoothly into the hole (the narrowest Gaussian average of known pixels that holds enough of
    them), is taken off the fill: at the edge the fill then continues the plate.

    Args:
        fill: (1, 3, h, w) the network's output (network domain); image: (1, 3, h, w) its input;
        hole: (1, 1, h, w) {0, 1} what it filled; valid: (1, 1, h, w) the picture (not the padding).

    Returns:
        (1, 3, h, w) float32, equal to `fill` outside the hole.
    """
    inside = hole[0, 0].numpy() > 0.5
    if not inside.any():
        return fill
    known = ~inside & (valid[0, 0].numpy() > 0.5)
    error = (image - fill)[0].permute(1, 2, 0).numpy()
    spread = torch.from_numpy(smooth_fill(np.ascontiguousarray(error), known)).permute(2, 0, 1)[None]
    return torch.where(hole > 0.5, fill + spread, fill)


def composite(original: ExrImage, fill: np.ndarray, matte: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    """Put the fill into the original inside the matte; everything else stays the original's.

    Args:
        original: the plate frame as read (data window pixels, all channels).
        fill: (H, W, 3) scene-linear over the display window.
        matte: (H, W) bool over the display window, True = filled.

    Returns:
        (h, w, c') float32 over the data window, and the channel names: the plate's, with alpha
        set to the matte (added as 'A' when the plate has none).
    """
    _, _, width, height = original.data_window
    return composite_region(original, on_data_window(original, fill), on_data_window(original, matte),
                            (0, height, 0, width))


def on_data_window(original: ExrImage, array: np.ndarray) -> np.ndarray:
    """An array over the display window, (H, W, ...), mapped onto the data window, (h, w, ...): zeros
    (False) where the data window reaches past the display window. The array itself when they agree."""
    if original.data_window == original.display_window:
        return array
    x, y, width, height = original.data_window
    full_x, full_y, full_width, full_height = original.display_window
    mapped = np.zeros((height, width, *array.shape[2:]), array.dtype)
    x0, y0 = max(x, full_x), max(y, full_y)
    x1, y1 = min(x + width, full_x + full_width), min(y + height, full_y + full_height)
    if x1 > x0 and y1 > y0:
        mapped[y0 - y:y1 - y, x0 - x:x1 - x] = array[y0 - full_y:y1 - full_y, x0 - full_x:x1 - full_x]
    return mapped


def composite_region(original: ExrImage, fill: np.ndarray, matte: np.ndarray,
                     box: tuple[int, int, int, int]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Put a fill that covers only `box` of the data window into the original, inside the matte.

    The high-resolution path (progressive/) fills the matte's neighbourhood only, so its fill is
    a box, not a frame; the rule is the same: `np.where` from the original buffer.

    Args:
        original: the plate frame as read (data window pixels, all channels).
        fill: (y1 - y0, x1 - x0, 3) scene-linear over `box`.
        matte: (h, w) bool over the DATA window, True = filled; it must be False outside `box`.
        box: (y0, y1, x0, x1) in data-window pixels.

    Returns:
        (h, w, c') float32 over the data window, and the channel names: the plate's, with alpha
        set to the matte (added as 'A' when the plate has none).
    """
    height, width = matte.shape
    y0, y1, x0, x1 = box
    if matte[:y0].any() or matte[y1:].any() or matte[:, :x0].any() or matte[:, x1:].any():
        raise ValueError("the matte reaches outside the fill's box")  # a bug, never a user error
    names = list(original.channel_names)
    pixels = original.pixels
    if "A" not in names:
        names.append("A")
        pixels = np.concatenate([pixels, np.zeros((height, width, 1), np.float32)], axis=2)
    out = pixels.copy()
    inside = matte[y0:y1, x0:x1]
    for k, name in enumerate(RGB):
        c = names.index(name)
        out[y0:y1, x0:x1, c] = np.where(inside, fill[..., k], pixels[y0:y1, x0:x1, c])
    out[..., names.index("A")] = matte.astype(np.float32)
    return out, tuple(names)


def check_outputs(out: FrameSequence, overwrite: bool) -> None:
    """Fail before any work when an output exists (without overwrite) or its folder cannot be written."""
    check_writable(out.path(out.frames[0]).parent)
    if overwrite:
        return
    existing = [p for p in out.paths() if p.exists()]
    if existing:
        more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
        raise OutputExistsError(f"{existing[0]}{more} already exist; pass --overwrite to replace them, "
                                f"or choose another --out")


def complete_frames(out: FrameSequence) -> list[int]:
    """The frames whose output is on disk and whole (its EXR header reads).

    Writes are atomic, so a file under a frame's name is a finished frame; the header check only
    guards against a file that something else left there.

    Raises:
        OutputExistsError: a file under a frame's name is not an EXR (names it and the fix).
    """
    done = []
    for frame in out.frames:
        path = out.path(frame)
        if not path.exists():
            continue
        try:
            read_header(path)
        except ExrReadError as exc:
            raise OutputExistsError(f"{path} exists but is not a whole EXR ({exc}); delete it or pass "
                                    f"--overwrite to render it again") from exc
        done.append(frame)
    return done


def _remove_stale_temporaries(path: Path) -> None:
    """Remove what a killed writer of this frame left (io.exr.write_exr's hidden `.<name>.*.tmp`).

    Only this frame's task writes this frame, so a temporary of its name is a dead attempt's.
    """
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        logger.info("removing %s, left by an interrupted render", stale)
        stale.unlink(missing_ok=True)


def render(model: Generator, shot: Shot, out: FrameSequence, *, frames: Iterable[int] | None = None,
           device: torch.device | str = "cpu", overwrite: bool = False, skip_existing: bool = False,
           on_frame: Callable[[int, Path], None] | None = None,
           compose: Compose | None = None, carry: CarrySampler | None = None,
           whole: Shot | None = None) -> list[Path]:
    """Write the clean plate of `frames` (default: all of the shot) to the output sequence.

    A frame whose matte is empty is copied through (alpha 0) without running the network, and so is
    one whose whole matte the carry shows (its working hole is lifted), before the carry blends.
    With `compose` (progressive high resolution, progressive/), that function makes each frame's
    pixels from the plate frame as read instead of the working-resolution fill scaled up.
    With `carry` (carry/), each frame's carried pixels are blended over the fill by their
    confidence, and the confidence is written as channel `confidence.Y`; with `whole` too (the shot as
    loaded, its holes the whole mattes: `shot` before the carry lifted it), the network also fills each
    frame's whole matte on its own, the carried pixels' low frequencies are weighed against that
    fill (CarrySampler.blend), and every matte pixel under confidence 1 is made to agree with the
    neighbouring frames' fills, in its low frequencies where carried, whole where invented
    (carry.agreement: `shot` must then hold the neighbours of `frames`).
    With `skip_existing` (and not `overwrite`), a frame whose output appears meanwhile (another
    task of a retried farm job wrote it) is left as it is instead of being an error.

    Returns:
        The written paths, in frame order.
    """
    model.eval()
    written = []
    # Each frame's working fill is made once, for its own frame and for its neighbours' agreement.
    fill_of = functools.lru_cache(maxsize=8)(lambda index: network_fill(model, shot, index, device))
    agreement = Agreement(shot, fill_of) if carry is not None and whole is not None else None
    for frame in (shot.frames if frames is None else frames):
        original = read_exr(shot.plate.path(frame))
        if compose is not None:
            pixels, names = compose(original, frame)
        else:
            matte = shot.full_matte(frame)
            # shot.holes is what the network fills: empty where the carry shows the whole matte. (The fill
            # is not kept past the composite: at 4K each full-resolution picture is 100 MB.)
            filled = matte.any() and bool(shot.holes[shot.index(frame)].any())
            pixels, names = composite(original, to_plate(shot, fill_of(shot.index(frame))) if filled
                                      else np.zeros((*matte.shape, 3), np.float32), matte)
        if carry is not None:
            own = agree = None
            if whole is not None and agreement is not None and (pixels[..., names.index("A")] > 0).any():
                own = on_data_window(original, predict(model, whole, frame, device))  # the network's own fill
                agree = on_data_window(original, agreement.correction(frame))
            pixels, names = carry.blend(original, frame, pixels, names, own=own, agreement=agree)
        path = out.path(frame)
        _remove_stale_temporaries(path)
        try:
            write_frame(path, original, pixels, names, model=model, overwrite=overwrite)  # + provenance, parts
        except OutputExistsError:
            if not skip_existing:
                raise
            logger.info("%s appeared meanwhile (another task); leaving it", path)
        else:
            written.append(path)
        if on_frame is not None:
            on_frame(frame, path)
    return written
