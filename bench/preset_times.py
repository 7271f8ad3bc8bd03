"""Expected time per 100 frames of each preset: what a user waits for, measured on this machine.

A preset's training ends at its budget (its step count is a cap that a CPU does not reach first) or
sooner, when the stopping rule fires; so a run takes at most the budget plus the rest: reading the
plate, the finer scales on a plate large enough for them, rendering and writing every frame. This
measures the rest with a short training run of each preset (`ivi-render inpaint --steps 3`) on a
procedural 100-frame shot (854x480 by default, the DAVIS size, the yardstick of peers.md), and
prints budget + rest. A preset without a budget (paper) is priced at its steps times the s/step of
that run's last step. Each run is a fresh process, with the plate already on disk.

    .venv/bin/python bench/preset_times.py [--presets quick,final,paper] [--size 854x480] [--frames 100]

Timed: run it alone on the machine.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ivi_vfx.config import preset_config
from ivi_vfx.demo import write_shot

BIN = Path(sys.executable).parent
STEPS = 3
"""Training steps of each measured run (enough for one timed step after the first)."""


def measure(name: str, plate: str, mask: str, out: Path) -> dict:
    """One short run of a preset: its wall time and the s/step of its last training step."""
    command = [str(BIN / "ivi-render"), "inpaint", "--plate", plate, "--mask", mask, "--out", str(out / "c.####.exr"),
               "--preset", name, "--steps", str(STEPS), "--budget", "0", "--device", "cpu", "--no-resume",
               "--overwrite"]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"{name} failed:\n{done.stderr[-3000:]}")
    last = re.findall(r"step \d+/\d+ loss .* ([\d.]+) s/step", done.stderr)
    carry = re.findall(r"carry: .* in ([\d.]+) s", done.stderr)  # the carry's tracing (and still backgrounds)
    return {"wall_s": wall, "step_s": float(last[-1]) if last else 0.0, "carry_s": sum(float(c) for c in carry)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default="quick,final,paper")
    ap.add_argument("--size", default="854x480", help="WIDTHxHEIGHT of the procedural plate")
    ap.add_argument("--frames", type=int, default=100)
    a = ap.parse_args()
    width, height = (int(v) for v in a.size.lower().split("x"))
    rows = []
    with tempfile.TemporaryDirectory(prefix="ivi_presets_") as tmp:
        shot = write_shot(Path(tmp) / "shot", height=height, width=width, count=a.frames)
        for name in a.presets.split(","):
            cfg = preset_config(name, "cpu")
            run = measure(name, shot.plate, shot.mask, Path(tmp) / name)
            rest = run["wall_s"] - STEPS * run["step_s"]  # everything but training
            train = cfg.budget * 60.0 if cfg.budget else cfg.steps * run["step_s"]
            rows.append((name, cfg, run, rest, train))
            print(f"{name}: {run['wall_s']:.0f} s for {STEPS} steps", file=sys.stderr, flush=True)
    print(f"\n{a.frames} frames {width}x{height}, CPU ({os.cpu_count()} cores); training: at most the budget "
          f"(or the steps at the measured s/step); the rest: measured, scaled to 100 frames\n")
    print("| preset | network, working size, batch | training | s/step | the rest (read, carry, finer scales, "
          "render, write) | of which the carry | expected per 100 frames |")
    print("|---|---|---|---|---|---|---|")
    for name, cfg, run, rest, train in rows:
        per100 = train + rest * 100 / a.frames  # a shot's training does not grow with its length
        what = f"budget {cfg.budget:g} min" if cfg.budget else f"{cfg.steps:,} steps"
        carry = run["carry_s"] * 100 / a.frames
        print(f"| {name} | cnum {cfg.cnum}, {cfg.work_size} px, {cfg.batch_size} | {what} | {run['step_s']:.2f} | "
              f"{rest:.0f} s | {carry:.0f} s ({carry / per100:.1%} of the whole) | {_duration(per100)} |")
    return 0


def _duration(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


if __name__ == "__main__":
    raise SystemExit(main())
