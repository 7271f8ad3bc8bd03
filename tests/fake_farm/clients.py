"""Fake farm clients for PATH: `deadlinecommand` and `deadline` that record their argv and answer as the real ones.

Each fake is a small Python script (the test's interpreter) that appends one JSON line to a log: its
argv and, for every argument naming a file, that file's text at the moment it was called.
deadlinecommand answers `Result=Success` and `JobID=<id>` as Deadline 10 does; `deadline bundle
submit` prints "Submitted job bundle:" and a Deadline Cloud job id.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

_SCRIPT = '''#!{python}
import json, os, sys, itertools
log = {log!r}
files = {{a: open(a, encoding="utf-8").read() for a in sys.argv[1:] if os.path.isfile(a)}}
with open(log, "a", encoding="utf-8") as f:
    f.write(json.dumps({{"argv": sys.argv, "files": files}}) + "\\n")
count = sum(1 for _ in open(log, encoding="utf-8"))
{answer}
'''
ANSWERS = {
    "deadlinecommand": 'print("Submitting to Repository: /mnt/repo"); print("Result=Success"); '
                       'print(f"JobID=64f0c0de00000000000000{count:02d}")',
    "deadline": 'print("Submitted job bundle:"); print(sys.argv[-1]); print(f"Job ID: job-{count:032x}")',
}


def install(bin_dir: Path, name: str, log: Path) -> Path:
    """Write the fake `name` into bin_dir (created), logging to `log`; returns its path."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / name
    path.write_text(_SCRIPT.format(python=sys.executable, log=str(log), answer=ANSWERS[name]), encoding="utf-8")
    path.chmod(0o755)
    return path


def calls(log: Path) -> list[dict]:
    """Every call the fakes logged, in order."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
