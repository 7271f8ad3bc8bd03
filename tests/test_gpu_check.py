"""bench/gpu_check.py works before a GPU runs it: its --smoke run on the CPU, and a failing section."""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import gpu_check  # noqa: E402


def test_the_smoke_run_goes_through_every_section_and_writes_its_tables(tmp_path: Path) -> None:
    out = tmp_path / "check"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--smoke", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    summary = json.loads((out / "summary.json").read_text())
    assert [r["section"] for r in summary] == list(gpu_check.SECTIONS)
    assert all(r["status"] == "ok" for r in summary), summary
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| speed | ok |" in (out / "summary.md").read_text()
    tables = {name: json.loads((out / f"{name}.json").read_text()) for name in (*gpu_check.SECTIONS, "presets")}

    # The cuda tests were collected and, without a GPU, all skipped.
    assert set(tables["pytest"]["counts"]) == {"skipped"} and tables["pytest"]["counts"]["skipped"] >= 7
    # The CPU reference and the GPU configurations that a CPU runs, each a finite training step.
    speed = {r["name"]: r for r in tables["speed"]["rows"]}
    assert {"reference (cpu)", "fp32", "fp32 +channels_last"} <= set(speed)
    assert all(r["step_s"] > 0 and math.isfinite(r["loss"]) for r in speed.values())
    assert "not run on a CPU" in (out / "speed.md").read_text()  # bf16, fp16 and compile rows say why
    assert len(tables["presets"]["rows"]) == 6
    assert "| none |" in (out / "presets.md").read_text()
    (hires,) = tables["hires"]["rows"]
    assert hires["rc"] == 0 and hires["wall_s"] > 0
    assert [r["variant"] for r in tables["propagation"]["rows"]] == ["final, CPU variant", "final, GPU variant"]
    assert all(r["step_s"] > 0 for r in tables["propagation"]["rows"])
    quality = tables["quality"]["rows"]
    assert len(quality) >= 1 and all(math.isfinite(r["psnr_hole"]) for r in quality)
    assert quality[-1]["step"] >= 1


def test_a_failing_section_is_recorded_and_the_next_one_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ran = []

    def broken(ctx: gpu_check.Context) -> None:
        ran.append("broken")
        raise RuntimeError("the card fell off")

    def fine(ctx: gpu_check.Context) -> None:
        ran.append("fine")
        gpu_check.Report(ctx.out, "fine", "Fine", ["a"]).row([1])

    monkeypatch.setattr(gpu_check, "SECTION_FUNCS", {"env": broken, "pytest": fine})
    args = argparse.Namespace(out=tmp_path, smoke=False, section="env,pytest", device="cpu", shared=tmp_path,
                              limit=60.0)
    assert gpu_check.run_sections(args) == 1
    assert ran == ["broken", "fine"]
    env, tests = (json.loads((tmp_path / f"{name}.done").read_text()) for name in ("env", "pytest"))
    assert env["status"] == "error" and "the card fell off" in env["note"]
    assert "RuntimeError" in (tmp_path / "env.error").read_text()
    assert tests["status"] == "ok" and "| 1 |" in (tmp_path / "fine.md").read_text()
