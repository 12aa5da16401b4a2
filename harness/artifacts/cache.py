"""Content-hash cache of built artifacts: same inputs, same key, nothing rebuilt."""

from __future__ import annotations

import hashlib
import io
import json
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from harness import fileio

PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def sha256_file(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tree_sha256(path: Path) -> str:
    """Content hash of a file, or of every file under a directory (a SavedModel)."""
    if path.is_file():
        return sha256_file(path)
    return key_of([(str(p.relative_to(path)), sha256_file(p)) for p in sorted(path.rglob("*"))
                   if p.is_file()])


def key_of(*parts: Any) -> str:
    """A stable short hash of JSON-serialisable parts."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


@lru_cache(maxsize=None)
def code_version(*relative_dirs: str) -> str:
    """Hash of the source of the given package sub-directories: code changes invalidate the cache."""
    digest = hashlib.sha256()
    for rel in relative_dirs:
        base = PACKAGE_ROOT / rel
        files = sorted(base.rglob("*.py")) if base.is_dir() else [base]
        for path in files:
            digest.update(str(path.relative_to(PACKAGE_ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@lru_cache(maxsize=None)
def package_version(*names: str) -> str | None:
    """Installed version of the first distribution found among `names` (no import)."""
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def write_atomic(path: Path, data: bytes) -> None:
    """Write bytes so a reader never sees a half-written file (a unique temp name per writer:
    concurrent runs filling the same cache entry never collide)."""
    fileio.write_atomic(path, data)


def write_json(path: Path, value: Any) -> None:
    """Write JSON atomically."""
    write_atomic(path, json.dumps(value, indent=1, sort_keys=True, default=str).encode())


def write_npy(path: Path, array: np.ndarray) -> None:
    """Write a .npy file atomically."""
    buffer = io.BytesIO()
    np.save(buffer, array)
    write_atomic(path, buffer.getvalue())
