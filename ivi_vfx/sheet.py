"""Contact sheets of a finished job: plate | fill | matte [| confidence] of chosen frames (`ivi-render preview`)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from ivi_vfx.carry.sampling import CONFIDENCE
from ivi_vfx.errors import ConfigError, ExrReadError, MissingFramesError, SequenceNotFoundError
from ivi_vfx.io.exr import read_exr
from ivi_vfx.io.sequence import find_sequence, output_sequence
from ivi_vfx.report import BACKGROUND, FONT, INK, grey, report_folder, tile_row, to_display, write_png

if TYPE_CHECKING:
    from ivi_vfx.jobs import JobSpec

SHEET_FILE = "sheet.png"
"""The contact sheet's default name, inside the job folder's report/."""


@dataclass(frozen=True)
class SheetRow:
    """What one frame of a contact sheet shows, display-ready."""

    frame: int
    plate: np.ndarray | None
    """(H, W, 3) scene-linear, or None when the plate frame is no longer on disk (a removed bake)."""
    fill: np.ndarray
    """(H, W, 3) scene-linear: the output frame's RGB."""
    matte: np.ndarray
    """(H, W) the output's alpha: the filled matte."""
    confidence: np.ndarray | None
    """(H, W) the output's confidence.Y when it has one."""


def sheet_frames(spec: JobSpec, count: int = 5) -> list[int]:
    """`count` frames spread evenly over a job's output frames on disk (first and last included).

    Raises:
        SequenceNotFoundError: no output frame is on disk.
    """
    on_disk = list(find_sequence(spec.out).frames)
    if len(on_disk) <= count:
        return on_disk
    return sorted({on_disk[round(k * (len(on_disk) - 1) / (count - 1))] for k in range(count)})


def sheet_rows(spec: JobSpec, frames: Sequence[int]) -> list[SheetRow]:
    """Read each chosen frame's plate and output.

    Raises:
        MissingFramesError: an output frame is not on disk (the message names them and the fix).
    """
    out = output_sequence(spec.out, frames)
    missing = [f for f in out.frames if not out.path(f).is_file()]
    if missing:
        raise MissingFramesError(f"{spec.out}: frames {', '.join(map(str, missing))} are not rendered; render them "
                                 f"(ivi-render render --job {spec.folder / 'job.json'}) or choose other --frames")
    try:
        plate = find_sequence(spec.plate, list(out.frames))
    except (SequenceNotFoundError, MissingFramesError):
        plate = None
    rows = []
    for frame in out.frames:
        result = read_exr(out.path(frame))
        names = result.channel_names
        plate_rgb = None
        if plate is not None:
            try:
                plate_rgb = read_exr(plate.path(frame)).over(("R", "G", "B"), result.display_window)
            except ExrReadError:
                plate_rgb = None
        rows.append(SheetRow(frame=frame, plate=plate_rgb, fill=result.display(("R", "G", "B")),
                             matte=result.display(("A",))[..., 0] if "A" in names else np.zeros(
                                 result.display_window[3:1:-1], np.float32),
                             confidence=result.display((CONFIDENCE,))[..., 0] if CONFIDENCE in names else None))
    return rows


def _fit_width(tile: np.ndarray, width: int) -> np.ndarray:
    h, w = tile.shape[:2]
    height = max(1, round(h * width / w))
    interpolation = cv2.INTER_AREA if width < w else cv2.INTER_NEAREST
    return cv2.resize(tile, (width, height), interpolation=interpolation)


def _missing_tile(shape: tuple[int, int], text: str) -> np.ndarray:
    tile = np.full((*shape, 3), 60, np.uint8)
    cv2.putText(tile, text, (6, shape[0] // 2), FONT, 0.4, INK, 1, cv2.LINE_AA)
    return tile


def sheet_image(rows: Sequence[SheetRow], tile_width: int = 320, title: str = "") -> np.ndarray:
    """A contact sheet: one row per frame, plate | fill | matte [| confidence] (confidence when any frame has it).

    Returns:
        (H, W, 3) uint8 BGR.
    """
    with_confidence = any(r.confidence is not None for r in rows)
    body = []
    for r in rows:
        tiles = [to_display(r.plate) if r.plate is not None else None, to_display(r.fill), grey(r.matte)]
        if with_confidence:
            tiles.append(grey(r.confidence) if r.confidence is not None else None)
        fitted = [_fit_width(t, tile_width) if t is not None else None for t in tiles]
        height = next(t for t in fitted if t is not None).shape[0]
        filled = [t if t is not None else _missing_tile((height, tile_width), "not on disk") for t in fitted]
        captions = [f"{r.frame} plate", "fill", "matte", *(("confidence",) if with_confidence else ())]
        body.append(tile_row(filled, captions))
    width = max(b.shape[1] for b in body)
    blocks = [np.pad(b, ((0, 4), (0, width - b.shape[1]), (0, 0)), constant_values=BACKGROUND[0]) for b in body]
    if title:
        head = np.full((24, width, 3), BACKGROUND, np.uint8)
        cv2.putText(head, title, (4, 17), FONT, 0.5, INK, 1, cv2.LINE_AA)
        blocks.insert(0, head)
    return np.concatenate(blocks, axis=0)


def write_contact_sheet(spec: JobSpec, frames: Sequence[int] | None = None, out: Path | None = None,
                        tile_width: int = 320) -> Path:
    """`ivi-render preview`: a contact sheet of chosen frames of a finished job.

    Args:
        frames: the frames; None: five spread over the output frames on disk.
        out: the PNG; None: the job folder's report/sheet.png.

    Raises:
        MissingFramesError, SequenceNotFoundError: the frames are not rendered.
        ConfigError: the PNG cannot be written.
    """
    frames = list(frames) if frames is not None else sheet_frames(spec)
    rows = sheet_rows(spec, frames)
    path = Path(out) if out is not None else report_folder(spec.folder) / SHEET_FILE
    image = sheet_image(rows, tile_width, title=f"{spec.job_name}: {spec.out}")
    try:
        return write_png(path, image)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write the contact sheet ({exc}); choose another --out") from exc
