"""Ablation of the paper's two regularizers at equal steps, on public shots of the shared harness.

Per shot: one reconstruction-only stage of --steps steps (the reference recipe's first stage),
then, from that same checkpoint, --finetune more steps in each variant:
  none           reconstruction continued (no regularizer), the baseline at equal steps
  restart        the fine-tune stage with no regularizer (anti-ambiguity at weight 1e-9): Adam
                 restarts as in every regularized variant; the control for the restart itself
  ambiguity      + the anti-ambiguity (contextual) term, weight 0.1
  stab-reference + the stabilisation terms, weight 0.2, with the reference code's g (affine only)
  stab-paper     + the same with the paper's g (affine, brightness, blur)
  stabilize      + the same with our g (the paper's and the matte's own jitter: the default)
  both           + anti-ambiguity and stabilisation (the defaults)
  *-kept         ambiguity, stabilize, both with Adam's moments kept across the stage boundary
Each variant runs in its own process, so its peak memory (max RSS) is its own. Results are kept
in the work folder (result.json per variant): running again with other --variants adds to them,
and `rm -r WORK/SHOT` starts a shot afresh. Prints one
markdown table: hole PSNR, SSIM and flicker (from the shared scorer); the fill's own change from
frame to frame where both frames are filled ("fill motion"; the truth's there, grain, is printed
below the table); fine-tune seconds per step and peak memory.

usage: python bench/ablation.py [--clips deficient_coffee,davis_bmx_objswan] [--steps 400]
                                [--finetune 150] [--work /tmp/ivi_ablation] [--shared ../shared]
Needs opencv-contrib-python-headless and scikit-image besides the project (for the shared scorer).
"""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

VARIANTS = {
    "none": {"ambiguity_weight": 0.0, "stabilization_weight": 0.0},
    "restart": {"ambiguity_weight": 1e-9, "stabilization_weight": 0.0},
    "ambiguity": {"stabilization_weight": 0.0},
    "stab-reference": {"ambiguity_weight": 0.0, "stabilize_brightness": False, "stabilize_blur": False,
                       "stabilize_matte": False},
    "stab-paper": {"ambiguity_weight": 0.0, "stabilize_matte": False},
    "stabilize": {"ambiguity_weight": 0.0},
    "both": {},
    # The same without the Adam restart at the stage boundary (finetune_restart=False).
    "ambiguity-kept": {"stabilization_weight": 0.0, "finetune_restart": False},
    "stab-paper-kept": {"ambiguity_weight": 0.0, "stabilize_matte": False, "finetune_restart": False},
    "stabilize-kept": {"ambiguity_weight": 0.0, "finetune_restart": False},
    "both-kept": {"finetune_restart": False},
}


def fill_motion(clip: Path, out_pattern: str) -> tuple[float, float]:
    """Mean |out_t - out_t-1| and |truth_t - truth_t-1| (display-referred, as the scorer) where both
    frames are filled: how much the fill itself changes from frame to frame, against the grain."""
    from exrio import frames, linear_to_srgb, read_exr  # the shared harness's reader

    def load(pattern: str) -> list:
        return [read_exr(path)[0] for _, path in frames(pattern)]

    truth = [linear_to_srgb(g[..., :3]) for g in load(f"{clip}/gt.####.exr")]
    out = [linear_to_srgb(o[..., :3]) for o in load(out_pattern)]
    holes = [m[..., 0] > 0.5 for m in load(f"{clip}/mask.####.exr")]
    fill, grain = [], []
    for t in range(1, len(out)):
        both = holes[t] & holes[t - 1]
        if both.any():
            fill.append(float(np.abs(out[t] - out[t - 1])[both].mean()))
            grain.append(float(np.abs(truth[t] - truth[t - 1])[both].mean()))
    return (float(np.mean(fill)), float(np.mean(grain))) if fill else (0.0, 0.0)


