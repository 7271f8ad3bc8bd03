"""Progressive high resolution against the working-resolution fill scaled up, on 2K and 4K plates.

For each size, writes a procedural shot with known ground truth into a temporary folder: a fine,
grainy texture (multi-octave value noise, a fine woven pattern with a 5-7 pixel period, per-pixel
grain) panning 3 px right and 1 px down a frame, with a foreign object (an orange disc with its
own texture) moving across it; the matte is the disc grown by 2 pixels. 24 frames of half RGBA,
zip-compressed (`--compression`), as a scanned plate would be.

Then runs `ivi-render inpaint` twice, each a separate process:

- `working`: `--scales off`, the working-resolution fill scaled up to the plate;
- `progressive`: `--scales auto` (or --scales), the finer scales on top of the same
  working-resolution model: it resumes a copy of the first run's checkpoint, so it trains only the
  finer scales. Its "wall" adds the first run's training seconds (from its log) to its own, so it
  is what one progressive run from scratch costs;
- `carried`: `--scales off --carry`, the known-pixel carry (what other frames show, sampled from
  their full-resolution files) with the working-resolution fill for the rest, from scratch.

The first two run `--no-carry`: the network alone, as before the carry.

and scores every output frame against the truth inside the matte:

- hole PSNR (dB), on linear RGB clipped to [0, 1];
- detail: the fill's high-frequency energy over the truth's, inside the matte eroded by 3 pixels
  (high frequencies: the image minus its Gaussian blur of sigma 1.5 px); 1.0 is as much fine
  detail as the truth, a soft fill is near 0;
- wall time of the whole process (loading, training, rendering, writing) and its peak resident
  host memory (ru_maxrss of that child alone, from os.wait4).

    OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python bench/hires.py [--sizes 2k,4k] [--frames 24] \\
        [--steps 60] [--scale-steps 300] [--work-size 256] [--scales auto] [--device cpu] [--keep DIR]
        [--fills working,progressive,carried]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import torch
import torch.nn.functional as F

from ivi_vfx.io.exr import read_exr

BIN = Path(sys.executable).parent
SIZES = {"2k": (1080, 2048), "4k": (2160, 3840), "hd": (1080, 1920), "small": (540, 960)}
PAN = (1, 3)  # (dy, dx) pixels a frame


# --- the procedural shot ---------------------------------------------------------------------------

def texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """(height, width, 3) float32 scene-linear fine texture: colour noise, a fine weave, grain."""
    g = torch.Generator().manual_seed(seed)
    out = torch.zeros(3, height, width)
    for octave, amp in ((8, 0.12), (32, 0.06), (128, 0.04)):  # value noise, cells of width/octave
        cells = torch.rand(1, 3, max(2, height * octave // width + 2), octave + 2, generator=g)
        out += amp * F.interpolate(cells, size=(height, width), mode="bicubic", align_corners=False)[0]
    y = torch.arange(height, dtype=torch.float32)[:, None]
    x = torch.arange(width, dtype=torch.float32)[None, :]
    weave = torch.sin(2 * np.pi * x / 6.0 + 0.8 * torch.sin(2 * np.pi * y / 37.0)) * torch.sin(2 * np.pi * y / 5.0)
    out += 0.05 * weave[None] * torch.tensor([1.0, 0.9, 0.8])[:, None, None]
    out += 0.015 * torch.randn(3, height, width, generator=g)  # grain, part of the surface: it pans with it
    return (0.08 + out).permute(1, 2, 0).contiguous().numpy()


@dataclass
class Scene:
    """The ground truth of a shot and its object's path."""

    height: int
    width: int
    frames: int
    wall: np.ndarray  # (height + pan, width + pan, 3) float32

    @classmethod
    def make(cls, height: int, width: int, frames: int) -> Scene:
        return cls(height, width, frames, texture(height + PAN[0] * frames, width + PAN[1] * frames))

    def truth(self, t: int) -> np.ndarray:
        """(H, W, 3) float32 clean plate of frame index t (half-rounded, as written)."""
        y0, x0 = PAN[0] * t, PAN[1] * t
        return self.wall[y0:y0 + self.height, x0:x0 + self.width].astype(np.float16).astype(np.float32)

    def disc(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """The object of frame t: (H, W) bool coverage and (H, W) bool matte (coverage grown by 2 px)."""
        radius = 0.08 * self.height
        cy = 0.5 * self.height
        cx = self.width * (0.35 + 0.2 * t / max(self.frames - 1, 1))
        y = np.arange(self.height, dtype=np.float32)[:, None]
        x = np.arange(self.width, dtype=np.float32)[None, :]
        d2 = (y - cy) ** 2 + (x - cx) ** 2
        return d2 <= radius ** 2, d2 <= (radius + 2) ** 2

    def plate(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """(H, W, 4) float32 RGBA plate and (H, W) float32 matte of frame index t."""
        rgb = self.truth(t)
        cover, matte = self.disc(t)
        stripes = 0.5 + 0.5 * np.sin(np.arange(self.width, dtype=np.float32) / 3.0)[None, :]
        obj = np.stack([1.2 + 0.3 * stripes, 0.45 + 0.1 * stripes, 0.05 + 0 * stripes], -1)
        rgb = np.where(cover[..., None], np.broadcast_to(obj, rgb.shape), rgb)
        rgba = np.concatenate([rgb, np.ones((self.height, self.width, 1), np.float32)], -1)
        return rgba, matte.astype(np.float32)


def _write(path: Path, pixels: np.ndarray, channels: tuple[str, ...], compression: str = "zip") -> None:
    height, width, count = pixels.shape
    spec = oiio.ImageSpec(width, height, count, "half")
    spec.channelnames = channels
    spec.attribute("compression", compression)
    out = oiio.ImageOutput.create("openexr")
    if not (out.open(str(path), spec) and out.write_image(np.ascontiguousarray(pixels)) and out.close()):
        raise OSError(f"cannot write {path}: {out.geterror()}")


def write_scene(scene: Scene, folder: Path, compression: str = "zip") -> tuple[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    for t in range(scene.frames):
        rgba, matte = scene.plate(t)
        _write(folder / f"plate.{1001 + t}.exr", rgba, ("R", "G", "B", "A"), compression)
        _write(folder / f"mask.{1001 + t}.exr", matte[..., None], ("A",), compression)
    return str(folder / "plate.####.exr"), str(folder / "mask.####.exr")


# --- scoring -----------------------------------------------------------------------------------------

def high_pass(rgb: np.ndarray) -> np.ndarray:
    """(h, w, 3) -> (h, w, 3) image minus its Gaussian blur (sigma 1.5 px)."""
    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[:, None]
    radius = 5
    k = torch.exp(-torch.arange(-radius, radius + 1, dtype=torch.float32) ** 2 / (2 * 1.5 ** 2))
    k = k / k.sum()
    blur = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    blur = F.conv2d(F.pad(blur, (0, 0, radius, radius), mode="replicate"), k.view(1, 1, -1, 1))
    return (x - blur)[:, 0].permute(1, 2, 0).numpy()


def score(scene: Scene, out_pattern: str) -> tuple[float, float]:
    """(hole PSNR in dB, detail ratio) of an output sequence against the scene's truth."""
    squared, count, energy_fill, energy_truth = 0.0, 0, 0.0, 0.0
    for t in range(scene.frames):
        out = read_exr(out_pattern.replace("####", str(1001 + t))).display(("R", "G", "B"))
        truth = scene.truth(t)
        _, matte = scene.disc(t)
        rows, cols = np.flatnonzero(matte.any(1)), np.flatnonzero(matte.any(0))
        box = (slice(rows[0] - 8, rows[-1] + 9), slice(cols[0] - 8, cols[-1] + 9))
        m, a, b = matte[box], out[box], truth[box]
        squared += float(((np.clip(a, 0, 1) - np.clip(b, 0, 1))[m] ** 2).sum())
        count += int(m.sum()) * 3
        inner = -F.max_pool2d(-torch.from_numpy(m.astype(np.float32))[None, None], 7, 1, 3)[0, 0].numpy() > 0
        energy_fill += float((high_pass(a)[inner] ** 2).sum())
        energy_truth += float((high_pass(b)[inner] ** 2).sum())
    return 10 * np.log10(1.0 / max(squared / count, 1e-12)), energy_fill / max(energy_truth, 1e-12)


# --- runs --------------------------------------------------------------------------------------------

def run_inpaint(args: list[str], log: Path) -> tuple[float, float]:
    """Run ivi-render with `args`; (wall seconds, peak RSS in GiB) of that process alone."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    started = time.perf_counter()
    with open(log, "w") as handle:
        proc = subprocess.Popen([str(BIN / "ivi-render"), *args], stdout=handle, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if proc.returncode:
        raise RuntimeError(f"ivi-render failed ({proc.returncode}); see {log}:\n{log.read_text()[-3000:]}")
    return seconds, usage.ru_maxrss / 2 ** 20  # ru_maxrss is in KiB on Linux


def trained_seconds(log: Path) -> float:
    """The training seconds that an ivi-render log reports ('trained N steps in X s')."""
    found = re.findall(r"trained \d+ steps in ([0-9.]+) s", log.read_text())
    return float(found[-1]) if found else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="2k,4k", help=f"comma list of {', '.join(SIZES)}")
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--steps", type=int, default=60, help="working-resolution training steps")
    parser.add_argument("--work-size", type=int, default=256)
    parser.add_argument("--scales", default="auto")
    parser.add_argument("--patch-size", type=int, default=0)
    parser.add_argument("--scale-steps", type=int, default=300, help="training steps of each finer scale")
    parser.add_argument("--tile-size", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compression", default="zip", help="of the plates (and so of the outputs): zip, none...")
    parser.add_argument("--fills", default="working,progressive,carried",
                        help="which fills to run (progressive needs working, whose checkpoint it resumes)")
    parser.add_argument("--keep", type=Path, default=None, help="keep shots, outputs and logs in this folder")
    args = parser.parse_args()

    root = args.keep or Path(tempfile.mkdtemp(prefix="ivi_hires_"))
    rows = []
    try:
        for name in args.sizes.split(","):
            height, width = SIZES[name]
            folder = root / name
            tic = time.perf_counter()
            scene = Scene.make(height, width, args.frames)
            plate, mask = write_scene(scene, folder / "shot", args.compression)
            print(f"{name}: wrote {args.frames} frames {width}x{height} in {time.perf_counter() - tic:.0f} s",
                  file=sys.stderr)
            common = ["--plate", plate, "--mask", mask, "--preset", "final", "--steps", str(args.steps), "--budget",
                      "0", "--work-size", str(args.work_size), "--device", args.device, "--overwrite"]
            coarse_seconds = 0.0
            fills = args.fills.split(",")
            for label, scales in (("working", "off"), ("progressive", args.scales), ("carried", "off")):
                if label not in fills:
                    continue
                out = str(folder / label / "clean.####.exr")
                resume = "--no-resume" if label == "working" else "--resume"
                if label == "progressive":  # the same working-resolution model: resume it, train the finer scales
                    (folder / "progressive.job").mkdir(exist_ok=True)
                    shutil.copy(folder / "working.job" / "model.ckpt", folder / "progressive.job" / "model.ckpt")
                carry = "--carry" if label == "carried" else "--no-carry"
                seconds, peak = run_inpaint(
                    ["inpaint", *common, resume, carry, "--out", out, "--scales", scales, "--patch-size",
                     str(args.patch_size), "--scale-steps", str(args.scale_steps), "--tile-size", str(args.tile_size),
                     "--checkpoint-dir", str(folder / f"{label}.job")], folder / f"{label}.log")
                if label == "working":
                    coarse_seconds = trained_seconds(folder / f"{label}.log")
                elif label == "progressive":
                    seconds += coarse_seconds
                psnr, detail = score(scene, out)
                rows.append((name, f"{width}x{height}", label, psnr, detail, seconds, peak))
                print(f"{name} {label}: PSNR {psnr:.2f} dB, detail {detail:.3f}, {seconds:.0f} s, {peak:.2f} GiB",
                      file=sys.stderr)
                if args.keep is None:
                    shutil.rmtree(folder / label, ignore_errors=True)  # 4K outputs are large; scored, so gone
            if args.keep is None:
                shutil.rmtree(folder, ignore_errors=True)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)

    print(f"\n{args.frames} frames each, half RGBA; working size {args.work_size}, {args.steps} working steps, "
          f"device {args.device}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}\n")
    print("| plate | size | fill | hole PSNR (dB) | detail (HF energy / truth's) | wall (s) | peak host RSS (GiB) |")
    print("|---|---|---|---|---|---|---|")
    for name, size, label, psnr, detail, seconds, peak in rows:
        print(f"| {name} | {size} | {label} | {psnr:.2f} | {detail:.3f} | {seconds:.0f} | {peak:.2f} |")


if __name__ == "__main__":
    main()
