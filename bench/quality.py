"""Hole PSNR against training time, beside the peers, on the public shots of the shared harness.

Per shot, one training run with a preset and a budget. At each time mark (minutes of training)
the model is copied; after training, each copy renders the shot and the shared scorer measures
it. So one run gives the whole curve, and the copies' renders are not counted as training time.
Beside each mark: the trainer's own quality estimate (hole PSNR on held-out known pixels,
validation.py), which needs no ground truth. The peers of the shared harness (telea, median,
shiftmap) are run once per shot. Prints a markdown table and writes a PNG plot.

usage: python bench/quality.py [--clips pan_astronaut,fixed_rocket,davis_blackswan_fixed,davis_bmx_objswan]
                               [--preset final] [--budget 10] [--marks 1,2,4,6,8,10] [--set lr=1e-3 ...]
                               [--work /tmp/ivi_quality_curve] [--plot quality.png]
       python bench/quality.py --ablation network,carried,both [--clips ...] [--preset final] [--budget 8] [--set ...]

With --ablation, each shot runs the whole job path (pipeline.run_job, as `ivi-render inpaint` does) once
per variant, beside all four peers of the harness (telea, median, shiftmap, flow): `network` is the
paper's method (no carry), `carried` the known-pixel carry alone (no training; what no frame shows is
filled by OpenCV's Telea, so the carry's own share is seen), `both` the default. It prints hole PSNR,
detail, seam and flicker per variant and peer, the share of matte pixels carried, and the wall time.
`--set steps=3000 --budget 0` trains a fixed number of steps: two settings compared so are not
compared at whatever step count each run's machine allowed.
Needs opencv-contrib-python-headless, scikit-image and matplotlib besides the project.
Timed: run it alone on the machine.
"""
from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
PEERS = ("telea", "median", "shiftmap")
ALL_PEERS = ("telea", "median", "shiftmap", "flow")
VARIANTS = ("network", "carried", "both")
SCORES = ("psnr_hole", "detail", "seam", "flicker")