def run_variant(clip: Path, checkpoint: Path, out: Path, steps: int, finetune: int, variant: str,
                work_size: int) -> dict:
    """Fine-tune one variant from the stage-1 checkpoint and render the shot (in this process)."""
    from ivi_vfx.config import preset_config
    from ivi_vfx.jobs import JobSpec
    from ivi_vfx.pipeline import run_job

    cfg = preset_config("final").replace(steps=steps + finetune, finetune_steps=finetune, budget=0.0,
                                       work_size=work_size, checkpoint_every=10_000, validate_every=0,
                                       **VARIANTS[variant])
    tic = time.perf_counter()
    spec = JobSpec(plate=str(clip / "plate.####.exr"), mask=str(clip / "mask.####.exr"),
                   out=str(out / "clean.####.exr"), checkpoint_dir=str(checkpoint))
    result = run_job(spec, device="cpu", overwrite=True, cfg=cfg)
    return {"variant": variant, "seconds": time.perf_counter() - tic, "train_seconds": result.fit.seconds,
            "steps": result.fit.step, "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", default="deficient_coffee,davis_bmx_objswan")
    ap.add_argument("--steps", type=int, default=400, help="reconstruction-only steps, shared by every variant")
    ap.add_argument("--finetune", type=int, default=150, help="fine-tune steps of each variant")
    ap.add_argument("--variants", default="none,restart,ambiguity,stab-reference,stab-paper,stabilize,both")
    ap.add_argument("--work-size", type=int, default=256,
                    help="working resolution's longest side (final preset on a CPU: 256)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/ivi_ablation"))
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    ap.add_argument("--one", nargs=3, metavar=("CLIP", "JOB_FOLDER", "OUT"), help=argparse.SUPPRESS)
    ap.add_argument("--variant", default="none", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:  # a child process: one variant
        print(json.dumps(run_variant(Path(a.one[0]), Path(a.one[1]), Path(a.one[2]), a.steps, a.finetune,
                                     a.variant, a.work_size)))
        return
    bench = a.shared / "bench"
    sys.path.insert(0, str(bench))
    from score import score  # the shared harness's scorer

    clips = a.work / "clips"
    if not all((clips / name / "gt.1001.exr").exists() for name in a.clips.split(",")):
        subprocess.run([sys.executable, str(bench / "clips.py"), str(clips)], check=True, capture_output=True)
    rows, grain = [], {}
    for name in a.clips.split(","):
        clip = clips / name
        stage1 = a.work / name / "stage1.job"  # the job folder of the shared first stage
        if not (stage1 / "model.ckpt").exists():
            # The shared first stage: the "none" variant with no fine-tune steps, kept as a checkpoint.
            tic = time.perf_counter()
            child = [sys.executable, __file__, "--one", str(clip), str(stage1), str(a.work / name / "stage1"),
                     "--steps", str(a.steps), "--finetune", "0", "--variant", "none", "--work-size", str(a.work_size)]
            done_first = subprocess.run(child, check=True, capture_output=True, text=True)
            first = json.loads(done_first.stdout.splitlines()[-1])
            print(f"{name}: stage 1, {a.steps} steps, {time.perf_counter() - tic:.0f} s", file=sys.stderr, flush=True)
            pattern = str(a.work / name / "stage1" / "clean.####.exr")
            motion, grain[name] = fill_motion(clip, pattern)
            base = {**first, **score(str(clip), pattern), "fill_motion": motion, "grain": grain[name]}
            (a.work / name / "stage1" / "result.json").write_text(json.dumps(base))
        if (a.work / name / "stage1" / "result.json").exists():
            base = json.loads((a.work / name / "stage1" / "result.json").read_text())
            grain[name] = base["grain"]
            rows.append({"clip": name, **base, "variant": f"stage 1 only ({a.steps} steps)"})
        for variant in a.variants.split(","):
            done = a.work / name / variant / "result.json"
            if done.exists():  # measured by an earlier run with the same stage 1: kept, not run again
                rows.append({"clip": name, **json.loads(done.read_text())})
                continue
            ckpt = a.work / name / f"{variant}.job"
            shutil.rmtree(ckpt, ignore_errors=True)
            shutil.copytree(stage1, ckpt)
            out = a.work / name / variant
            child = [sys.executable, __file__, "--one", str(clip), str(ckpt), str(out), "--steps", str(a.steps),
                     "--finetune", str(a.finetune), "--variant", variant, "--work-size", str(a.work_size)]
            run = subprocess.run(child, capture_output=True, text=True)
            if run.returncode:
                print(run.stderr[-2000:], file=sys.stderr)
                raise SystemExit(f"{name} {variant} failed")
            got = json.loads(run.stdout.splitlines()[-1])
            pattern = str(out / "clean.####.exr")
            motion, grain[name] = fill_motion(clip, pattern)
            result = {**got, **score(str(clip), pattern), "fill_motion": motion}
            done.write_text(json.dumps(result))
            rows.append({"clip": name, **result})
            print(f"{name}: {variant} done in {got['seconds']:.0f} s", file=sys.stderr, flush=True)
    print(f"\nstage 1: {a.steps} reconstruction steps (final preset's CPU network at up to {a.work_size} px, "
          f"shared by all "
          f"variants); then {a.finetune} steps per variant\n")
    print("| shot | variant | hole PSNR | SSIM | flicker | fill motion | fine-tune s/step | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        per_step = r["train_seconds"] / a.finetune if not r["variant"].startswith("stage") else float("nan")
        print(f"| {r['clip']} | {r['variant']} | {r['psnr_hole']:.2f} | {r['ssim']:.3f} | {r['flicker']:.4f} | "
              f"{r['fill_motion']:.4f} | {per_step:.2f} | {r['maxrss_mb']:.0f} |")

    print("\nthe truth's own change where both frames are filled (grain): " +
          ", ".join(f"{name} {value:.4f}" for name, value in grain.items()))


if __name__ == "__main__":
    main()
