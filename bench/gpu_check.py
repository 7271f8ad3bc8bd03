"""The one prepared check of a GPU machine: every CUDA path of IVI-VFX, in at most 8 minutes.

    python bench/gpu_check.py --out DIR               # on the GPU machine (one card, 16 cores)
    python bench/gpu_check.py --out DIR --smoke       # the same code on the CPU at tiny sizes (CI, tests)

Sections, in this order (the cheap ones first, so that a timeout still leaves most of them):

  env          torch, CUDA, cuDNN, the card and its memory, the packages the other sections use, and
               the GPU presets' plans for a 4K and a 720p plate (working size, scales, patches, tiles)
  pytest       `pytest -m cuda`: the tests only a GPU can run (tests/test_cuda.py)
  speed        the paper's network at 320x600, batch 5, forward and backward (bench/speed.py's worker):
               the CPU reference configuration beside fp32, channels_last, bf16, fp16 and torch.compile
               on the GPU; steps/s, megapixels/s, peak GPU memory, ratios to the CPU reference
  hires        progressive 4K (bench/hires.py's shot, a few frames) through `ivi-render inpaint`:
               peak GPU memory (allocated and reserved) and peak host memory, hole PSNR and detail
  propagation  the mask propagation's GPU preset beside its CPU preset: steps/s, megapixels/s, memory
  quality      the final GPU preset on one public shot for a few minutes: hole PSNR over time beside the
               peers (telea, median, shiftmap) and when the stopping rule begins the fine-tune stage or
               ends the run

Each section runs in its own process with a time limit, and writes DIR/<section>.md (its table),
DIR/<section>.json and DIR/<section>.log as it goes; DIR/summary.md is rewritten after each section.
A section that fails or runs out of time is recorded as such and the next one starts. The exit code
is 0 when every section finished and every cuda test passed.

The public shots come from the shared harness (--shared, default: the repository's sibling folder
`shared/`): its clips.py writes them under DIR, its scorer and peers score them. Without it (or
without scikit-image) the quality and propagation sections fall back to the built-in demo shot and
a hole PSNR computed here as the shared scorer computes it, and say so in their tables.
Nothing is downloaded or installed: see docs/gpu.md.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(ROOT), str(BENCH)]

SECTIONS = ("env", "pytest", "speed", "hires", "propagation", "quality")
PLATES = {"4K UHD": (2160, 3840), "720p": (720, 1280)}
"""Plate sizes (h, w) the GPU presets' plans are shown and checked for."""


@dataclass
class Sizes:
    """How big each section's work is: the GPU run's sizes, or the smoke run's tiny ones."""

    deadline_s: float = 470.0
    """Seconds for the whole check; each section's limit is cut to what is left."""
    limits: dict[str, float] = field(default_factory=lambda: {
        "env": 60, "pytest": 150, "speed": 200, "hires": 150, "propagation": 90, "quality": 300})
    """Most seconds per section."""
    pytest_paths: tuple[str, ...] = ("tests",)
    speed_shot: tuple[int, int, int] = (320, 600, 10)
    """(height, width, frames) of the speed section's procedural shot."""
    speed_work: int = 600
    speed_batch: int = 5
    speed_gpu_steps: tuple[int, int] = (10, 3)
    """(timed steps, warm-up steps) of each GPU configuration."""
    speed_cpu_steps: tuple[int, int] = (2, 1)
    """(timed, warm-up) of the CPU reference (about 40 s a step on 2 cores, a few on 16)."""
    compile_timeout_s: float = 150.0
    isolate: bool = True
    """Each speed configuration and the hires run in a process of their own (their own peak memory)."""
    hires_plate: tuple[int, int] = (2160, 3840)
    hires_frames: int = 4
    hires_args: tuple[str, ...] = ("--steps", "200", "--budget", "0", "--scale-steps", "300", "--scales", "auto")
    propagate_steps: tuple[int, int] = (60, 4)
    """(GPU steps, CPU steps) of the propagation presets."""
    propagate_small: bool = False
    """Shrink the propagation U-Nets (smoke only)."""
    quality_minutes: float = 3.0
    quality_marks: tuple[float, ...] = (0.25, 0.5, 1.0, 1.5, 2.0, 2.5)
    quality_reserve_s: float = 75.0
    """Seconds the quality section keeps after training for its renders, scores and peers."""
    peers: tuple[str, ...] = ("telea", "median", "shiftmap")
    smoke: bool = False


def smoke_sizes() -> Sizes:
    """The same sections at sizes a 2-core CPU runs in well under 3 minutes."""
    return Sizes(deadline_s=170.0, limits={s: 60.0 for s in SECTIONS}, pytest_paths=("tests/test_cuda.py",),
                 speed_shot=(32, 48, 3), speed_work=48, speed_batch=1, speed_gpu_steps=(1, 0), speed_cpu_steps=(1, 0),
                 compile_timeout_s=20.0, isolate=False, hires_plate=(144, 256), hires_frames=2,
                 hires_args=("--steps", "2", "--budget", "0", "--scale-steps", "2", "--work-size", "64", "--scales",
                             "1", "--patch-size", "32", "--tile-size", "128"),
                 propagate_steps=(3, 3), propagate_small=True, quality_minutes=0.05, quality_marks=(0.02,),
                 quality_reserve_s=20.0, peers=("telea", "median"), smoke=True)


# --------------------------------------------------------------------------------------------- tables

