"""A run an artist can judge: the training's metrics CSV and plot, and preview frames (contact sheets: sheet.py).

While the fill trains, `TrainingReport` (wired into pipeline._fit's on_step) writes into the job folder's
``report/``::

    metrics.csv            step, seconds, loss, estimate_db, fraction: one row per training step
    plot.png               the loss (log scale) and the validation estimate against the step, redrawn
                           at most every PLOT_SECONDS
    preview.png            the latest preview: plate | fill | matte of one frame at working resolution,
                           rendered with the model in memory every IVI_PREVIEW_MINUTES of wall time
    previews/step_NNNNNN.png  every preview written
    sheet.png              `ivi-render preview`'s contact sheet of a finished job (sheet.py)

Everything here is best effort: a report that cannot be written logs one warning and stops writing; it
never fails or noticeably slows a training (a row is a buffered line; a plot a few milliseconds; a
preview one forward pass every few minutes). Pictures are display-referred (the sRGB curve on
scene-linear values clipped to 0..1), PNG, written atomically so that a panel reading them never
sees half a file.
"""
from __future__ import annotations

import csv
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

import cv2
import numpy as np
import torch

from ivi_vfx.errors import ConfigError
from ivi_vfx.io.atomic import atomic_path
from ivi_vfx.render import network_fill

if TYPE_CHECKING:
    from ivi_vfx.shot import Shot
    from ivi_vfx.train import StepInfo

logger = logging.getLogger(__name__)

REPORT_DIR = "report"
"""The report's folder inside a job folder."""
METRICS_FILE = "metrics.csv"
PLOT_FILE = "plot.png"
PREVIEW_FILE = "preview.png"
PREVIEWS_DIR = "previews"
METRICS_COLUMNS = ("step", "seconds", "loss", "estimate_db", "fraction")
"""metrics.csv's header: the step (1-based), wall seconds of training since the run began (a resumed run
continues the count), the step's total loss, the latest validation hole PSNR in dB (empty before the
first validation), and how far the run is (0..1)."""

PREVIEW_MINUTES_ENV = "IVI_PREVIEW_MINUTES"
"""Minutes of wall time between two training previews; 0: every step (tests); ``off``: none."""
DEFAULT_PREVIEW_MINUTES = 3.0
PLOT_SECONDS = 20.0
"""Least wall time between two redraws of plot.png (and the last one when the run ends)."""
MIN_TILE_HEIGHT = 160
"""A preview tile smaller than this many pixels is scaled up (nearest neighbour) to stay legible."""

BACKGROUND = (32, 32, 32)
INK = (235, 235, 235)
LOSS_COLOUR = (80, 160, 255)     # BGR: orange
ESTIMATE_COLOUR = (120, 220, 90)  # BGR: green
FONT = cv2.FONT_HERSHEY_SIMPLEX


def report_folder(job_folder: Path) -> Path:
    """``<job folder>/report``."""
    return Path(job_folder) / REPORT_DIR


def preview_minutes(environ: dict[str, str] | os._Environ[str] | None = None) -> float | None:
    """Minutes between previews from IVI_PREVIEW_MINUTES (default 3); None when previews are off.

    Raises:
        ConfigError: the variable is neither a number of minutes >= 0 nor ``off``.
    """
    value = (os.environ if environ is None else environ).get(PREVIEW_MINUTES_ENV, "").strip()
    if not value:
        return DEFAULT_PREVIEW_MINUTES
    if value.lower() == "off":
        return None
    try:
        minutes = float(value)
    except ValueError:
        minutes = -1.0
    if not minutes >= 0:
        raise ConfigError(f"{PREVIEW_MINUTES_ENV}={value!r}: give minutes between previews (e.g. 3), 0 for "
                          f"every step, or off")
    return minutes


# --- pictures ----------------------------------------------------------------------------------------

def to_display(linear: np.ndarray) -> np.ndarray:
    """Scene-linear -> display-referred 8-bit by the sRGB curve (values clipped to 0..1; NaN as 0).

    Args:
        linear: (H, W, 3) RGB or (H, W) float.

    Returns:
        The same shape, uint8.
    """
    x = np.nan_to_num(np.asarray(linear, np.float32), nan=0.0, posinf=1.0, neginf=0.0).clip(0.0, 1.0)
    srgb = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(np.maximum(x, 1e-12), 1 / 2.4) - 0.055)
    return np.round(srgb * 255.0).astype(np.uint8)


def grey(values: np.ndarray) -> np.ndarray:
    """(H, W) 0..1 (a matte, a confidence) -> (H, W, 3) uint8, linearly (0 black, 1 white)."""
    x = np.nan_to_num(np.asarray(values, np.float32)).clip(0.0, 1.0)
    return np.repeat(np.round(x * 255.0).astype(np.uint8)[..., None], 3, axis=2)


