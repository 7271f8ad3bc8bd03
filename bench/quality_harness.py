"""Quality of the main job beside the peers, on the public shots of the shared quality harness.

Runs `../shared/bench/run_quality.py` (which builds nothing itself: this script writes the public
clips first with its clips.py), with `ivi-render inpaint` at a preset, and prints one markdown
table: hole PSNR, SSIM, flicker and wall time per shot and method, with the tool's steps.

usage: python bench/quality_harness.py [--clips pan_astronaut,davis_blackswan_fixed] [--preset final]
                                      [--steps N] [--work /tmp/ivi_quality] [--shared ../shared]
Needs opencv-contrib-python-headless and scikit-image besides the project (make quality installs them).
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

import torch

from ivi_vfx.config import preset_config

ROOT = Path(__file__).resolve().parent.parent


def _steps_reached(run_folder: Path) -> str:
    """The step count in the checkpoint that `ivi-render inpaint` left in the job folder beside its output."""
    found = sorted((run_folder / ".ivi").glob("*/model.ckpt"))
    return str(torch.load(found[0], weights_only=True)["step"]) if found else "?"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", default="", help="comma-separated shot names (default: all public shots)")
    ap.add_argument("--preset", default="final")
    ap.add_argument("--steps", type=int, default=None, help="override the preset's steps")
    ap.add_argument("--work", type=Path, default=Path("/tmp/ivi_quality"))
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    a = ap.parse_args()
    bench = a.shared / "bench"
    clips = a.work / "clips"
    if not (clips / "pan_astronaut" / "gt.1001.exr").exists():
        subprocess.run([sys.executable, str(bench / "clips.py"), str(clips)], check=True, capture_output=True)
    steps = f" --steps {a.steps}" if a.steps is not None else ""
    exe = shlex.quote(str(Path(sys.executable).with_name("ivi-render")))
    cmd = f"{exe} inpaint --plate {{plate}} --mask {{mask}} --out {{out}} --preset {a.preset}{steps} --overwrite"
    args = [sys.executable, str(bench / "run_quality.py"), str(clips), str(a.work / "runs"), "--cmd", cmd]
    if a.clips:
        args += ["--clips", a.clips]
    run = subprocess.run(args, capture_output=True, text=True, check=True)
    rows = json.loads(run.stdout.strip().splitlines()[-1])
    cfg = preset_config(a.preset)
    limit = f"{a.steps if a.steps is not None else cfg.steps} steps" + (f" or {cfg.budget:g} min" if cfg.budget else "")
    print(f"preset {a.preset} ({limit}); hole = PSNR inside the matte (dB, sRGB), flicker lower is better\n")
    print("| shot | method | steps | hole PSNR | SSIM | flicker | outside | wall s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        tool = r["method"] == "tool"
        name = f"ivi ({a.preset})" if tool else r["method"]
        steps = _steps_reached(a.work / "runs" / r["clip"] / "tool") if tool else ""
        if "error" in r:
            print(f"| {r['clip']} | {name} | {steps} | FAILED: {r['error'][-80:]!r} | | | | {r['sec']:.0f} |")
            continue
        print(f"| {r['clip']} | {name} | {steps} | {r['psnr_hole']:.2f} | {r['ssim']:.3f} | {r['flicker']:.4f} | "
              f"{r['outside_maxdiff']:.2g} | {r['sec']:.0f} |")
    best: dict[str, float] = {}
    for r in rows:
        if r["method"] != "tool" and "error" not in r:
            best[r["clip"]] = max(best.get(r["clip"], -1e9), r["psnr_hole"])
    print("\n| shot | ivi hole PSNR - best peer (dB) |")
    print("|---|---|")
    for r in rows:
        if r["method"] == "tool" and "error" not in r and r["clip"] in best:
            print(f"| {r['clip']} | {r['psnr_hole'] - best[r['clip']]:+.2f} |")


if __name__ == "__main__":
    main()