class Report:
    """One section's markdown table and JSON, rewritten on every row so that a kill leaves what was done."""

    def __init__(self, out: Path, name: str, title: str, head: list[str]) -> None:
        self.md, self.json = out / f"{name}.md", out / f"{name}.json"
        self.title, self.head = title, head
        self.rows: list[list[str]] = []
        self.notes: list[str] = []
        self.data: dict[str, Any] = {"rows": []}
        self.write()

    def row(self, cells: list[Any], data: dict[str, Any] | None = None) -> None:
        self.rows.append([str(c) for c in cells])
        if data is not None:
            self.data["rows"].append(data)
        self.write()

    def note(self, text: str) -> None:
        self.notes.append(text)
        self.write()

    def write(self) -> None:
        lines = [f"## {self.title}", ""]
        if self.head:
            lines += ["| " + " | ".join(self.head) + " |", "|" + "---|" * len(self.head)]
            lines += ["| " + " | ".join(r) + " |" for r in self.rows]
        lines += [""] + [f"- {n}" for n in self.notes]
        self.md.write_text("\n".join(lines) + "\n")
        self.json.write_text(json.dumps(self.data | {"notes": self.notes}, indent=1, default=str))


def error_text(exc: BaseException) -> str:
    """One line for a table cell: the error's type and message."""
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ").replace("|", "/")
    return text[:300]


def fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


# --------------------------------------------------------------------------------------------- presets

def preset_plan(preset: str, device: str, plate: tuple[int, int]) -> dict[str, Any]:
    """What a preset does with a plate of (h, w) pixels on `device`, without running it.

    The fill's working and padded size, its crops and batch; the finer scales that progressive
    high resolution adds (with the device's patch and tile sizes, and the tiles of the finest
    scale); the mask propagation's working size; the budgets. `plan_problems` checks it.
    """
    from ivi_vfx import tiles
    from ivi_vfx.config import preset_config, propagate_config
    from ivi_vfx.hires import HiresConfig
    from ivi_vfx.nets.detail import DetailNet
    from ivi_vfx.progressive.scales import level_size, plan_scales
    from ivi_vfx.shot import Geometry

    cfg = preset_config(preset, device)
    geometry = Geometry.for_plate(plate, cfg.work_size)
    hires = HiresConfig().for_device(device)
    scales = plan_scales(plate, geometry.work, hires)
    levels = [level_size(plate, s) for s in scales]
    halo = DetailNet(hires.width).radius
    finest = tiles.grid(*levels[-1], hires.tile_size, hires.overlap, halo) if levels else []
    prop = propagate_config(preset, device)
    return {
        "preset": preset, "device": device, "plate": plate, "cnum": cfg.cnum, "batch": cfg.batch_size,
        "crop": cfg.crop, "work_size": cfg.work_size, "work": geometry.work, "padded": geometry.padded,
        "upscale": max(plate) / max(geometry.work), "steps": cfg.steps, "finetune_steps": cfg.finetune_steps,
        "budget_min": cfg.budget, "precision": cfg.precision, "channels_last": cfg.channels_last,
        "scales": scales, "levels": levels, "patch": hires.patch_size, "tile": hires.tile_size,
        "overlap": hires.overlap, "halo": halo, "max_step": hires.max_step, "finest_tiles": len(finest),
        "tile_context": max((t.context[1] - t.context[0]) * (t.context[3] - t.context[2]) for t in finest)
        if finest else 0, "propagate_work": Geometry.for_plate(plate, prop.work_size).work,
        "propagate_width": prop.width, "propagate_batch": prop.batch_size, "propagate_budget_min": prop.budget,
    }


def plan_problems(plan: dict[str, Any]) -> list[str]:
    """What in a plan could not run as meant: an empty list when it can."""
    from ivi_vfx.shot import MODULO

    problems = []
    (ph, pw), (wh, ww) = plan["padded"], plan["work"]
    if ph % MODULO or pw % MODULO:
        problems.append(f"padded working size {ph}x{pw} is not a multiple of {MODULO}")
    if max(wh, ww) > plan["work_size"] or wh > plan["plate"][0] or ww > plan["plate"][1]:
        problems.append(f"working size {wh}x{ww} exceeds the work size or the plate")
    if plan["crop"] and plan["crop"] > min(ph, pw):
        problems.append(f"crop {plan['crop']} is larger than the working frame {ph}x{pw}")
    sizes = [plan["work"], *plan["levels"]]
    for (h0, w0), (h1, w1) in zip(sizes, sizes[1:]):
        if max(h1, w1) / max(h0, w0) > plan["max_step"] + 1e-6:
            problems.append(f"a scale step {h0}x{w0} -> {h1}x{w1} is larger than {plan['max_step']}")
    for h, w in plan["levels"]:
        if plan["patch"] > min(h, w):
            problems.append(f"patch {plan['patch']} does not fit the scale {h}x{w}")
    if plan["levels"] and tuple(plan["levels"][-1]) != tuple(plan["plate"]):
        problems.append(f"the finest scale {plan['levels'][-1]} is not the plate {plan['plate']}")
    if plan["tile"] <= plan["overlap"]:
        problems.append(f"tile {plan['tile']} is not larger than the overlap {plan['overlap']}")
    if plan["levels"] and plan["tile_context"] > (plan["tile"] + 2 * plan["halo"]) ** 2:
        problems.append("a tile's context is larger than the tile and its halo: memory would grow with the plate")
    return problems


