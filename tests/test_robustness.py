"""The quick subset of bench/robustness.py: corrupted plates, a killed train and render, bad inputs; nothing
may be lost or leaked (the full run: `python bench/robustness.py`, docs/reliability.md)."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import robustness  # noqa: E402


def test_the_quick_robustness_run_loses_and_leaks_nothing(tmp_path: Path) -> None:
    tables, log = robustness.run(quick=True, seed=0, work=tmp_path)
    corrupted, kills, bad = tables
    assert sum(corrupted.total().values()) == 6 and sum(kills.total().values()) == 2
    assert set(kills.rows) == {"train", "render"} and set(bad.rows) == set(robustness.QUICK_BAD)
    for table in tables:
        assert table.total()["lost"] == 0 and table.total()["leaked"] == 0, table.markdown()
        assert table.total()["handled"] == sum(table.total().values())
    assert len(log) == 4


def test_every_bad_input_kind_is_refused_by_name(tmp_path: Path) -> None:
    """The whole list of bad inputs (in this process: about a second each)."""
    table = robustness.bad_inputs(tmp_path, tuple(robustness.BAD))
    assert table.total()["handled"] == len(robustness.BAD), table.markdown()
