"""Training throughput: the reference configuration beside the optimised one, each runtime switch, each preset.

Every configuration runs in its own subprocess (so that its peak host memory is its own), the
configurations taking turns round after round (so that a noisy, shared machine slows them alike),
and each reports the median of its timed steps. A step mirrors train.fit's: BatchSampler.draw,
the generator's forward, losses.reconstruction, backward, optimizer.step, on a procedural shot
written as EXRs and read back through shot.load_shot.

Columns: steps/s; megapixels/s (working pixels of the batch per second, batch * h * w, so that
configurations at other sizes compare); hole megapixels/s (pixels per second inside the step's
input holes whose truth is known and carries loss: the pixels that teach filling, which crops
around the matte keep while they drop the frame far from it); the share of the step in data
preparation, forward (with the loss) and backward (with the optimiser step); CPU seconds per step
(sum over threads: on a shared machine it says how much work a step is, where wall time says how long it waited too);
peak host RSS; CUDA peak memory on CUDA; the first step's extra seconds (compilation and
warm-up); the ratios of steps/s, megapixels/s and hole megapixels/s to the reference's.

The configurations (group main): `reference` is the paper's network as its code trains it
(whole frames in batches of 5, fp32, eager, NCHW); `runtime` is the same network, frames and batch
with our runtime defaults (runtime.py), which shows what the runtime alone buys per pixel;
`optimised` is the same network trained as the final preset trains (its batch and crops, the
runtime defaults): what a user's training step costs.

    .venv/bin/python bench/speed.py                              # reference vs optimised, CPU
    .venv/bin/python bench/speed.py --configs switches --work-size 304 --batch 2
    .venv/bin/python bench/speed.py --configs presets
    .venv/bin/python bench/speed.py --device cuda --configs gpu        # each GPU switch (bench/gpu_check.py)
    .venv/bin/python bench/speed.py --device cuda --shot ../shared/data/davis/bmx-trees ...
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


@dataclass
class Spec:
    """One configuration to measure: a preset with changes, and the runtime switches."""

    name: str
    preset: str = "paper"
    changes: dict = field(default_factory=dict)
    """TrainConfig fields (cnum, batch_size, crop, work_size, channels_last, precision, compile, threads)."""
    flush_denormal: bool = False


def reference(work: int, batch: int) -> Spec:
    """The paper's configuration as its code runs: fp32, eager, NCHW, torch's threads, denormals kept."""
    return Spec("reference", "paper", {"work_size": work, "batch_size": batch, "channels_last": False,
                                       "precision": "fp32", "compile": False, "threads": 0},
                flush_denormal=False)


def runtime_only(work: int, batch: int) -> Spec:
    """The same network, frames and batch with the runtime defaults of TrainConfig (runtime.py)."""
    return Spec("runtime", "paper", {"work_size": work, "batch_size": batch}, flush_denormal=False)


def optimised(work: int, device: str) -> Spec:
    """The paper's network trained as the final preset trains on `device`: its batch, and its crops
    (if any) scaled from the preset's working size to this one, with the runtime defaults."""
    from ivi_vfx.config import preset_config
    final = preset_config("final", device)
    crop = max(16, round(final.crop * work / final.work_size / 4) * 4) if final.crop else 0
    return Spec("optimised", "paper", {"work_size": work, "batch_size": final.batch_size, "crop": crop},
                flush_denormal=False)


def switch_specs(work: int, batch: int, threads: int) -> list[Spec]:
    """The reference at a fixed thread count, then with one switch each: the factor of each switch."""
    ref = reference(work, batch)
    base = Spec(f"reference, threads {threads}", "paper", ref.changes | {"threads": threads}, flush_denormal=False)
    one = lambda name, fd=False, **kw: Spec(name, "paper", base.changes | kw, flush_denormal=fd)  # noqa: E731
    return [base, one(f"threads {threads} +flush_denormal", fd=True),
            one(f"threads {threads} +channels_last", channels_last=True),
            one(f"threads {threads} +channels_last +flush_denormal", fd=True, channels_last=True)]


