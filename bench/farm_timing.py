"""Chunk timing of one `openjd run` of the farm bundle: train seconds, render seconds per chunk.

Writes the demo shot (16 frames, 128x72) into a temporary folder, writes the Open Job Description
bundle with `ivi-render submit --bundle-only`, runs it locally with `openjd run -p
file://BUNDLE/openjd_parameters.json --step Render --run-dependencies --output json`, and prints a
table of every task's wall time (from the process's start to its exit, as openjd logs them; each
includes ivi-render's start-up, about 1.5 s of importing torch).

    .venv/bin/python bench/farm_timing.py [--steps 200] [--chunk-size 4] [--preset final] [--threads 1]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

from ivi_vfx.demo import write_shot

BIN = Path(sys.executable).parent


def _seconds(stamp: str) -> float:
    """openjd's relative timestamp 'H:MM:SS.ffffff' -> seconds."""
    hours, minutes, seconds = stamp.split(":")
    return timedelta(hours=int(hours), minutes=int(minutes), seconds=float(seconds)).total_seconds()


def task_times(logs: list[dict[str, str]]) -> list[tuple[str, str, float]]:
    """(step, frames, seconds) of every task in an `openjd run --output json` log, in run order."""
    rows, step, frames, started = [], "", "-", 0.0
    for entry in logs:
        message, at = entry.get("message", ""), _seconds(entry["timestamp"])
        if match := re.search(r"Running step '(\w+)'", message):
            step, frames = match[1], "-"
        elif match := re.match(r"Frame\(CHUNK\[INT\]\) = (\S+)", message):
            frames = match[1]
        elif message.startswith("Command started as pid"):
            started = at
        elif re.match(r"Process pid \d+ exited with code: 0", message):
            rows.append((step, frames, at - started))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200, help="training steps")
    parser.add_argument("--chunk-size", type=int, default=4, help="frames per Render task")
    parser.add_argument("--preset", default="final")
    parser.add_argument("--threads", default="1", help="OMP_NUM_THREADS of the tasks")
    args = parser.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": args.threads, "PYTHONUNBUFFERED": "1"}
    with tempfile.TemporaryDirectory(prefix="ivi_farm_timing_") as tmp:
        folder = Path(tmp)
        shot = write_shot(folder / "shot")
        subprocess.run([str(BIN / "ivi-render"), "submit", "--farm", "openjd", "--bundle", str(folder / "bundle"),
                        "--plate", shot.plate, "--mask", shot.mask, "--out", str(folder / "out/clean.####.exr"),
                        "--preset", args.preset, "--steps", str(args.steps), "--budget", "0",
                        "--chunk-size", str(args.chunk_size), "--bundle-only"],
                       check=True, env=env, capture_output=True)
        run = subprocess.run([str(BIN / "openjd"), "run", str(folder / "bundle/template.json"), "--step", "Render",
                              "--run-dependencies", "--output", "json",
                              "-p", f"file://{folder / 'bundle/openjd_parameters.json'}",
                              "-p", f"IviRender={BIN / 'ivi-render'}",
                              "-p", "Device=cpu"], env=env, capture_output=True, text=True)
        result = json.loads(run.stdout)
        if result["status"] != "success":
            sys.exit(f"openjd run failed: {result['message']}\n{run.stderr[-2000:]}")
        rows = task_times(result["logs"])
    print(f"demo shot {len(shot.frames)} frames 128x72, preset {args.preset}, {args.steps} steps, "
          f"chunks of {args.chunk_size}, OMP_NUM_THREADS={args.threads}, device cpu\n")
    print("| task | frames | seconds |\n|---|---|---:|")
    for step, frames, seconds in rows:
        print(f"| {step} | {frames} | {seconds:.1f} |")
    render = [s for step, _, s in rows if step == "Render"]
    print(f"\ntrain {sum(s for step, _, s in rows if step == 'Train'):.1f} s; render {len(render)} chunks, "
          f"{sum(render):.1f} s in all, {sum(render) / max(len(render), 1):.1f} s a chunk; "
          f"openjd run {result['duration']:.1f} s")


if __name__ == "__main__":
    main()