def _bgr(rgb: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rgb[..., ::-1])


def _label(tile: np.ndarray, text: str, bar: int = 18) -> np.ndarray:
    """A tile (H, W, 3) uint8 BGR with a caption bar above it: (H + bar, W, 3)."""
    out = np.full((tile.shape[0] + bar, tile.shape[1], 3), BACKGROUND, np.uint8)
    out[bar:] = tile
    scale = 0.42
    while scale > 0.25 and cv2.getTextSize(text, FONT, scale, 1)[0][0] > tile.shape[1] - 6:
        scale -= 0.04
    cv2.putText(out, text, (4, bar - 5), FONT, scale, INK, 1, cv2.LINE_AA)
    return out


def tile_row(tiles: Sequence[np.ndarray], captions: Sequence[str], gap: int = 4) -> np.ndarray:
    """Captioned tiles (RGB uint8 of one height) side by side: (H + caption, sum W + gaps, 3) BGR."""
    parts: list[np.ndarray] = []
    for k, (tile, caption) in enumerate(zip(tiles, captions, strict=True)):
        if k:
            parts.append(np.full((tile.shape[0] + 18, gap, 3), BACKGROUND, np.uint8))
        parts.append(_label(_bgr(tile), caption))
    return np.concatenate(parts, axis=1)


def write_png(path: Path, image_bgr: np.ndarray) -> Path:
    """Write a (H, W, 3) uint8 BGR image as PNG atomically (a reader never sees half a file).

    Raises:
        OSError: the folder cannot be written.
    """
    path = Path(path)
    ok, data = cv2.imencode(".png", image_bgr)
    if not ok:
        raise OSError(f"{path}: could not encode the PNG")
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.tobytes())
    return path


def _upscale(tiles: list[np.ndarray]) -> list[np.ndarray]:
    """Scale tiny tiles up by a whole factor (nearest), so a 32x24 working frame is still readable."""
    height = tiles[0].shape[0]
    factor = max(1, math.ceil(MIN_TILE_HEIGHT / max(height, 1)))
    if factor == 1:
        return tiles
    return [cv2.resize(t, (t.shape[1] * factor, t.shape[0] * factor), interpolation=cv2.INTER_NEAREST)
            for t in tiles]


def preview_image(plate: np.ndarray, fill: np.ndarray, matte: np.ndarray, confidence: np.ndarray | None = None,
                  title: str = "") -> np.ndarray:
    """One frame as plate | fill | matte [| confidence], captioned.

    Args:
        plate, fill: (H, W, 3) scene-linear; `fill` is the plate with the matte's region filled.
        matte: (H, W) 0..1, 1 = filled.
        confidence: (H, W) 0..1 or None: 1 = the plate's or carried pixel, lower = invented by the network.
        title: put before the first caption (e.g. the frame and step).

    Returns:
        (H' + 18, ~4 W', 3) uint8 BGR, H' >= MIN_TILE_HEIGHT.
    """
    tiles = [to_display(plate), to_display(fill), grey(matte)]
    captions = [f"{title} plate".strip(), "fill", "matte"]
    if confidence is not None:
        tiles.append(grey(confidence))
        captions.append("confidence")
    return tile_row(_upscale(tiles), captions)