def plan_table(out: Path) -> None:
    from ivi_vfx.config import PRESETS

    report = Report(out, "presets", "GPU presets against the plates they meet (planned, not run)",
                    ["preset", "plate", "net", "batch x working (padded)", "upscale", "finer scales", "patch / tile",
                     "finest-scale tiles", "propagation working, width", "budgets min (fill, propagation)",
                     "problems"])
    for preset in PRESETS:
        for name, plate in PLATES.items():
            p = preset_plan(preset, "cuda", plate)
            levels = ", ".join(f"{h}x{w}" for h, w in p["levels"]) or "none"
            report.row([preset, f"{name} {plate[1]}x{plate[0]}", f"cnum {p['cnum']}",
                        f"{p['batch']} x {p['work'][1]}x{p['work'][0]} ({p['padded'][1]}x{p['padded'][0]})"
                        + (f", crops {p['crop']}" if p["crop"] else ""), f"{p['upscale']:.2f}", levels,
                        f"{p['patch']} / {p['tile']}", p["finest_tiles"] or "-",
                        f"{p['propagate_work'][1]}x{p['propagate_work'][0]}, {p['propagate_width']}",
                        f"{p['budget_min']:g}, {p['propagate_budget_min']:g}",
                        "; ".join(plan_problems(p)) or "none"], p)


# --------------------------------------------------------------------------------------------- sections

@dataclass
class Context:
    out: Path
    work: Path
    device: str
    shared: Path
    sizes: Sizes
    limit_s: float
    started: float = field(default_factory=time.perf_counter)

    def left_s(self) -> float:
        return self.limit_s - (time.perf_counter() - self.started)


def section_env(ctx: Context) -> None:
    import torch

    report = Report(ctx.out, "env", "Environment", ["what", "value"])
    rows: list[tuple[str, Any]] = [
        ("python", platform.python_version()), ("torch", torch.__version__), ("torch CUDA", torch.version.cuda),
        ("cuDNN", torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None),
        ("CUDA available", torch.cuda.is_available()), ("device of this run", ctx.device),
        ("CPU cores (affinity)", len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()),
        ("torch threads", torch.get_num_threads()), ("host memory GiB", _host_memory_gib()),
        ("TF32 convolutions (cudnn.allow_tf32)", torch.backends.cudnn.allow_tf32),
        ("TF32 matmul", torch.backends.cuda.matmul.allow_tf32), ("git commit", _git("rev-parse", "HEAD")),
        ("working tree changes", _git("status", "--porcelain").count("\n") + 1 if _git("status", "--porcelain") else 0),
    ]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            prop = torch.cuda.get_device_properties(i)
            rows += [(f"cuda:{i}", prop.name), (f"cuda:{i} memory GiB", f"{prop.total_memory / 2 ** 30:.1f}"),
                     (f"cuda:{i} capability", f"{prop.major}.{prop.minor}"),
                     (f"cuda:{i} multiprocessors", prop.multi_processor_count)]
        rows.append(("bf16 supported", torch.cuda.is_bf16_supported()))
        rows.append(("NCCL", ".".join(map(str, torch.cuda.nccl.version())) if hasattr(torch.cuda, "nccl") else None))
    smi = _run_text(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,power.limit", "--format=csv,noheader"])
    rows.append(("nvidia-smi", smi))
    for module in ("pytest", "numpy", "OpenImageIO", "cv2", "skimage", "matplotlib", "click", "fileseq"):
        rows.append((f"module {module}", _module_version(module)))
    rows.append(("cv2.xphoto (the shiftmap peer)", _has_xphoto()))
    rows.append(("shared harness", f"{ctx.shared} ({'found' if (ctx.shared / 'bench').is_dir() else 'absent'})"))
    for what, value in rows:
        report.row([what, value], {"what": what, "value": value})
    plan_table(ctx.out)


def _host_memory_gib() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 2 ** 20:.1f}"
    except OSError:
        pass
    return "?"


def _git(*args: str) -> str:
    return _run_text(["git", "-C", str(ROOT), *args]) or ""


def _run_text(cmd: list[str]) -> str | None:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _module_version(name: str) -> str:
    import importlib

    try:
        module = importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001 - any import failure is what this row reports
        return f"missing ({type(exc).__name__})"
    if name in ("click", "fileseq"):  # their __version__ is deprecated or absent: the installed distribution's
        import importlib.metadata
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "present"
    return str(getattr(module, "__version__", getattr(module, "VERSION", "present")))


def _has_xphoto() -> bool:
    try:
        import cv2
    except ImportError:
        return False
    return hasattr(cv2, "xphoto")


