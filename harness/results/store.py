"""The run directory: tidy rows, raw samples, run metadata; written as results arrive."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from harness.results.schema import COLUMNS, to_frame

ROWS_FILE = "rows.jsonl"        # appended as each job finishes: nothing measured is lost
SAMPLES_FILE = "samples.jsonl"
RESULTS_FILE = "results.csv"
RUN_FILE = "run.json"
REPORT_FILE = "report.md"


def new_run_id() -> str:
    """A sortable, unique-enough run id: UTC time plus a short random suffix."""
    import secrets

    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


class RunStore:
    """One run directory. Appends are thread-safe; `finish` writes the tidy CSV and run.json."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    @property
    def run_id(self) -> str:
        return self.dir.name

    def append(self, rows: list[dict], series: list[dict]) -> None:
        """Persist rows and raw samples immediately (JSON lines)."""
        with self._lock:
            with (self.dir / ROWS_FILE).open("a") as handle:
                for row in rows:
                    handle.write(json.dumps(row, default=_json_default) + "\n")
            with (self.dir / SAMPLES_FILE).open("a") as handle:
                for item in series:
                    handle.write(json.dumps(item, default=_json_default) + "\n")

    def rows(self) -> list[dict]:
        return _read_jsonl(self.dir / ROWS_FILE)

    def samples(self) -> list[dict]:
        return _read_jsonl(self.dir / SAMPLES_FILE)

    def frame(self) -> pd.DataFrame:
        frame = to_frame(self.rows())
        frame["run_id"] = self.run_id
        return frame

    def write_meta(self, meta: dict[str, Any]) -> None:
        _write_json(self.dir / RUN_FILE, meta)

    def meta(self) -> dict[str, Any]:
        path = self.dir / RUN_FILE
        return json.loads(path.read_text()) if path.is_file() else {}

    def finish(self) -> pd.DataFrame:
        """Write results.csv from all rows so far and return the frame."""
        frame = self.frame()
        frame.to_csv(self.dir / RESULTS_FILE, index=False)
        return frame

    def drop_rows(self, keep: "callable") -> None:
        """Rewrite the row log keeping only rows for which `keep(row)` is true (used by resume)."""
        with self._lock:
            rows = [row for row in self.rows() if keep(row)]
            path = self.dir / ROWS_FILE
            tmp = path.with_suffix(".tmp")
            tmp.write_text("".join(json.dumps(r, default=_json_default) + "\n" for r in rows))
            tmp.replace(path)


def load_frame(run_dir: Path) -> pd.DataFrame:
    """The tidy table of a stored run (results.csv, or the row log of an unfinished run)."""
    csv = run_dir / RESULTS_FILE
    if csv.is_file():
        frame = pd.read_csv(csv, dtype={"key": "string", "message": "string", "hint": "string"})
        return to_frame(frame.reindex(columns=COLUMNS).to_dict("records"))
    return RunStore(run_dir).frame()


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _write_json(path: Path, value: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value, indent=1, default=_json_default))
    tmp.replace(path)


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)