@torch.no_grad()
def training_preview(model: torch.nn.Module, shot: Shot, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The in-memory model's fill of one shot frame at working resolution (the model is left as it was).

    Args:
        index: the frame's position in the shot (0-based).

    Returns:
        plate (h, w, 3) scene-linear, fill (h, w, 3) scene-linear (the plate, the network's output inside the
        matte), matte (h, w) {0, 1}; h, w the working size without padding.
    """
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    image, hole = shot.images[index:index + 1], shot.holes[index:index + 1]
    was_training = model.training
    model.eval()
    try:
        refined = network_fill(model, shot, index, device)
    finally:
        model.train(was_training)
    mixed = image * (1 - hole) + refined * hole
    h, w = shot.geometry.work
    plate = shot.shaper.decode(image.cpu())[0, :, :h, :w].permute(1, 2, 0).numpy()
    fill = shot.shaper.decode(mixed)[0, :, :h, :w].permute(1, 2, 0).numpy()
    return plate, fill, hole.cpu()[0, 0, :h, :w].numpy()


def preview_index(shot: Shot) -> int:
    """The frame a training preview shows: the one with the largest matte (the most to judge)."""
    return int(shot.holes.sum(dim=(1, 2, 3)).argmax())


def plot_image(rows: Sequence[tuple[int, float, float, float | None]], total: int | None = None,
               size: tuple[int, int] = (360, 640)) -> np.ndarray:
    """The loss (log scale, left axis) and the validation estimate (dB, right axis) against the step.

    Args:
        rows: (step, seconds, loss, estimate_db or None) in step order.
        total: the run's planned steps (the x axis' end); None: the last step.
        size: (height, width) in pixels.

    Returns:
        (height, width, 3) uint8 BGR.
    """
    height, width = size
    img = np.full((height, width, 3), BACKGROUND, np.uint8)
    left, right, top, bottom = 62, 62, 30, 34
    x0, x1, y0, y1 = left, width - right, top, height - bottom
    cv2.rectangle(img, (x0, y0), (x1, y1), (90, 90, 90), 1)
    steps = [r[0] for r in rows]
    last = max(total or 0, steps[-1] if steps else 1, 1)
    losses = [(s, r[2]) for s, r in zip(steps, rows, strict=True) if r[2] > 0 and math.isfinite(r[2])]
    estimates = [(s, float(r[3])) for s, r in zip(steps, rows, strict=True) if r[3] is not None]
    seconds = rows[-1][1] if rows else 0.0
    head = f"step {steps[-1] if steps else 0}/{last}  {seconds / 60:.1f} min"
    if losses:
        head += f"  loss {losses[-1][1]:.4f}"
    if estimates:
        head += f"  estimate {estimates[-1][1]:.2f} dB"
    cv2.putText(img, head, (x0, 20), FONT, 0.45, INK, 1, cv2.LINE_AA)
    cv2.putText(img, "0", (x0 - 4, y1 + 16), FONT, 0.4, INK, 1, cv2.LINE_AA)
    cv2.putText(img, f"{last}", (x1 - 8 * len(str(last)), y1 + 16), FONT, 0.4, INK, 1, cv2.LINE_AA)
    cv2.putText(img, "step", ((x0 + x1) // 2 - 14, y1 + 26), FONT, 0.4, INK, 1, cv2.LINE_AA)

    def xs(values: Sequence[int]) -> np.ndarray:
        return x0 + (np.asarray(values, np.float64) / last) * (x1 - x0)

    def curve(points: list[tuple[int, float]], lo: float, hi: float, colour: tuple[int, int, int]) -> None:
        if len(points) > 2000:  # thin to ~2000 points: a plot of a long run stays milliseconds
            points = points[:: math.ceil(len(points) / 2000)] + [points[-1]]
        span = max(hi - lo, 1e-9)
        ys = y1 - (np.asarray([p[1] for p in points]) - lo) / span * (y1 - y0)
        line = np.stack([xs([p[0] for p in points]), ys], axis=1).round().astype(np.int32)
        if len(line) == 1:
            cv2.circle(img, (int(line[0, 0]), int(line[0, 1])), 2, colour, -1)
        else:
            cv2.polylines(img, [line.reshape(-1, 1, 2)], False, colour, 1, cv2.LINE_AA)

    if losses:
        logs = [math.log10(v) for _, v in losses]
        lo, hi = math.floor(min(logs) * 4) / 4, math.ceil(max(logs) * 4) / 4 + 1e-9
        curve([(s, math.log10(v)) for s, v in losses], lo, hi, LOSS_COLOUR)
        for value, y in ((hi, y0), (lo, y1)):
            cv2.putText(img, f"{10 ** value:.3g}", (4, y + 4), FONT, 0.38, LOSS_COLOUR, 1, cv2.LINE_AA)
        cv2.putText(img, "loss", (4, (y0 + y1) // 2), FONT, 0.42, LOSS_COLOUR, 1, cv2.LINE_AA)
    if estimates:
        values = [v for _, v in estimates]
        lo, hi = math.floor(min(values)) - 0.5, math.ceil(max(values)) + 0.5
        curve(estimates, lo, hi, ESTIMATE_COLOUR)
        for value, y in ((hi, y0), (lo, y1)):
            cv2.putText(img, f"{value:g}", (x1 + 6, y + 4), FONT, 0.38, ESTIMATE_COLOUR, 1, cv2.LINE_AA)
        cv2.putText(img, "dB", (x1 + 6, (y0 + y1) // 2), FONT, 0.42, ESTIMATE_COLOUR, 1, cv2.LINE_AA)
    return img


def read_metrics(path: Path) -> list[tuple[int, float, float, float | None]]:
    """metrics.csv's rows as (step, seconds, loss, estimate_db or None); [] when there is no file."""
    if not Path(path).is_file():
        return []
    rows = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            try:
                estimate = row.get("estimate_db") or ""
                rows.append((int(row["step"]), float(row["seconds"]), float(row["loss"]),
                             float(estimate) if estimate else None))
            except (KeyError, TypeError, ValueError):
                continue  # a torn last line of a killed run
    return rows


# --- during training -------------------------------------------------------------------------------

