"""Atomic file writes: a kill never leaves half a file under the final name."""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path beside `path` (same folder, hidden, this process's id) to write the file to.

    When the block ends well, it is renamed over `path` (one atomic rename: a reader on a farm node sees
    the old file or the new one, never half of one); when it raises, the temporary is removed. The
    folder is made first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
