"""Default locations, in one place: the CLI, the API and the stores all take them from here."""

from __future__ import annotations

import os
from pathlib import Path

INVENTORY = Path("inventory.yaml")
REPORTS_DIR = Path("reports")              # runs are stored in REPORTS_DIR/<suite>/<run-id>/
BASELINES_DIR = Path("baselines")          # <suite>.json, created by `harness baseline set`
HISTORY_FILE = "history.sqlite"            # in the reports directory
CACHE_ENV = "HARNESS_CACHE"
ARTIFACT_STORE_ENV = "HARNESS_ARTIFACT_STORE"   # overrides where measured artifacts are kept
ARTIFACTS_DIR = "artifacts"                    # in the reports directory: <sha256>.<ext>
HISTORY_ENV = "HARNESS_HISTORY"            # a history for every command: a file or postgresql://…


def history_path(reports: Path = REPORTS_DIR) -> Path:
    """The history database of a reports directory."""
    return Path(reports) / HISTORY_FILE


HISTORY_PATH = history_path()


def artifact_store_dir(reports: Path = REPORTS_DIR) -> Path:
    """The artifact store of a reports directory: $HARNESS_ARTIFACT_STORE, else
    `<reports>/artifacts` (every measured artifact by sha256, for the A/B re-measurement)."""
    override = os.environ.get(ARTIFACT_STORE_ENV)
    return Path(override).expanduser() if override else Path(reports) / ARTIFACTS_DIR


ARTIFACT_STORE = artifact_store_dir()


def history_location(reports: Path = REPORTS_DIR) -> Path | str:
    """The history commands use: $HARNESS_HISTORY (an SQLite file, or a postgresql:// URL that
    several controllers share), else the reports directory's history.sqlite."""
    return os.environ.get(HISTORY_ENV) or history_path(reports)


def cache_dir() -> Path:
    """Where artifacts are cached: $HARNESS_CACHE or ~/.cache/harness."""
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "harness")).expanduser()