class TrainingReport:
    """Writes report/ (metrics.csv, plot.png, previews) from the fill's training steps.

    A resumed run keeps the rows before its first step and continues their seconds; a fresh one
    (resume off, or another shot) starts the file again. Call `step` with every StepInfo, `close`
    once at the end (it draws the last plot and preview).
    """

    def __init__(self, job_folder: Path, shot: Shot | None = None, *, preview_every: float | None = None,
                 plot_every: float = PLOT_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        """
        Args:
            job_folder: the job folder (report/ goes inside it).
            shot: the shot being trained, for previews; None: no previews.
            preview_every: minutes between previews; None: IVI_PREVIEW_MINUTES (or its default).
            plot_every: least seconds between two plot redraws.
            clock: seconds, monotonic (tests pass a fake).
        """
        self.folder = report_folder(job_folder)
        self.shot = shot
        minutes = preview_minutes() if preview_every is None else preview_every
        self.preview_seconds = None if minutes is None or shot is None else 60.0 * minutes
        self.plot_seconds = plot_every
        self.clock = clock
        self.rows: list[tuple[int, float, float, float | None]] = []
        self.total: int | None = None
        self.last_step = 0
        self._file: IO[str] | None = None
        self._writer: csv.DictWriter[str] | None = None
        self._started = 0.0
        self._offset = 0.0
        self._last_plot = -math.inf
        self._last_preview = 0.0
        self._broken = False
        self.previews: list[Path] = []

    @property
    def metrics_path(self) -> Path:
        return self.folder / METRICS_FILE

    def _open(self, first_step: int) -> None:
        """Keep the rows of earlier calls before `first_step`; open the file for appending."""
        self.folder.mkdir(parents=True, exist_ok=True)
        kept = [r for r in read_metrics(self.metrics_path) if r[0] < first_step]
        self._offset = kept[-1][1] if kept else 0.0
        self.rows = kept
        self._file = open(self.metrics_path, "w", newline="")  # noqa: SIM115  (open for the whole run)
        self._writer = csv.DictWriter(self._file, METRICS_COLUMNS)
        self._writer.writeheader()
        for step, seconds, loss, estimate in kept:
            self._writer.writerow({"step": step, "seconds": f"{seconds:.3f}", "loss": f"{loss:.6g}",
                                   "estimate_db": "" if estimate is None else f"{estimate:.3f}", "fraction": ""})
        self._started = self.clock()
        self._last_preview = self._started

    def _guard(self, what: str, fn: Callable[[], None]) -> None:
        if self._broken:
            return
        try:
            fn()
        except (OSError, ValueError, RuntimeError, cv2.error) as exc:
            self._broken = True
            logger.warning("the training report in %s stops: %s failed (%s); training goes on", self.folder,
                           what, exc)

    def step(self, info: StepInfo, model: torch.nn.Module | None = None) -> None:
        """Record one step: a row; the plot when PLOT_SECONDS have passed; a preview when its interval has."""
        self._guard("writing metrics.csv", lambda: self._row(info))
        now = self.clock()
        if now - self._last_plot >= self.plot_seconds:
            self._guard("drawing plot.png", self._plot)
        model = model if model is not None else info.model
        if (self.preview_seconds is not None and model is not None
                and now - self._last_preview >= self.preview_seconds):
            self._last_preview = now
            self._guard("writing a preview", lambda: self._preview(model))

    def _row(self, info: StepInfo) -> None:
        if self._file is None:
            self._open(info.step)
        assert self._writer is not None and self._file is not None
        seconds = self._offset + self.clock() - self._started
        loss = float(info.losses.get("total", sum(info.losses.values())))
        estimate = getattr(info, "estimate_db", None)
        self.total, self.last_step = info.total, info.step
        self.rows.append((info.step, seconds, loss, estimate))
        self._writer.writerow({"step": info.step, "seconds": f"{seconds:.3f}", "loss": f"{loss:.6g}",
                               "estimate_db": "" if estimate is None else f"{estimate:.3f}",
                               "fraction": f"{info.fraction:.4f}"})
        self._file.flush()

    def _plot(self) -> None:
        if self.rows:
            write_png(self.folder / PLOT_FILE, plot_image(self.rows, self.total))
        self._last_plot = self.clock()

    def _preview(self, model: torch.nn.Module) -> None:
        assert self.shot is not None
        index = preview_index(self.shot)
        plate, fill, matte = training_preview(model, self.shot, index)
        image = preview_image(plate, fill, matte, title=f"frame {self.shot.frames[index]} step {self.last_step}")
        path = write_png(self.folder / PREVIEWS_DIR / f"step_{self.last_step:06d}.png", image)
        write_png(self.folder / PREVIEW_FILE, image)
        self.previews.append(path)

    def close(self, model: torch.nn.Module | None = None) -> None:
        """The last plot, and with `model` (and previews on) the last preview; closes metrics.csv."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self._guard("drawing plot.png", self._plot)
        if model is not None and self.preview_seconds is not None and self.last_step:
            self._guard("writing a preview", lambda: self._preview(model))
