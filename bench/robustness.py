"""Robustness of `ivi-render` as a hostile user and a failing farm see it: corrupted plates, kills, bad inputs.

    python bench/robustness.py            # the full run: 120 corrupted files, 24 kills, every bad-input kind
    python bench/robustness.py --quick    # the subset tests/test_robustness.py runs

Three sections, each a table of cases by outcome:

- corrupted: seeded damage to one frame of a tiny shot (a plate frame, now and then a matte frame):
  truncations, header byte flips and data byte flips; then `ivi-render inpaint`. Handled: exit 1 with
  the damaged file named on the last line, no output frame and no temporary left; or exit 0 with every
  frame written whole (OpenImageIO read the damaged file as a valid one: a flipped pixel value is data).
- kills: `ivi-render train` and `ivi-render render` as subprocesses, sent SIGTERM, SIGKILL, or SIGTERM
  then SIGKILL, at a random moment, then run again to the end. Handled: the rerun exits 0 and gives
  frames bit-identical to an uninterrupted run, with no partial frame under a frame's name at any point
  looked at and no temporary left after the rerun.
- bad inputs: one case per kind of mistake a user makes. Handled: non-zero exit, the culprit named on the
  last line, no traceback, no output, inputs untouched.

Outcomes other than handled: *lost* (inputs changed, a frame missing or different after the rerun, a kept
file changed) and *leaked* (a traceback or an unnamed error, a partial frame or a temporary left, output
written for a refused input). The corrupted and bad-input cases run the command line in this process
(click's test runner: the same code, no interpreter start per case); the kills need real processes.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import OpenImageIO as oiio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from click.testing import CliRunner  # noqa: E402

from ivi_cli.main import cli  # noqa: E402
from ivi_vfx.io.exr import read_exr  # noqa: E402

FAST = ["--preset", "quick", "--steps", "1", "--budget", "0", "--work-size", "32", "--device", "cpu", "--seed", "0"]
"""The corrupted and bad-input cases train one step: they are about reading, not learning."""
KILL_STEPS = 60
"""Steps of the killed trainings: long enough to be killed in the middle of (a few seconds)."""
OUTCOMES = ("handled", "lost", "leaked")


# --- a tiny shot -----------------------------------------------------------------------------------


def write_exr(path: Path, pixels: np.ndarray, channels: tuple[str, ...], compression: str = "zip") -> None:
    pixels = np.ascontiguousarray(pixels, np.float32)
    spec = oiio.ImageSpec(pixels.shape[1], pixels.shape[0], pixels.shape[2], oiio.HALF)
    spec.channelnames = channels
    spec.attribute("compression", compression)
    out = oiio.ImageOutput.create("openexr")
    if not (out.open(str(path), spec) and out.write_image(pixels) and out.close()):
        raise RuntimeError(out.geterror())


def make_shot(folder: Path, count: int = 5, height: int = 24, width: int = 32, seed: int = 0,
              compression: str = "zip") -> tuple[str, str]:
    """A textured wall panning under a moving red square, and the square's matte; returns the patterns."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    wall = rng.uniform(0.02, 0.8, (height, width + 2 * count, 3)).astype(np.float32)
    for t in range(count):
        plate = wall[:, 2 * t:2 * t + width].copy()
        matte = np.zeros((height, width, 1), np.float32)
        y0, x0 = height // 3, 4 + 3 * t
        matte[y0:y0 + 7, x0:x0 + 7] = 1
        plate[matte[..., 0] > 0] = (0.9, 0.1, 0.1)
        rgba = np.concatenate([plate, np.ones((height, width, 1), np.float32)], -1)
        write_exr(folder / f"plate.{1001 + t}.exr", rgba, ("R", "G", "B", "A"), compression)
        write_exr(folder / f"mask.{1001 + t}.exr", matte, ("A",), compression)
    return str(folder / "plate.####.exr"), str(folder / "mask.####.exr")


def digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.name.encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def header_length(data: bytes) -> int:
    """Bytes of an EXR's magic, version and attributes (an empty attribute name ends them)."""
    at = 8
    try:
        while data[at]:
            at = data.index(b"\x00", data.index(b"\x00", at) + 1) + 1
            at += 4 + int.from_bytes(data[at:at + 4], "little")
        return at + 1
    except (IndexError, ValueError):
        return min(len(data), 300)


# --- running the command line -----------------------------------------------------------------------


@dataclass
class Run:
    code: int
    output: str
    traceback: bool

    @property
    def last(self) -> str:
        lines = self.output.strip().splitlines()
        return lines[-1] if lines else ""


def run_cli(*args: str) -> Run:
    """`ivi-render ARGS` in this process; logging and the SIGTERM handler are left as they were found."""
    root = logging.getLogger()
    handlers, level, sigterm = list(root.handlers), root.level, signal.getsignal(signal.SIGTERM)
    try:
        result = CliRunner().invoke(cli, ["-q", *args], catch_exceptions=True)
    finally:
        root.handlers[:], root.level = handlers, level
        signal.signal(signal.SIGTERM, sigterm)
    traceback = result.exception is not None and not isinstance(result.exception, SystemExit)
    output = result.output + (f"\n{type(result.exception).__name__}: {result.exception}" if traceback else "")
    return Run(result.exit_code, output, traceback)


def leftovers(folder: Path) -> list[Path]:
    """Temporaries a writer left (io.exr's `.<name>.*.tmp`, a checkpoint's `.<name>.<pid>.tmp`)."""
    return [p for p in folder.rglob(".*.tmp")] if folder.exists() else []


def frames_written(folder: Path) -> list[Path]:
    return sorted(folder.glob("clean.*.exr")) if folder.exists() else []


def whole(paths: list[Path]) -> bool:
    try:
        for p in paths:
            read_exr(p)
    except Exception:  # noqa: BLE001 - any failure means a frame is not whole
        return False
    return True


@dataclass
class Table:
    title: str
    rows: dict[str, Counter] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, kind: str, outcome: str, note: str = "") -> None:
        self.rows.setdefault(kind, Counter())[outcome] += 1
        if note and outcome != "handled":
            self.notes.append(f"{kind}: {outcome}: {note}")

    def total(self) -> Counter:
        out: Counter = Counter()
        for row in self.rows.values():
            out.update(row)
        return out

    def markdown(self) -> str:
        lines = [f"### {self.title}", "", "| kind | cases | handled | lost | leaked |", "|---|---:|---:|---:|---:|"]
        for kind, row in [*self.rows.items(), ("all", self.total())]:
            lines.append(f"| {kind} | {sum(row.values())} | " + " | ".join(str(row[o]) for o in OUTCOMES) + " |")
        lines += [""] + [f"- {n}" for n in self.notes[:20]]
        return "\n".join(lines)


# --- corrupted files ----------------------------------------------------------------------------------


def damage(data: bytes, kind: str, rng: np.random.Generator) -> bytes:
    b = bytearray(data)
    head = header_length(data)
    if kind == "truncation":
        return bytes(b[:int(rng.integers(0, len(b)))])
    if kind == "header flip":
        for _ in range(int(rng.integers(1, 3))):
            b[int(rng.integers(0, head))] ^= 1 << int(rng.integers(0, 8))
        return bytes(b)
    for _ in range(int(rng.integers(1, 4))):  # data flip: the offset table and the chunks
        b[int(rng.integers(head, len(b)))] ^= 1 << int(rng.integers(0, 8))
    return bytes(b)


