"""Helpers for tests (import as `from testutil import ...`; tests/ is on sys.path)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "data" / "tools"  # real tool output, see its README


def run_cli(*args: str, cwd: Path = ROOT, env: dict | None = None,
            timeout: float = 900) -> subprocess.CompletedProcess:
    """Run the real `harness` console entry point in a fresh process."""
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