def section_pytest(ctx: Context) -> None:
    import xml.etree.ElementTree as ET

    xml = ctx.out / "pytest.xml"
    report = Report(ctx.out, "pytest", "pytest -m cuda", ["test", "outcome", "seconds", "message"])
    env = os.environ | {"CUBLAS_WORKSPACE_CONFIG": os.environ.get("CUBLAS_WORKSPACE_CONFIG", ":4096:8")}
    cmd = [sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-rA", "-p", "no:cacheprovider",
           f"--junitxml={xml}", *ctx.sizes.pytest_paths]
    report.note("command: " + " ".join(cmd[2:]))
    try:
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=max(ctx.left_s() - 5, 5))
    except subprocess.TimeoutExpired as exc:
        (ctx.out / "pytest.out").write_text(_text(exc.stdout) + _text(exc.stderr))
        raise RuntimeError("pytest ran out of time (its output so far: pytest.out)") from exc
    (ctx.out / "pytest.out").write_text(done.stdout + done.stderr)
    if not xml.exists():
        raise RuntimeError(f"pytest wrote no report (exit {done.returncode}): {done.stdout[-500:]} "
                           f"{done.stderr[-500:]}")
    counts: dict[str, int] = {}
    for case in ET.parse(xml).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed"}.get(child.tag, child.tag)
                message = (child.get("message") or "").splitlines()[0][:200] if child.get("message") else ""
        counts[outcome] = counts.get(outcome, 0) + 1
        name = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
        report.row([name, outcome, fmt(float(case.get("time") or 0), ".1f"), message.replace("|", "/")],
                   {"test": name, "outcome": outcome, "message": message})
    report.data["counts"] = counts
    report.note(f"exit code {done.returncode}; " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    if done.returncode not in (0, 5) or counts.get("failed") or counts.get("error"):
        raise RuntimeError(f"cuda tests: {counts} (exit {done.returncode}); see pytest.md and pytest.out")


def _text(value: str | bytes | None) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else (value or "")


def section_speed(ctx: Context) -> None:
    import speed

    s = ctx.sizes
    height, width, frames = s.speed_shot
    plate, mask = speed.write_procedural_shot(ctx.work / "speed", height, width, frames)
    cpu_ref = speed.reference(s.speed_work, s.speed_batch)
    cpu_ref.name = "reference (cpu)"
    runs = [(cpu_ref, "cpu", s.speed_cpu_steps)] + [(spec, ctx.device, s.speed_gpu_steps)
                                                     for spec in speed.gpu_specs(s.speed_work, s.speed_batch)]
    report = Report(ctx.out, "speed", f"Training step of the paper's network, {s.speed_batch} x {height}x{width}, "
                    f"forward and backward", ["config", "device", "dtype", "layout", "compile", "steps/s", "Mpx/s",
                                              "peak GPU MB", "first step +s", f"x {cpu_ref.name}: steps/s", "Mpx/s",
                                              "note"])
    base: dict | None = None  # the CPU reference's row, once measured
    for spec, device, (steps, warmup) in runs:
        compiled = bool(spec.changes.get("compile"))
        if compiled and not device.startswith("cuda"):
            report.row([spec.name, device] + ["-"] * 9 + ["not run on a CPU: compiling the generator's step took "
                                                        "over 13 minutes there (runtime.py)"])
            continue
        if s.smoke and spec.changes.get("precision") in ("bf16", "fp16") and not device.startswith("cuda"):
            report.row([spec.name, device] + ["-"] * 9 + ["not run on a CPU: autocast there is 7-11x slower "
                                                        "(runtime.py); tests/test_cpu_precision.py checks bf16"])
            continue
        args = argparse.Namespace(device=device, steps=steps, warmup=warmup,
                               timeout=s.compile_timeout_s if compiled else max(ctx.left_s() - 10, 10))
        try:
            if s.isolate or compiled:
                row = speed.run_one(spec, args, plate, mask)
            else:
                row = speed.worker(argparse.Namespace(worker=json.dumps(spec.__dict__), plate=plate, mask=mask,
                                                   device=device, steps=steps, warmup=warmup))
        except Exception as exc:  # noqa: BLE001 - one configuration's failure is a row, not the end
            report.row([spec.name, device] + ["-"] * 9 + [error_text(exc)], {"name": spec.name, "error": str(exc)})
            continue
        if row.get("timed_out"):
            report.row([spec.name, device, "-", "-", "yes" if compiled else "no", f"<{1 / row['step_s']:.3f}"]
                       + ["-"] * 5 + [f"ran over {args.timeout:.0f} s (compilation included)"], row)
            continue
        if spec is cpu_ref:
            base = row
        report.row([spec.name, device, row["dtype"], "NHWC" if row["channels_last"] else "NCHW",
                    "yes" if row["compile"] else "no", f"{1 / row['step_s']:.3f}", f"{row['mpix_s']:.3f}",
                    fmt(row.get("cuda_peak_mb"), ".0f"), f"{row['first_extra_s']:.1f}",
                    f"{base['step_s'] / row['step_s']:.2f}" if base else "-",
                    f"{row['mpix_s'] / base['mpix_s']:.2f}" if base else "-",
                    f"loss {row['loss']:.4f}" + ("" if math.isfinite(row["loss"]) else " NOT FINITE")], row)
    report.note(f"medians of {s.speed_gpu_steps[0]} timed steps after {s.speed_gpu_steps[1]} warm-up on the GPU, "
                f"{s.speed_cpu_steps[0]} after {s.speed_cpu_steps[1]} on the CPU ({_cores()} cores), in one run; "
                f"'fp32' on a GPU runs its convolutions in TF32 where torch allows it (see env.md)")


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def section_hires(ctx: Context) -> None:
    import hires

    s = ctx.sizes
    height, width = s.hires_plate
    report = Report(ctx.out, "hires", f"Progressive high resolution, {width}x{height}, {s.hires_frames} frames",
                    ["plate", "device", "run", "finer scales", "wall s", "peak host RSS GiB", "peak GPU allocated GiB",
                     "peak GPU reserved GiB", "hole PSNR", "detail", "note"])
    tic = time.perf_counter()
    scene = hires.Scene.make(height, width, s.hires_frames)
    plate, mask = hires.write_scene(scene, ctx.work / "hires" / "shot")
    report.note(f"wrote the shot in {time.perf_counter() - tic:.0f} s (bench/hires.py's scene)")
    out = ctx.work / "hires" / "out" / "clean.####.exr"
    args = ["inpaint", "--plate", plate, "--mask", mask, "--out", str(out), "--preset", "final",
            "--device", ctx.device, "--no-carry", "--no-resume", "--overwrite",
            "--checkpoint-dir", str(ctx.work / "hires" / "job"), *s.hires_args]
    report.note("ivi-render " + " ".join(args))
    result = run_ivi(args, ctx.out / "hires_ivi.log", isolate=s.isolate, timeout=max(ctx.left_s() - 20, 10))
    if result["rc"] != 0:
        raise RuntimeError(f"ivi-render exited {result['rc']}: {result['tail']}")
    psnr, detail = hires.score(scene, str(out))
    log = (ctx.out / "hires_ivi.log").read_text()
    scales = next((line.split("wrote ")[1].split(" finer")[0] for line in log.splitlines()
                   if "finer scale(s)" in line and "wrote" in line), "0")
    report.row([f"{width}x{height}", ctx.device, "final preset, " + " ".join(s.hires_args), scales,
                f"{result['wall_s']:.0f}",
                f"{result['rss_gib']:.2f}", fmt(result.get("cuda_allocated_gib")),
                fmt(result.get("cuda_reserved_gib")), f"{psnr:.2f}", f"{detail:.3f}",
                "host RSS includes the section's own process" if not s.isolate else ""], result)


def run_ivi(args: list[str], log: Path, *, isolate: bool, timeout: float) -> dict[str, Any]:
    """Run `ivi-render ARGS` with its log in `log`: exit code, wall seconds, peak host and GPU memory.

    Isolated, it runs in a child process (`--ivi-child`) whose peak RSS is its own (os.wait4) and
    which reports torch's peak GPU memory; otherwise in this process.
    """
    started = time.perf_counter()
    if not isolate:
        result = ivi_inline(args, log)
        return result | {"wall_s": time.perf_counter() - started}
    report = log.with_suffix(".json")
    with open(log, "w") as handle:
        proc = subprocess.Popen([sys.executable, __file__, "--ivi-child", str(report), "--", *args],
                                stdout=handle, stderr=subprocess.STDOUT, env=os.environ | {"PYTHONUNBUFFERED": "1"})
        deadline = time.perf_counter() + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                _, status, usage = os.wait4(proc.pid, 0)
                raise RuntimeError(f"ivi-render ran over {timeout:.0f} s; see {log.name}")
            time.sleep(0.2)
    proc.returncode = os.waitstatus_to_exitcode(status)
    result = json.loads(report.read_text()) if report.exists() else {"rc": proc.returncode}
    result |= {"wall_s": time.perf_counter() - started, "rss_gib": usage.ru_maxrss / 2 ** 20,
               "tail": log.read_text()[-1500:]}
    return result


def ivi_inline(args: list[str], log: Path) -> dict[str, Any]:
    """`ivi-render ARGS` in this process, its log lines into `log`; exit code and peak memory."""
    import logging

    import torch

    from ivi_cli.main import cli

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    with open(log, "w") as handle, contextlib.redirect_stderr(handle):  # the command logs to stderr
        try:
            rc = cli.main(args=args, prog_name="ivi-render", standalone_mode=False)
        except SystemExit as exc:
            rc = exc.code if isinstance(exc.code, int) else 1
        except Exception:  # noqa: BLE001 - reported as the run's result
            handle.write(traceback.format_exc())
            rc = 1
    logging.basicConfig(stream=sys.stderr, force=True)  # off the closed log file
    result: dict[str, Any] = {"rc": rc or 0, "rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20,
                              "tail": log.read_text()[-1500:]}
    if torch.cuda.is_available():
        result |= {"cuda_allocated_gib": torch.cuda.max_memory_allocated() / 2 ** 30,
                   "cuda_reserved_gib": torch.cuda.max_memory_reserved() / 2 ** 30}
    return result


def ivi_child(report: Path, args: list[str]) -> int:
    """The isolated ivi-render run: the command in this process, then its peak GPU memory into `report`."""
    import torch

    from ivi_cli.main import cli

    try:
        rc = cli.main(args=args, prog_name="ivi-render", standalone_mode=False)
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else 1
    result: dict[str, Any] = {"rc": rc or 0}
    if torch.cuda.is_available():
        result |= {"cuda_allocated_gib": torch.cuda.max_memory_allocated() / 2 ** 30,
                   "cuda_reserved_gib": torch.cuda.max_memory_reserved() / 2 ** 30}
    report.write_text(json.dumps(result))
    return int(rc or 0)


# --- public shots ---------------------------------------------------------------------------------

@dataclass
class Clip:
    """A shot with its truth: plate, mask and truth patterns, and where it came from."""

    name: str
    folder: Path
    plate: str
    mask: str
    truth: str
    source: str
    shared_scorer: bool


def public_clip(ctx: Context, name: str) -> Clip:
    """A public shot of the shared harness written under the work folder; the demo shot when it cannot be."""
    folder = ctx.work / "clips"
    clip = folder / name
    reason = ""
    clips_py = ctx.shared / "bench" / "clips.py"
    if not (clip / "gt.1001.exr").exists() and clips_py.exists():
        done = subprocess.run([sys.executable, str(clips_py), str(folder), name], capture_output=True, text=True,
                              timeout=120)
        reason = done.stderr.strip().splitlines()[-1] if done.returncode and done.stderr.strip() else ""
    elif not clips_py.exists():
        reason = f"no shared harness at {ctx.shared}"
    if (clip / "gt.1001.exr").exists():
        return Clip(name, clip, str(clip / "plate.####.exr"), str(clip / "mask.####.exr"), str(clip / "gt.####.exr"),
                    f"shared harness {name}", _shared_scorer(ctx))
    from ivi_vfx.demo import write_shot

    demo = write_shot(ctx.work / "demo")
    return Clip("demo", ctx.work / "demo", demo.plate, demo.mask, demo.truth,
                f"the built-in demo shot ({name} unavailable: {reason or 'clips.py wrote nothing'})", False)


def _shared_scorer(ctx: Context) -> bool:
    if str(ctx.shared / "bench") not in sys.path:
        sys.path.append(str(ctx.shared / "bench"))
    try:
        import score  # noqa: F401 - the shared scorer (needs scikit-image)
    except Exception:  # noqa: BLE001 - fall back to the hole PSNR computed here
        return False
    return True


def hole_psnr(clip: Clip, out_pattern: str) -> float:
    """Hole PSNR (dB) of an output sequence: the shared scorer's psnr_hole, or the same figure computed here
    (per frame, PSNR inside the mask of display-referred sRGB of clipped linear RGB; the mean over frames)."""
    if clip.shared_scorer:
        from score import score

        return float(score(str(clip.folder), out_pattern)["psnr_hole"])
    import numpy as np

    from ivi_vfx.io.exr import read_exr
    from ivi_vfx.io.sequence import find_sequence

    truth, masks, outs = (find_sequence(p) for p in (clip.truth, clip.mask, out_pattern))
    values = []
    for frame in truth.frames:
        g = read_exr(truth.path(frame)).display(("R", "G", "B"))
        o = read_exr(outs.path(frame)).display(("R", "G", "B"))
        m = read_exr(masks.path(frame)).display(("A",))[..., 0] > 0.5
        if not m.any():
            continue
        srgb = [np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)
                for x in (np.clip(g, 0, 1), np.clip(o, 0, 1))]
        values.append(10 * math.log10(1 / max(float(((srgb[0] - srgb[1])[m] ** 2).mean()), 1e-12)))
    return float(np.mean(values))