def corrupted(work: Path, count: int, seed: int) -> Table:
    table = Table(f"corrupted files ({count} seeded cases, then ivi-render inpaint)")
    pristine = work / "pristine"
    make_shot(pristine)
    rng = np.random.default_rng(seed)
    kinds = ("truncation", "header flip", "data flip")
    for case in range(count):
        kind = kinds[case % len(kinds)]
        folder = work / f"corrupt{case:03d}"
        shot = folder / "shot"
        shutil.copytree(pristine, shot)
        frame = 1001 + int(rng.integers(0, 5))
        victim = shot / (f"mask.{frame}.exr" if rng.random() < 0.2 else f"plate.{frame}.exr")
        victim.write_bytes(damage(victim.read_bytes(), kind, rng))
        before = digest(shot)
        out = folder / "out"
        r = run_cli("inpaint", "--plate", str(shot / "plate.####.exr"), "--mask", str(shot / "mask.####.exr"),
                    "--out", str(out / "clean.####.exr"), *FAST)
        written, temps = frames_written(out), leftovers(out)
        if digest(shot) != before:
            table.add(kind, "lost", f"case {case}: an input changed")
        elif r.traceback or temps:
            table.add(kind, "leaked", f"case {case} ({victim.name}): {r.last or temps}")
        elif r.code == 1 and victim.name in r.last and r.last.startswith("ivi-render: error:") and not written:
            table.add(kind, "handled")
        elif r.code == 0 and len(written) == 5 and whole(written):
            table.add(kind, "handled")  # read as a valid file: the damage changed data, not the format
        else:
            table.add(kind, "leaked", f"case {case} ({victim.name}): exit {r.code}, {len(written)} frames: "
                                      f"{r.last[:160]}")
        shutil.rmtree(folder)
    return table


# --- kills --------------------------------------------------------------------------------------------


def ivi_env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}


def killed(args: list[str], delay: float, how: str, out: Path, seen_partial: list[str]) -> int:
    """Start `ivi-render ARGS`, send `how` after `delay` seconds; returns its exit code. Looks at the output
    folder while it runs and after: a file under a frame's name that does not read is a partial frame."""
    exe = str(Path(sys.executable).with_name("ivi-render"))
    proc = subprocess.Popen([exe, "-q", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=ivi_env())
    end = time.monotonic() + delay
    while time.monotonic() < end and proc.poll() is None:
        time.sleep(0.05)
        if not whole(frames_written(out)):
            seen_partial.append("while running")
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL if how == "SIGKILL" else signal.SIGTERM)
        if how == "SIGTERM+SIGKILL":
            time.sleep(0.2)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
    code = proc.wait(timeout=300)
    if not whole(frames_written(out)):
        seen_partial.append("after the kill")
    return code


def same_frames(a: list[Path], b: list[Path]) -> bool:
    if [p.name for p in a] != [p.name for p in b]:
        return False
    for x, y in zip(a, b):
        ix, iy = read_exr(x), read_exr(y)
        if ix.channel_names != iy.channel_names or not np.array_equal(ix.pixels.view(np.uint32),
                                                                       iy.pixels.view(np.uint32)):
            return False
    return True


