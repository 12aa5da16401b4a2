"""Files written whole or not at all: a unique temp name in the same directory, then a rename.

Every writer gets its own temp name (`tempfile`), so two runs (or two threads) writing the same
cache entry or run file never write into each other's temp file; the last rename wins, and a reader
sees one whole file, never half of one. A crash leaves at most a `.*.tmp` file beside it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write `data` to `path` through a unique temp file in the same directory and os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode() if isinstance(data, str) else data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; these are ordinary files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def temp_dir_beside(path: Path) -> Path:
    """A new, unique, empty directory next to `path` (to build a directory, then `replace_dir`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))


def replace_dir(built: Path, path: Path) -> None:
    """Move a directory built with `temp_dir_beside` into place. When another writer got there
    first (content-addressed: the same contents), theirs is kept and ours is removed."""
    try:
        os.replace(built, path)
    except OSError:
        if not Path(path).is_dir():
            shutil.rmtree(built, ignore_errors=True)
            raise
        shutil.rmtree(built, ignore_errors=True)