def _value(text: str) -> object:
    """A --set value as JSON when it parses (numbers, booleans), else the string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def curve(clip: Path, out: Path, cfg, marks: list[float]) -> list[dict]:
    """Train on one shot with snapshots at the marks (minutes); render and score each snapshot."""
    from score import score  # the shared harness's scorer

    from ivi_vfx.io.sequence import find_sequence, output_sequence
    from ivi_vfx.render import render
    from ivi_vfx.shot import load_shot
    from ivi_vfx.train import fit

    plate = find_sequence(str(clip / "plate.####.exr"))
    shot = load_shot(plate, find_sequence(str(clip / "mask.####.exr"), plate.frames), work_size=cfg.work_size)
    snapshots: list[dict] = []
    pending = sorted(marks)
    started = time.perf_counter()

    def on_step(info) -> bool:
        minutes = (time.perf_counter() - started) / 60.0
        while pending and minutes >= pending[0]:
            snapshots.append({"mark": pending.pop(0), "step": info.step, "minutes": minutes,
                              "state": copy.deepcopy(info.model.state_dict())})
        return False

    result = fit(shot, cfg, device="cpu", on_step=on_step)
    total = (time.perf_counter() - started) / 60.0
    snapshots.append({"mark": total, "step": result.step, "minutes": total, "state": None, "final": True})
    history = result.validation.history if result.validation else []
    rows = []
    model = result.model
    final_state = copy.deepcopy(model.state_dict())
    for snap in snapshots:
        model.load_state_dict(snap["state"] if snap["state"] is not None else final_state)
        model.eval()
        folder = out / f"m{snap['mark']:.2f}"
        render(model, shot, output_sequence(str(folder / "clean.####.exr"), plate.frames),
               device=torch.device("cpu"), overwrite=True)
        scored = score(str(clip), str(folder / "clean.####.exr"))
        seen = [h for h in history if h[0] <= snap["step"]]
        rows.append({"minutes": snap["minutes"], "step": snap["step"], "psnr_hole": scored["psnr_hole"],
                     "flicker": scored["flicker"], "estimate": seen[-1][2] if seen else None,
                     "final": bool(snap.get("final")), "converged": result.converged})
    return rows


def _telea_rest(clip: Path, out: Path) -> None:
    """Fill the matte pixels that the carry left to the network (confidence below TRUST) by Telea, in place."""
    import numpy as np
    from baselines import telea

    from ivi_vfx.carry import CONFIDENCE, TRUST
    from ivi_vfx.io.exr import output_spec, read_exr, write_exr

    for path in sorted(out.glob("clean.*.exr")):
        image = read_exr(path)
        names = image.channel_names
        pixels = image.pixels.copy()
        rest = ((pixels[..., names.index("A")] > 0) & (pixels[..., names.index(CONFIDENCE)] < TRUST))
        if rest.any():  # the harness's own Telea peer (8-bit display-referred: OpenCV's float inpaint is unreliable)
            rgb = [names.index(name) for name in ("R", "G", "B")]
            filled = telea(pixels[..., rgb], rest)
            pixels[..., rgb] = np.where(rest[..., None], filled, pixels[..., rgb])
        write_exr(path, pixels, output_spec(image.spec, names), overwrite=True)


def ablation(clip: Path, work: Path, preset: str, budget: float, variant: str, changes: dict | None = None) -> dict:
    """One variant of the tool on one shot through the job path: scores, carried share, wall seconds.

    `changes`: TrainConfig fields set over the preset's (--set), e.g. a fixed step count with budget 0."""
    from score import score

    from ivi_vfx.carry import TRUST, load_carry
    from ivi_vfx.config import preset_config
    from ivi_vfx.jobs import JobSpec
    from ivi_vfx.pipeline import run_job

    cfg = preset_config(preset).replace(budget=budget, carry=variant != "network", **(changes or {}))
    if variant == "carried":
        cfg = cfg.replace(steps=1)  # one step writes the checkpoint a render needs; Telea fills the rest
    out = work / variant
    spec = JobSpec(plate=str(clip / "plate.####.exr"), mask=str(clip / "mask.####.exr"),
                   out=str(out / "clean.####.exr"))
    started = time.perf_counter()
    result = run_job(spec, device="cpu", resume=False, overwrite=True, cfg=cfg)
    seconds = time.perf_counter() - started
    if variant == "carried":
        _telea_rest(clip, out)
    carry = load_carry(spec.carry_path) if cfg.carry else None
    scored = score(str(clip), str(out / "clean.####.exr"))
    carried = carry.share(TRUST) if carry else 0.0
    trained = result.fit.step if result.fit and carried < 1.0 else 0  # nothing left to learn: training skipped
    return {**{k: scored[k] for k in SCORES}, "carried": carried, "steps": trained, "seconds": seconds}