def slow_specs(work: int, batch: int) -> list[Spec]:
    """The switches that lost on a 2-core CPU by a wide margin (bf16 autocast, torch.compile): slow to run."""
    ref = reference(work, batch)
    one = lambda name, **kw: Spec(name, "paper", ref.changes | kw, flush_denormal=False)  # noqa: E731
    return [ref, one("+bf16", precision="bf16"), one("+channels_last+bf16", channels_last=True, precision="bf16"),
            one("+compile", compile=True)]


def gpu_specs(work: int, batch: int) -> list[Spec]:
    """The reference's network, frames and batch on a GPU: fp32 (NCHW, eager: the reference), then
    channels_last, bf16 autocast, both (the GPU's runtime defaults), fp16 with loss scaling, and
    torch.compile on top of the defaults. bench/gpu_check.py runs them beside the CPU reference."""
    ref = reference(work, batch)
    one = lambda name, **kw: Spec(name, "paper", ref.changes | kw, flush_denormal=False)  # noqa: E731
    return [one("fp32"), one("fp32 +channels_last", channels_last=True), one("bf16", precision="bf16"),
            one("bf16 +channels_last", precision="bf16", channels_last=True),
            one("fp16 +channels_last", precision="fp16", channels_last=True),
            one("bf16 +channels_last +compile", precision="bf16", channels_last=True, compile=True)]


def preset_specs() -> list[Spec]:
    """Each preset as it ships (its own width, working size, batch, crop and runtime defaults)."""
    from ivi_vfx.config import PRESETS
    return [Spec(f"preset {name}", name, {}) for name in PRESETS]


# --------------------------------------------------------------------------------------------- worker