def kills(work: Path, count: int, seed: int, quick: bool = False) -> tuple[Table, list[str]]:
    """`count` kills, train and render in turn. The uninterrupted reference and the reruns run in this
    process (one torch thread, as the killed processes: a thread count changes the sums' rounding)."""
    table = Table(f"kills ({count} seeded cases: SIGTERM, SIGKILL or both at a random moment, then a rerun)")
    rng = np.random.default_rng(seed + 1)
    shot = work / "killshot"
    frames, steps = (5, 10) if quick else (8, KILL_STEPS)
    plate, mask = make_shot(shot, count=frames, height=48, width=64)
    train_args = ["--plate", plate, "--mask", mask, "--preset", "quick", "--no-carry", "--steps", str(steps),
                  "--budget", "0", "--work-size", "48", "--device", "cpu", "--seed", "0"]
    reference = work / "reference"
    started = time.monotonic()
    for args in (["train", *train_args, "--out", str(reference / "out/clean.####.exr"),
                  "--checkpoint-dir", str(reference / "job")],
                 ["render", "--checkpoint-dir", str(reference / "job"), "--device", "cpu"]):
        r = run_cli(*args)
        if r.code != 0:
            raise RuntimeError(f"the reference run failed: {r.output[-2000:]}")
    log = [f"reference run in this process (train {steps} steps + render {frames} frames): "
           f"{time.monotonic() - started:.1f} s"]
    expected = frames_written(reference / "out")
    before = digest(shot)
    hows = ("SIGTERM", "SIGKILL", "SIGTERM+SIGKILL")
    # How long each command runs uninterrupted as a process, so that the kills fall anywhere in it.
    spans = {"train": 7.0, "render": 5.0}
    if not quick:
        for command, args in (("train", ["train", *train_args, "--out", str(work / "timing/out/clean.####.exr"),
                                         "--checkpoint-dir", str(work / "timing/job")]),
                              ("render", ["render", "--checkpoint-dir", str(work / "timing/job"), "--device", "cpu"])):
            tic = time.monotonic()
            exe = str(Path(sys.executable).with_name("ivi-render"))
            subprocess.run([exe, "-q", *args], capture_output=True, env=ivi_env(), check=True, timeout=600)
            spans[command] = time.monotonic() - tic
        log.append(f"uninterrupted processes: train {spans['train']:.1f} s, render {spans['render']:.1f} s")
    interrupted = 0
    for case in range(count):
        command = "train" if case % 2 == 0 else "render"
        how = hows[int(rng.integers(0, len(hows)))]
        folder = work / f"kill{case:02d}"
        out, job = folder / "out", folder / "job"
        if command == "train":
            args = ["train", *train_args, "--out", str(out / "clean.####.exr"), "--checkpoint-dir", str(job)]
        else:  # a render of the reference's model into this case's output
            shutil.copytree(reference / "job", job)
            spec = json.loads((job / "job.json").read_text())
            spec["out"] = str(out / "clean.####.exr")
            (job / "job.json").write_text(json.dumps(spec))
            args = ["render", "--checkpoint-dir", str(job), "--device", "cpu"]
        # From the interpreter's start (imports: seconds) to the work's end: every moment can be hit.
        delay = float(rng.uniform(0.3, spans[command]))
        partial: list[str] = []
        code = killed(args, delay, how, out, partial)
        interrupted += code != 0
        rerun = run_cli(*args)
        if command == "train" and rerun.code == 0:
            rerun = run_cli("render", "--checkpoint-dir", str(job), "--device", "cpu")
        temps = leftovers(out) + leftovers(job)
        note = f"case {case} {command} {how} at {delay:.1f} s (exit {code})"
        if digest(shot) != before:
            table.add(command, "lost", f"{note}: an input changed")
        elif partial or temps or rerun.traceback:
            table.add(command, "leaked", f"{note}: partial frame {partial}, temporaries {temps}: {rerun.last}")
        elif rerun.code != 0:
            table.add(command, "lost", f"{note}: the rerun failed: {rerun.last[-300:]}")
        elif not same_frames(frames_written(out), expected):
            table.add(command, "lost", f"{note}: frames differ from the uninterrupted run's")
        else:
            table.add(command, "handled")
        log.append(f"{note}: rerun exit {rerun.code}")
        shutil.rmtree(folder)
    log.append(f"{interrupted} of {count} processes were interrupted (the others had finished first)")
    return table, log


# --- bad inputs ---------------------------------------------------------------------------------------


Damage = Callable[[Path], None]


def _png_named_exr(shot: Path) -> None:
    png = shot / "a.png"
    assert oiio.ImageBuf(np.zeros((24, 32, 3), np.float32)).write(str(png))
    png.replace(shot / "plate.1002.exr")