def run_ablation(a: argparse.Namespace, clips: Path, names: list[str], changes: dict, label: str) -> None:
    from baselines import run as run_peer
    from score import score

    variants = a.ablation.split(",")
    rows: list[tuple[str, str, dict]] = []
    for name in names:
        clip = clips / name
        for peer in ALL_PEERS:
            folder = a.work / name / peer
            run_peer(peer, str(clip), str(folder))
            scored = score(str(clip), str(folder / "clean.####.exr"))
            rows.append((name, peer, {k: scored[k] for k in SCORES}))
        for variant in variants:
            rows.append((name, f"ivi {variant}", ablation(clip, a.work / name, a.preset, a.budget, variant, changes)))
            print(f"{name} {variant}: {rows[-1][2]}", file=sys.stderr, flush=True)
    (a.work / "ablation.json").write_text(json.dumps(rows, indent=1))
    print(f"\n{label}, budget {a.budget:g} min of training per shot; hole PSNR dB (sRGB), detail "
          f"(the fill's high frequencies / the truth's), seam (1 = the truth's step), flicker\n")
    print("| shot | method | hole PSNR | detail | seam | flicker | carried | steps | wall (s) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, method, r in rows:
        extra = (f"{r['carried']:.0%} | {r['steps']} | {r['seconds']:.0f}" if method.startswith("ivi")
                 else "- | - | -")
        detail = f"{r['detail']:.2f}" if r["detail"] is not None else "-"
        seam = f"{r['seam']:.2f}" if r["seam"] is not None else "-"
        print(f"| {name} | {method} | {r['psnr_hole']:.2f} | {detail} | {seam} | {r['flicker']:.4f} | {extra} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", default="pan_astronaut,fixed_rocket,davis_blackswan_fixed,davis_bmx_objswan")
    ap.add_argument("--preset", default="final")
    ap.add_argument("--budget", type=float, default=10.0, help="minutes of training per shot")
    ap.add_argument("--marks", default="1,2,4,6,8", help="minutes at which to score a copy of the model")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="change a field of the preset's TrainConfig (repeatable)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/ivi_quality_curve"))
    ap.add_argument("--plot", type=Path, default=None, help="PNG to write (default: WORK/quality.png)")
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    ap.add_argument("--ablation", default=None, metavar="VARIANTS",
                    help=f"instead of the curve: the job path once per variant ({','.join(VARIANTS)}) beside all "
                         f"four peers")
    a = ap.parse_args()
    bench = a.shared / "bench"
    sys.path.insert(0, str(bench))
    from baselines import run as run_peer
    from score import score

    from ivi_vfx.config import preset_config

    changes = {k: _value(v) for k, v in (item.split("=", 1) for item in a.set)}
    label = f"preset {a.preset}" + "".join(f", {item}" for item in a.set)
    cfg = preset_config(a.preset).replace(budget=a.budget, steps=10**7).replace(**changes)  # --set wins
    clips = a.work / "clips"
    names = a.clips.split(",")
    if not all((clips / n / "gt.1001.exr").exists() for n in names):
        subprocess.run([sys.executable, str(bench / "clips.py"), str(clips)], check=True, capture_output=True)
    if a.ablation:
        run_ablation(a, clips, names, changes, label)
        return
    marks = [float(m) for m in a.marks.split(",") if float(m) < a.budget]
    results: dict[str, dict] = {}
    for name in names:
        clip = clips / name
        peers = {}
        for peer in PEERS:
            folder = a.work / name / peer
            run_peer(peer, str(clip), str(folder))
            peers[peer] = score(str(clip), str(folder / "clean.####.exr"))["psnr_hole"]
        rows = curve(clip, a.work / name / "ivi", cfg, marks)
        results[name] = {"peers": peers, "rows": rows}
        print(f"{name}: done, {rows[-1]['step']} steps", file=sys.stderr, flush=True)
    (a.work / "results.json").write_text(json.dumps(results, indent=1))

    print(f"\n{label}, budget {a.budget:g} min of training per shot (2-core CPU unless said); hole PSNR dB, sRGB\n")
    print("| shot | minutes | steps | hole PSNR | estimate (no truth) | best peer | margin |")
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        best = max(r["peers"].values())
        for row in r["rows"]:
            estimate = f"{row['estimate']:.2f}" if row["estimate"] is not None else "-"
            end = " (end" + (", converged" if row["converged"] else "") + ")" if row["final"] else ""
            print(f"| {name} | {row['minutes']:.1f}{end} | {row['step']} | {row['psnr_hole']:.2f} | {estimate} | "
                  f"{best:.2f} ({max(r['peers'], key=r['peers'].get)}) | {row['psnr_hole'] - best:+.2f} |")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(4 * len(results), 3.4), squeeze=False)
    for ax, (name, r) in zip(axes[0], results.items()):
        xs = [row["minutes"] for row in r["rows"]]
        ax.plot(xs, [row["psnr_hole"] for row in r["rows"]], "o-", label="ivi (true)")
        est = [(row["minutes"], row["estimate"]) for row in r["rows"] if row["estimate"] is not None]
        if est:
            ax.plot(*zip(*est), "x--", label="ivi estimate")
        for peer, value in r["peers"].items():
            ax.axhline(value, lw=0.8, ls=":", color={"telea": "C2", "median": "C3", "shiftmap": "C4"}[peer],
                       label=peer)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("training minutes")
        ax.set_ylabel("hole PSNR (dB)")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(label, fontsize=9)
    fig.tight_layout()
    plot = a.plot or a.work / "quality.png"
    fig.savefig(plot, dpi=110)
    print(f"\nplot: {plot}")


if __name__ == "__main__":
    main()