def _sync(device: str) -> None:
    import torch
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def worker(args: argparse.Namespace) -> dict:
    """Measure one configuration in this process; returns the row as a dict."""
    import torch

    from ivi_vfx import losses, runtime
    from ivi_vfx.config import preset_config
    from ivi_vfx.io.sequence import find_sequence
    from ivi_vfx.nets import build_generator
    from ivi_vfx.shot import load_shot
    from ivi_vfx.train import BatchSampler

    spec = Spec(**json.loads(args.worker))
    cfg = preset_config(spec.preset).replace(**spec.changes)
    device = args.device
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()  # this configuration's peak, also when one process runs several
    threads = runtime.configure_threads(cfg.threads)
    torch.set_flush_denormal(spec.flush_denormal)  # the reference keeps denormals, as torch does by default
    shot = load_shot(find_sequence(args.plate), find_sequence(args.mask), work_size=cfg.work_size)
    torch.manual_seed(cfg.seed)
    compile_started = time.perf_counter()
    model = runtime.prepare_model(build_generator(cfg.cnum), device, cfg)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=cfg.adam_betas, eps=cfg.adam_eps)
    scaler = runtime.grad_scaler(device, cfg)
    sampler = BatchSampler(shot, cfg, torch.Generator().manual_seed(cfg.seed))
    model.train()
    rows, pixels, fill, first, loss = [], 0, [], 0.0, float("nan")
    for step in range(args.warmup + args.steps):
        _sync(device)
        t0, c0 = time.perf_counter(), time.process_time()
        images, holes, weight = (runtime.prepare_input(t.to(device), cfg) for t in sampler.draw(step))
        _sync(device)
        t1 = time.perf_counter()
        with runtime.autocast(device, cfg):
            coarse, refined = model(images, holes)
        terms = losses.reconstruction(images, coarse.float(), refined.float(), weight)
        total = torch.stack(list(terms.values())).sum()
        _sync(device)
        t2 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(total).backward()
        scaler.step(optimizer)
        scaler.update()
        loss = float(total.detach())
        _sync(device)
        t3, c3 = time.perf_counter(), time.process_time()
        if step == 0:
            first = t3 - compile_started
        if step >= args.warmup:
            rows.append((t1 - t0, t2 - t1, t3 - t2, c3 - c0))
            pixels = images.shape[0] * images.shape[-2] * images.shape[-1]
            fill.append(float((holes * weight).sum()))  # hole pixels with a known truth: what teaches filling
    wall = [sum(r[:3]) for r in rows]
    median = statistics.median(wall)
    share = [sum(r[i] for r in rows) / sum(wall) for i in range(3)]
    result = {
        "name": spec.name, "preset": spec.preset, "cnum": cfg.cnum, "batch": cfg.batch_size,
        "size": list(images.shape[-2:]), "crop": cfg.crop, "precision": cfg.precision,
        "dtype": str(runtime.compute_dtype(device, cfg.precision)).removeprefix("torch."),
        "channels_last": cfg.channels_last, "compile": cfg.compile, "threads": threads,
        "flush_denormal": spec.flush_denormal, "step_s": median, "steps": wall,
        "mpix_s": pixels / median / 1e6, "hole_mpix_s": statistics.mean(fill) / median / 1e6,
        "data": share[0], "forward": share[1], "backward": share[2],
        "cpu_s": statistics.median(r[3] for r in rows), "first_extra_s": first - median,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "loss": loss,
    }
    if device.startswith("cuda"):
        result["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2 ** 20
    return result


# --------------------------------------------------------------------------------------------- driver

def write_procedural_shot(folder: Path, height: int, width: int, count: int) -> tuple[str, str]:
    """The demo's panning wall and crossing disc as EXRs: (plate pattern, matte pattern)."""
    from ivi_vfx.demo import write_shot
    shot = write_shot(folder, height=height, width=width, count=count)
    return shot.plate, shot.mask


def run_one(spec: Spec, args: argparse.Namespace, plate: str, mask: str) -> dict:
    command = [sys.executable, __file__, "--worker", json.dumps(spec.__dict__), "--plate", plate, "--mask", mask,
               "--device", args.device, "--steps", str(args.steps), "--warmup", str(args.warmup)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=os.environ | {"PYTHONWARNINGS": "ignore"},
                              timeout=args.timeout or None)
    except subprocess.TimeoutExpired:
        # On a loaded machine a configuration can stall for minutes a step: record a bound, not nothing.
        bound = args.timeout / (args.steps + args.warmup)
        return {"name": spec.name, "timed_out": True, "step_s": bound, "mpix_s": float("nan")}
    if done.returncode:
        raise RuntimeError(f"{spec.name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarise(runs: list[dict]) -> dict:
    """Rounds of one configuration -> one row: medians of the per-round medians, memory's maximum.

    A round that timed out counts as its lower bound on the step time (so the median is a bound too).
    """
    done = [r for r in runs if not r.get("timed_out")]
    if not done:
        return runs[0] | {"rounds": [f">{r['step_s']:.0f}" for r in runs]}
    runs = [dict(done[0]) | r if r.get("timed_out") else r for r in runs]
    for r in runs:
        if r.get("timed_out"):
            r["mpix_s"] = done[0]["mpix_s"] * done[0]["step_s"] / r["step_s"]
    row = dict(runs[0])
    for key in ("step_s", "mpix_s", "data", "forward", "backward", "cpu_s", "first_extra_s"):
        row[key] = statistics.median(r[key] for r in runs)
    # Throughput from the median step time, so that steps/s and megapixels/s tell the same story.
    row["mpix_s"] = done[0]["mpix_s"] * done[0]["step_s"] / row["step_s"]
    row["hole_mpix_s"] = done[0]["hole_mpix_s"] * done[0]["step_s"] / row["step_s"]
    row["rss_mb"] = max(r["rss_mb"] for r in runs)
    if "cuda_peak_mb" in row:
        row["cuda_peak_mb"] = max(r["cuda_peak_mb"] for r in runs)
    row["rounds"] = [f"{'>' if r.get('timed_out') else ''}{r['step_s']:.3g}" for r in runs]
    return row


def table(rows: list[dict], base: str) -> str:
    """The markdown table; the ratios are steps/s, megapixels/s and hole megapixels/s over the `base` row's."""
    ref = next((r for r in rows if r["name"] == base), rows[0])
    cuda = any("cuda_peak_mb" in r for r in rows)
    head = ["config", "net", "batch x h x w", "dtype", "layout", "compile", "threads", "steps/s", "Mpx/s",
            "hole Mpx/s", "data / fwd / bwd %", "CPU s/step", "first step +s", "peak RSS MB"]
    head += (["CUDA peak MB"] if cuda else []) + [
            f"x {base}: steps/s", "Mpx/s", "hole Mpx/s", "step s per round"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        if "cnum" not in r:  # every round timed out
            lines.append(f"| {r['name']} | " + " | ".join(["?"] * (len(head) - 2)) + f" | {', '.join(r['rounds'])} |")
            continue
        cells = [r["name"], f"cnum {r['cnum']}", f"{r['batch']} x {r['size'][0]} x {r['size'][1]}", r["dtype"],
                 "NHWC" if r["channels_last"] else "NCHW", "yes" if r["compile"] else "no",
                 f"{r['threads']}{' fd' if r['flush_denormal'] else ''}", f"{1 / r['step_s']:.3f}",
                 f"{r['mpix_s']:.3f}", f"{r['hole_mpix_s']:.4f}",
                 f"{100 * r['data']:.0f} / {100 * r['forward']:.0f} / {100 * r['backward']:.0f}",
                 f"{r['cpu_s']:.2f}", f"{r['first_extra_s']:.1f}", f"{r['rss_mb']:.0f}"]
        cells += [f"{r['cuda_peak_mb']:.0f}" if "cuda_peak_mb" in r else "-"] if cuda else []
        cells += [f"{ref['step_s'] / r['step_s']:.2f}", f"{r['mpix_s'] / ref['mpix_s']:.2f}",
                  f"{r['hole_mpix_s'] / ref['hole_mpix_s']:.2f}", ", ".join(map(str, r["rounds"]))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default="main", help="comma-separated: main (reference, optimised), switches, "
                                                          "slow (bf16, compile), presets, gpu (fp32, channels_last, "
                                                          "bf16, fp16, compile on CUDA), all")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--work-size", type=int, default=600, help="working size of the reference (600: 600x320)")
    parser.add_argument("--batch", type=int, default=5, help="batch of the reference and runtime configurations")
    parser.add_argument("--height", type=int, default=320, help="height of the procedural shot")
    parser.add_argument("--width", type=int, default=600, help="width of the procedural shot")
    parser.add_argument("--frames", type=int, default=10, help="frames of the procedural shot")
    parser.add_argument("--shot", help="a folder with plate.####.exr and mask.####.exr (a shared clip) instead")
    parser.add_argument("--threads", type=int, default=1, help="thread count of the +threads switch")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per round")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first (warm-up, compilation)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds; the configurations take turns in each")
    parser.add_argument("--timeout", type=float, default=0, help="seconds a configuration's process may take "
                        "(0: no limit); one that runs over counts as a lower bound on its step time")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--plate", help=argparse.SUPPRESS)
    parser.add_argument("--mask", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return 0

    best = optimised(args.work_size, args.device)
    auto = Spec("optimised, threads -1", best.preset, best.changes | {"threads": -1})
    groups = {"main": [reference(args.work_size, args.batch), runtime_only(args.work_size, args.batch), best, auto],
              "switches": switch_specs(args.work_size, args.batch, args.threads),
              "slow": slow_specs(args.work_size, args.batch), "presets": preset_specs(),
              "gpu": gpu_specs(args.work_size, args.batch)}
    groups["all"] = groups["main"] + groups["switches"] + groups["slow"] + groups["presets"]
    specs = [s for name in args.configs.split(",") for s in groups[name]]
    specs = list({s.name: s for s in specs}.values())
    with tempfile.TemporaryDirectory(prefix="ivi_speed_") as tmp:
        if args.shot:
            plate, mask = str(Path(args.shot) / "plate.####.exr"), str(Path(args.shot) / "mask.####.exr")
        else:
            plate, mask = write_procedural_shot(Path(tmp), args.height, args.width, args.frames)
        runs: dict[str, list[dict]] = {s.name: [] for s in specs}
        started = time.perf_counter()
        for round_ in range(args.rounds):
            for spec in specs if round_ % 2 == 0 else specs[::-1]:  # alternate the order too
                row = run_one(spec, args, plate, mask)
                runs[spec.name].append(row)
                print(f"round {round_ + 1}/{args.rounds} {spec.name}: {row['step_s']:.3f} s/step "
                      f"{row['mpix_s']:.3f} Mpx/s ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
    rows = [summarise(runs[s.name]) for s in specs]
    import torch
    print(f"\n{args.device}, torch {torch.__version__}, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}; medians of {args.steps} timed steps after {args.warmup} warm-up, "
          f"{args.rounds} rounds, each configuration in its own process\n")
    print(table(rows, "reference"))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