def _full_matte(shot: Path, keep_lattice: bool = False) -> None:
    matte = np.ones((24, 32, 1), np.float32)
    if keep_lattice:
        matte[1::4, 1::4] = 0  # known pixels only on a lattice: at a quarter size none is left
    for f in range(1001, 1006):
        write_exr(shot / f"mask.{f}.exr", matte, ("A",))


def _flipped_name(shot: Path) -> None:
    path = shot / "plate.1003.exr"
    data = bytearray(path.read_bytes())
    at = data.index(b"channels\x00chlist\x00") + len(b"channels\x00chlist\x00") + 4  # the first channel's name
    data[at] ^= 0x80  # no longer UTF-8
    path.write_bytes(bytes(data))


BAD: dict[str, tuple[Damage | None, list[str], str]] = {
    # kind: (damage to a fresh shot, arguments replacing the defaults ({shot}, {out}), the culprit's name)
    "no frame matches": (None, ["--plate", "{shot}/nothing.####.exr"], "nothing.####.exr"),
    "frames missing in the range": (None, ["--frames", "1001-1009"], "1006-1009"),
    "a matte frame missing": (lambda s: (s / "mask.1004.exr").unlink(), [], "mask.####.exr"),
    "truncated plate frame": (lambda s: (s / "plate.1003.exr").write_bytes((s / "plate.1003.exr").read_bytes()[:300]),
                              [], "plate.1003.exr"),
    "empty file": (lambda s: (s / "plate.1002.exr").write_bytes(b""), [], "plate.1002.exr"),
    "text named .exr": (lambda s: (s / "plate.1002.exr").write_text("not an image\n"), [], "plate.1002.exr"),
    "PNG named .exr": (_png_named_exr, [], "plate.1002.exr"),
    "header not UTF-8": (_flipped_name, [], "plate.1003.exr"),
    # (Without --frames, a folder is not a frame on disk: the plate's frames are the others, rightly.)
    "a folder named as a frame": (lambda s: ((s / "plate.1002.exr").unlink(), (s / "plate.1002.exr").mkdir()),
                                  ["--frames", "1001-1005"], "frames 1002 are missing"),
    "matte of another size": (lambda s: write_exr(s / "mask.1002.exr", np.zeros((10, 12, 1)), ("A",)), [],
                              "mask.1002.exr"),
    "plate frames of two formats": (lambda s: write_exr(s / "plate.1004.exr", np.zeros((20, 32, 4)),
                                                        ("R", "G", "B", "A")), [], "plate.1004.exr"),
    "plate without RGB": (lambda s: [write_exr(s / f"plate.{f}.exr", np.zeros((24, 32, 1)), ("Y",))
                                     for f in range(1001, 1006)], [], "plate.1001.exr"),
    "no such --mask-channel": (None, ["--mask-channel", "Z"], "--mask-channel"),
    "matte without A, several channels": (lambda s: write_exr(s / "mask.1001.exr", np.zeros((24, 32, 2)),
                                                              ("R", "G")), [], "mask.1001.exr"),
    "matte over every pixel": (_full_matte, [], "mask.####.exr"),
    "matte over every working pixel": (lambda s: _full_matte(s, keep_lattice=True), ["--work-size", "16"],
                                       "--work-size"),
    "output over the plate": (None, ["--out", "{shot}/plate.####.exr"], "--out"),
    "output folder is a file": (None, ["--out", "{shot}/plate.1001.exr/clean.####.exr"], "plate.1001.exr"),
    "unknown preset": (None, ["--preset", "fastest"], "fastest"),
    "negative steps": (None, ["--steps", "-3"], "--steps"),
    "existing output without --overwrite": (None, [], "--overwrite"),
    "damaged checkpoint in the job folder": (None, [], "model.ckpt"),
}
"""One case per kind of bad input."""
QUICK_BAD = ("truncated plate frame", "header not UTF-8", "matte over every pixel", "output over the plate")


