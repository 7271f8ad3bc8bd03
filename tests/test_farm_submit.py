"""`ivi-render submit` hands the files to the farm's own client where it is installed, and says what it ran.

Fake clients on PATH (fake_farm/clients.py) record their argv and the files they were given and answer as
the real ones; OpenCue's client is pycue's launchSpec, faked as a module. Without a client, or with
--bundle-only, submit writes the files and prints the command to run.
"""
from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

sys.path.insert(0, str(Path(__file__).parent / "fake_farm"))
import clients as fake
from hostile import BUNDLE, SETTINGS

from conftest import TinyShot
from ivi_cli.main import cli


def submit(tiny_shot: TinyShot, bundle: Path, *args: str, path: Path | None = None,
           env: dict[str, str | None] | None = None) -> Result:
    bins = f"{path}{os.pathsep}" if path else ""
    environment = {"PATH": f"{bins}/usr/bin:/bin", "DEADLINE_PATH": None, "CUEBOT_HOSTS": None, **(env or {})}
    return CliRunner().invoke(cli, ["submit", "--bundle", str(bundle), "--plate", tiny_shot.plate, "--mask",
                                    tiny_shot.mask, "--out", str(bundle.parent / "out/clean.####.exr"), *SETTINGS,
                                    *args], env=environment)


def test_deadline_submits_train_then_render_depending_on_it_with_deadlinecommand(tiny_shot: TinyShot,
                                                                                 tmp_path: Path) -> None:
    log, bundle = tmp_path / "calls.jsonl", tmp_path / BUNDLE
    exe = fake.install(tmp_path / "bin", "deadlinecommand", log)
    r = submit(tiny_shot, bundle, "--farm", "deadline", "--pool", "gpu", path=exe.parent)
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == str(bundle / "submit.sh")
    first, second = fake.calls(log)
    assert first["argv"][1:] == [str(bundle / "train.job"), str(bundle / "train_plugin.job")]
    assert second["argv"][1:] == [str(bundle / "render_submit.job"), str(bundle / "render_plugin.job")]
    render_info = second["files"][str(bundle / "render_submit.job")]
    assert render_info.endswith("JobDependencies=64f0c0de0000000000000001\n") and "Pool=gpu\n" in render_info
    assert f"ran: {exe} " in r.stderr and "submitted to deadline: 64f0c0de0000000000000001, 64f0c0de0000000000000002" \
        in r.stderr


def test_deadline_cloud_submits_the_bundle_with_deadline_bundle_submit(tiny_shot: TinyShot, tmp_path: Path) -> None:
    log, bundle = tmp_path / "calls.jsonl", tmp_path / BUNDLE
    exe = fake.install(tmp_path / "bin", "deadline", log)
    r = submit(tiny_shot, bundle, "--farm", "openjd", "--priority", "80", path=exe.parent)
    assert r.exit_code == 0, r.output
    (call,) = fake.calls(log)
    assert call["argv"][1:] == ["bundle", "submit", "--yes", "--priority", "80", str(bundle)]
    assert f"submitted to openjd: job-{1:032x}" in r.stderr


def test_opencue_launches_the_spec_with_pycue_when_a_cuebot_is_configured(tiny_shot: TinyShot, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("outline")
    launched: list[str] = []
    pycue = types.ModuleType("opencue")
    pycue.api = types.SimpleNamespace(launchSpec=lambda xml: launched.append(xml) or ["feature-sh010-artist_ivi"])
    monkeypatch.setitem(sys.modules, "opencue", pycue)
    bundle = tmp_path / "bundle"
    r = submit(tiny_shot, bundle, "--farm", "opencue", "--shot", "sh010")
    assert r.exit_code == 0 and launched == [] and "no opencue client here" in r.stderr  # no Cuebot configured
    r = submit(tiny_shot, bundle, "--farm", "opencue", "--shot", "sh010", env={"CUEBOT_HOSTS": "cuebot.studio"})
    assert r.exit_code == 0, r.output
    assert launched == [(bundle / "job.xml").read_text(encoding="utf-8")]
    assert "submitted to opencue: feature-sh010-artist_ivi" in r.stderr


def test_without_a_client_or_with_bundle_only_submit_prints_the_command_to_run(tiny_shot: TinyShot,
                                                                              tmp_path: Path) -> None:
    log = tmp_path / "calls.jsonl"
    exe = fake.install(tmp_path / "bin", "deadline", log)
    r = submit(tiny_shot, tmp_path / "b1", "--farm", "openjd", "--bundle-only", path=exe.parent)
    assert r.exit_code == 0 and fake.calls(log) == []
    assert f"not submitted (--bundle-only); to submit, run: deadline bundle submit --yes {tmp_path}/b1" in r.stderr
    bundle = tmp_path / BUNDLE
    r = submit(tiny_shot, bundle, "--farm", "deadline")
    assert r.exit_code == 0 and (bundle / "train.job").is_file() and not (bundle / "render_submit.job").exists()
    assert "not submitted (no deadline client here); to submit, run: '" in r.stderr  # the script's path, quoted
    assert str(bundle / "submit.sh").replace("'", "'\"'\"'") in r.stderr


def test_a_client_that_refuses_the_job_is_an_error_naming_what_it_said(tiny_shot: TinyShot, tmp_path: Path) -> None:
    bad = tmp_path / "bin/deadlinecommand"
    bad.parent.mkdir()
    bad.write_text("#!/bin/sh\necho 'Error: the pool gpu does not exist' >&2\nexit 1\n")
    bad.chmod(0o755)
    r = submit(tiny_shot, tmp_path / "bundle", "--farm", "deadline", path=bad.parent)
    assert r.exit_code == 1 and "failed (exit 1): Error: the pool gpu does not exist" in r.stderr