def section_propagation(ctx: Context) -> None:
    import torch

    from ivi_vfx.config import propagate_config
    from ivi_vfx.io.sequence import find_sequence
    from ivi_vfx.mattes.fitting import fit_propagation
    from ivi_vfx.mattes.keys import load_keys
    from ivi_vfx.shot import load_frames

    s = ctx.sizes
    clip = public_clip(ctx, "pan_astronaut")
    plate = find_sequence(clip.plate)
    report = Report(ctx.out, "propagation", f"Mask propagation presets on {clip.name}, key frame {plate.frames[0]}",
                    ["preset variant", "device", "U-Net width", "batch x working", "steps", "steps/s", "Mpx/s",
                     "peak GPU MB", "x CPU variant: steps/s", "Mpx/s", "note"])
    report.note(f"shot: {clip.source}")
    base = None
    for variant, device, steps in (("final, CPU variant", "cpu", s.propagate_steps[1]),
                                   ("final, GPU variant", ctx.device, s.propagate_steps[0])):
        cfg = propagate_config("final", "cpu" if variant.endswith("CPU variant") else "cuda")
        cfg = cfg.replace(steps=steps, budget=0.0, log_every=max(1, steps // 4))
        if s.propagate_small:
            cfg = cfg.replace(width=min(cfg.width, 8), work_size=min(cfg.work_size, 96))
        try:
            if device.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats()
            keys = load_keys(load_frames(plate, work_size=cfg.work_size), find_sequence(clip.mask, [plate.frames[0]]))
            stamps: list[float] = []

            def on_step(step: int, fraction: float, stamps: list[float] = stamps) -> bool:
                stamps.append(time.perf_counter())
                return False

            result = fit_propagation(keys, cfg, device=device, on_step=on_step)
            gaps = [b - a for a, b in zip(stamps, stamps[1:])]
            gaps = gaps[1:] or gaps  # the first gap holds the second step's warm-up too
            step_s = statistics.median(gaps) if gaps else result.seconds / max(result.step, 1)
            h, w = keys.frames.geometry.padded
            mpix = cfg.batch_size * h * w / step_s / 1e6
            base = base or {"step_s": step_s, "mpix": mpix}
            peak = torch.cuda.max_memory_allocated() / 2 ** 20 if device.startswith("cuda") else None
            report.row([variant, device, cfg.width, f"{cfg.batch_size} x {w}x{h}", result.step, f"{1 / step_s:.2f}",
                        f"{mpix:.3f}", fmt(peak, ".0f"), f"{base['step_s'] / step_s:.2f}", f"{mpix / base['mpix']:.2f}",
                        "U-Nets shrunk to width 8 and 96 px (smoke)" if s.propagate_small else ""],
                       {"variant": variant, "device": device, "step_s": step_s, "mpix_s": mpix,
                        "cuda_peak_mb": peak, "steps": result.step})
        except Exception as exc:  # noqa: BLE001 - a variant's failure is a row
            report.row([variant, device] + ["-"] * 8 + [error_text(exc)], {"variant": variant, "error": str(exc)})
    report.note("steps/s: the median gap between steps after the first (the first includes warm-up)")


def section_quality(ctx: Context) -> None:
    import copy

    import torch

    from ivi_vfx.config import preset_config
    from ivi_vfx.io.sequence import find_sequence, output_sequence
    from ivi_vfx.render import render
    from ivi_vfx.shot import load_shot
    from ivi_vfx.train import StepInfo, fit

    s = ctx.sizes
    clip = public_clip(ctx, "pan_astronaut")
    report = Report(ctx.out, "quality", f"Final preset ({'GPU' if ctx.device.startswith('cuda') else 'CPU'} variant) "
                    f"on {clip.name}: hole PSNR over training time",
                    ["minutes", "step", "stage", "hole PSNR", "estimate (no truth)", "best peer", "margin"])
    scorer = "shared score.py" if clip.shared_scorer else "hole PSNR computed here"
    report.note(f"shot: {clip.source}; scorer: {scorer}")
    peers: dict[str, float] = {}
    if str(ctx.shared / "bench") not in sys.path:
        sys.path.append(str(ctx.shared / "bench"))
    for peer in s.peers:
        try:
            from baselines import run as run_peer

            run_peer(peer, str(clip.folder), str(ctx.work / "peers" / peer))
            peers[peer] = hole_psnr(clip, str(ctx.work / "peers" / peer / "clean.####.exr"))
        except BaseException as exc:  # noqa: BLE001 - baselines.py raises SystemExit on some failures
            report.note(f"peer {peer}: {error_text(exc)}")
    if peers:
        report.note("peers: " + ", ".join(f"{k} {v:.2f}" for k, v in peers.items()))
    report.data["peers"] = peers

    cfg = preset_config("final", ctx.device)
    if s.smoke:  # tiny: a few steps, validations often enough for the stopping rule to act
        cfg = cfg.replace(steps=60, work_size=64, validate_every=2, patience=2, log_every=5)
    minutes = min(s.quality_minutes, max(ctx.left_s() - s.quality_reserve_s, 10) / 60)
    marks = [m for m in s.quality_marks if m < minutes]
    report.note(f"training {minutes:.2f} min of a run of {cfg.steps} steps (budget {cfg.budget:g} min, fine-tune "
                f"{cfg.finetune_steps} steps, patience {cfg.patience}), stopped by this check; copies at {marks} min")
    plate = find_sequence(clip.plate)
    shot = load_shot(plate, find_sequence(clip.mask, plate.frames), work_size=cfg.work_size)
    snapshots: list[dict[str, Any]] = []
    events: dict[str, Any] = {}
    pending = list(marks)
    started = time.perf_counter()

    def on_step(info: StepInfo) -> bool:
        elapsed = (time.perf_counter() - started) / 60
        if "finetune" not in events and any(k == "ambiguity" or k.startswith("stab") for k in info.losses):
            events["finetune"] = (info.step, elapsed)
        while pending and elapsed >= pending[0]:
            pending.pop(0)
            assert info.model is not None
            snapshots.append({"minutes": elapsed, "step": info.step, "state": copy.deepcopy(info.model.state_dict()),
                              "stage": "fine-tune" if "finetune" in events else "reconstruction"})
        return elapsed >= minutes

    result = fit(shot, cfg, device=ctx.device, on_step=on_step)
    total = (time.perf_counter() - started) / 60
    snapshots.append({"minutes": total, "step": result.step, "state": None, "final": True,
                      "stage": "fine-tune" if "finetune" in events else "reconstruction"})
    history = result.validation.history if result.validation else []
    model = result.model
    final_state = copy.deepcopy(model.state_dict())
    best = max(peers.values()) if peers else None
    best_name = max(peers, key=lambda k: peers[k]) if peers else ""
    for snap in snapshots:
        model.load_state_dict(snap["state"] if snap["state"] is not None else final_state)
        folder = ctx.work / "quality" / f"m{snap['minutes']:.2f}"
        render(model, shot, output_sequence(str(folder / "clean.####.exr"), plate.frames),
               device=torch.device(ctx.device), overwrite=True)
        psnr = hole_psnr(clip, str(folder / "clean.####.exr"))
        seen = [h for h in history if h[0] <= snap["step"]]
        estimate = seen[-1][2] if seen else None
        end = ""
        if snap.get("final"):
            end = " (end: converged)" if result.converged else " (end: stopped by this check)"
        report.row([f"{snap['minutes']:.2f}{end}", snap["step"], snap["stage"], f"{psnr:.2f}", fmt(estimate),
                    f"{best:.2f} ({best_name})" if best is not None else "-",
                    f"{psnr - best:+.2f}" if best is not None else "-"],
                   {"minutes": snap["minutes"], "step": snap["step"], "psnr_hole": psnr, "estimate": estimate,
                    "stage": snap["stage"]})
    if "finetune" in events:
        step, when = events["finetune"]
        report.note(f"the stopping rule's first plateau began the fine-tune stage at step {step} ({when:.2f} min)")
    if result.converged:
        report.note(f"the stopping rule ended the run at step {result.step} ({total:.2f} min)")
    elif "finetune" not in events:
        report.note(f"the stopping rule had not met a plateau by step {result.step} ({total:.2f} min); the preset's "
                    f"budget would begin the fine-tune stage at "
                    f"{cfg.budget * (1 - cfg.finetune_steps / max(cfg.steps, 1)):.1f} min")
    report.data["validation"] = history
    report.data["steps_per_s"] = result.step / max(result.seconds, 1e-9)
    report.note(f"{result.step / max(result.seconds, 1e-9):.1f} steps/s over the run, validations included")


SECTION_FUNCS: dict[str, Callable[[Context], None]] = {
    "env": section_env, "pytest": section_pytest, "speed": section_speed, "hires": section_hires,
    "propagation": section_propagation, "quality": section_quality}


# --------------------------------------------------------------------------------------------- driver

def run_sections(args: argparse.Namespace) -> int:
    """The worker: the sections named by --section, in this process, one after the other.

    Each gets its share of --limit; its outcome goes to <section>.done (status, seconds, note) as soon
    as it ends, and an exception's traceback to <section>.error, so that the next section still runs.
    """
    sizes = smoke_sizes() if args.smoke else Sizes()
    if args.smoke:
        import torch
        torch.set_num_threads(1)  # tiny work on a shared CPU: one thread waits least (runtime.auto_threads)
    names = args.section.split(",")
    started = time.perf_counter()
    failed = False
    for name in names:
        share = sum(sizes.limits[n] for n in names[names.index(name):])
        left = args.limit - (time.perf_counter() - started)
        ctx = Context(out=args.out, work=args.out / "work", device=args.device, shared=args.shared, sizes=sizes,
                      limit_s=left * sizes.limits[name] / share)
        ctx.work.mkdir(parents=True, exist_ok=True)
        print(f"gpu_check: section {name}, {ctx.limit_s:.0f} s", file=sys.stderr, flush=True)
        status, note = "ok", ""
        try:
            SECTION_FUNCS[name](ctx)
        except BaseException as exc:  # noqa: BLE001 - recorded, and the next section runs
            (args.out / f"{name}.error").write_text(traceback.format_exc())
            status, note, failed = "error", error_text(exc), True
            print(f"{name}: {note}", file=sys.stderr, flush=True)
        done = {"section": name, "status": status, "seconds": time.perf_counter() - ctx.started, "note": note}
        (args.out / f"{name}.done").write_text(json.dumps(done))
    return 1 if failed else 0


def write_summary(out: Path, rows: list[dict[str, Any]], header: str, smoke: bool) -> None:
    lines = ["# GPU check" + (" (smoke: the CPU at tiny sizes; no figure here is a GPU's)" if smoke else ""), "",
             header, "",
             "| section | status | seconds | note |", "|---|---|---|---|"]
    lines += [f"| {r['section']} | {r['status']} | {r['seconds']:.0f} | {r['note']} |" for r in rows]
    lines += [""]
    for r in rows:
        table = out / f"{r['section']}.md"
        if table.exists():
            lines += [table.read_text()]
        if r["section"] == "env" and (out / "presets.md").exists():
            lines += [(out / "presets.md").read_text()]
    (out / "summary.md").write_text("\n".join(lines))
    (out / "summary.json").write_text(json.dumps(rows, indent=1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="folder for the tables, logs and work files (required)")
    parser.add_argument("--smoke", action="store_true", help="the same code on the CPU at tiny sizes (under 3 min)")
    parser.add_argument("--device", default=None, help="cuda (default), or cpu; --smoke: cpu")
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared",
                        help="the shared harness (clips.py, score.py, baselines.py under bench/)")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated, of {', '.join(SECTIONS)}")
    parser.add_argument("--deadline", type=float, default=None, help="seconds for the whole check (default 470; "
                                                                     "--smoke 170)")
    parser.add_argument("--section", help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=float, default=60.0, help=argparse.SUPPRESS)
    parser.add_argument("--ivi-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.ivi_child:
        return ivi_child(args.ivi_child, args.rest)
    if args.out is None:
        parser.error("--out DIR is required")
    args.device = args.device or ("cpu" if args.smoke else "cuda")
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.section:
        return run_sections(args)

    sizes = smoke_sizes() if args.smoke else Sizes()
    deadline = args.deadline or sizes.deadline_s
    chosen = [s for s in args.sections.split(",") if s]
    unknown = set(chosen) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    header = (f"{'smoke, ' if args.smoke else ''}device {args.device}, deadline {deadline:.0f} s, "
              f"started {time.strftime('%Y-%m-%d %H:%M:%S')}, command: {' '.join(sys.argv)}")
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    order = [s for s in SECTIONS if s in chosen]
    # One process per section on the GPU (a CUDA error or an out-of-memory stays in its section, and each
    # section's peak memory is its own); the smoke run puts them all in one process (one torch import).
    groups = [order] if args.smoke else [[name] for name in order]
    for group in groups:
        left = deadline - (time.perf_counter() - started)
        limit = min(sum(sizes.limits[name] for name in group), left)
        if limit < 5:
            rows += [{"section": name, "status": "skipped", "seconds": 0.0, "note": "no time left"} for name in group]
            write_summary(args.out, rows, header, args.smoke)
            continue
        label = ",".join(group)
        print(f"gpu_check: {label} (at most {limit:.0f} s)", file=sys.stderr, flush=True)
        tic = time.perf_counter()
        for name in group:
            for stale in (args.out / f"{name}.done", args.out / f"{name}.error"):
                stale.unlink(missing_ok=True)
        cmd = [sys.executable, __file__, "--section", label, "--out", str(args.out), "--device", args.device,
               "--shared", str(args.shared), "--limit", str(limit)] + (["--smoke"] if args.smoke else [])
        log_path = args.out / f"{group[0] if len(group) == 1 else 'sections'}.log"
        killed = False
        with open(log_path, "w") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                                    env=os.environ | {"PYTHONUNBUFFERED": "1"})
            try:
                proc.wait(timeout=limit + 15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                killed = True
        for name in group:
            done = args.out / f"{name}.done"
            if done.exists():
                row = json.loads(done.read_text())
            elif killed:
                row = {"section": name, "status": "timeout", "seconds": time.perf_counter() - tic,
                       "note": f"killed after {limit + 15:.0f} s; its table holds what it finished"}
            else:
                row = {"section": name, "status": "error", "seconds": time.perf_counter() - tic,
                       "note": f"its process ended (exit {proc.returncode}) before it did; see {log_path.name}"}
            tic = time.perf_counter() if done.exists() else tic
            row["note"] = str(row["note"]).replace("|", "/")
            rows.append(row)
            print(f"gpu_check: {name} {row['status']} in {row['seconds']:.0f} s {row['note']}", file=sys.stderr,
                  flush=True)
        write_summary(args.out, rows, header, args.smoke)
    print((args.out / "summary.md").read_text())
    return 0 if all(r["status"] == "ok" for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