def bad_inputs(work: Path, kinds: tuple[str, ...]) -> Table:
    table = Table(f"bad inputs ({len(kinds)} kinds, ivi-render inpaint or render)")
    for k, kind in enumerate(kinds):
        damage_fn, extra, culprit = BAD[kind]
        folder = work / f"bad{k:02d}"
        shot = folder / "shot"
        plate, mask = make_shot(shot)
        out = folder / "out"
        if damage_fn:
            damage_fn(shot)
        args = {"--plate": plate, "--mask": mask, "--out": str(out / "clean.####.exr")}
        extra = [a.format(shot=shot, out=out) for a in extra]
        for key in [key for key in args if key in extra]:
            args.pop(key)
        command = ["inpaint", *[x for kv in args.items() for x in kv], *FAST, *extra]
        kept: dict[Path, bytes] = {}
        if kind == "existing output without --overwrite":
            out.mkdir(parents=True)
            (out / "clean.1003.exr").write_bytes(b"an earlier render")
            kept = {out / "clean.1003.exr": b"an earlier render"}
        if kind == "damaged checkpoint in the job folder":
            (folder / "job").mkdir()
            (folder / "job" / "job.json").write_text(json.dumps({"plate": plate, "mask": mask,
                                                                 "out": str(out / "clean.####.exr")}))
            (folder / "job" / "model.ckpt").write_bytes(b"PK\x03\x04 not a checkpoint")
            command = ["render", "--checkpoint-dir", str(folder / "job"), "--device", "cpu"]
        before = digest(shot)
        r = run_cli(*command)
        written = [p for p in frames_written(out) if p not in kept]
        if digest(shot) != before or any(p.read_bytes() != b for p, b in kept.items()):
            table.add(kind, "lost", "an input or a kept output changed")
        elif r.traceback or written or leftovers(out):
            table.add(kind, "leaked", f"exit {r.code}, {len(written)} frames: {r.last[:200]}")
        elif r.code != 0 and culprit in r.last:
            table.add(kind, "handled")
        else:
            table.add(kind, "leaked", f"exit {r.code}, culprit {culprit!r} not named: {r.last[:200]}")
        shutil.rmtree(folder)
    return table


# --- the run ------------------------------------------------------------------------------------------


def run(quick: bool = False, seed: int = 0, work: Path | None = None, corrupt: int | None = None,
        kill: int | None = None) -> tuple[list[Table], list[str]]:
    """Every section; the quick subset: 6 corrupted files, 2 kills (a train, a render), 4 bad-input kinds."""
    import torch

    owned = work is None
    work = Path(tempfile.mkdtemp(prefix="ivi-robustness-")) if work is None else work
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the killed processes (OMP_NUM_THREADS=1), so that reruns match them
    try:
        tables = [corrupted(work, corrupt if corrupt is not None else (6 if quick else 120), seed)]
        kill_table, log = kills(work, kill if kill is not None else (2 if quick else 24), seed, quick)
        tables += [kill_table, bad_inputs(work, QUICK_BAD if quick else tuple(BAD))]
        return tables, log
    finally:
        torch.set_num_threads(threads)
        if owned:
            shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the subset the test suite runs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--corrupt", type=int, default=None, help="corrupted-file cases (default 120, quick 6)")
    parser.add_argument("--kills", type=int, default=None, help="kill cases (default 24, quick 2)")
    parser.add_argument("--json", type=Path, default=None, help="also write the counts here")
    args = parser.parse_args()
    started = time.monotonic()
    tables, log = run(quick=args.quick, seed=args.seed, corrupt=args.corrupt, kill=args.kills)
    for table in tables:
        print(table.markdown(), end="\n\n")
    print("\n".join(log))
    print(f"\n{time.monotonic() - started:.0f} s in all")
    if args.json:
        args.json.write_text(json.dumps({t.title: {k: dict(v) for k, v in t.rows.items()} for t in tables}, indent=2))
    failed = sum(t.total()[o] for t in tables for o in ("lost", "leaked"))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
