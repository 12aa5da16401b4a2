"""Run history: every run appended to one SQLite file (standard library), queried for trends.

Default location `reports/history.sqlite`. Tables:
  runs          one row per run: run_id, suite, started (UTC ISO), appended, harness_version, path
  rows          the tidy rows of every run (all schema columns)
  samples       raw sample series (JSON arrays), one row per series
  environments  the environment per run and target, with the fingerprint columns pulled out
Appending a run that is already there replaces it (re-running `history append` is harmless).
"""

from __future__ import annotations

import datetime as _dt
import json
import re
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pandas as pd

from harness.errors import UserError
from harness.results.schema import COLUMNS, KEY_COLUMNS, to_frame

DEFAULT_PATH = Path("reports") / "history.sqlite"
SCHEMA_VERSION = 1
RUN_ID_TIME = re.compile(r"^(\d{8})-(\d{6})")
SAMPLE_KEYS = ["target", "model", "variant", "runtime", "threads", "measurement", "metric",
               "artifact_sha256", "unit"]
ENV_KEYS = ["runtime", "runtime_version", "cpu_model", "governor", "os", "harness_version"]


# --------------------------------------------------------------------------- reading a run dir

def load_run(run_dir: Path | str) -> tuple[pd.DataFrame, list[dict[str, Any]], dict[str, Any]]:
    """A stored run: (tidy frame, raw sample series, run.json), per docs/CONTRACTS.md.

    Reads results.csv (or the row log of an unfinished run), samples.jsonl and run.json. A missing
    directory or a directory without results is a UserError naming it.
    """
    from harness.results.store import RUN_FILE, SAMPLES_FILE, load_frame

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: no such run directory",
                        hint="pass a directory like reports/<suite>/<run-id>")
    if not any((run_dir / name).is_file() for name in ("results.csv", "rows.jsonl")):
        raise UserError(f"{run_dir}: not a run directory (no results.csv or rows.jsonl)",
                        hint="pass a directory like reports/<suite>/<run-id>")
    frame = load_frame(run_dir)
    samples_path = run_dir / SAMPLES_FILE
    samples = ([json.loads(line) for line in samples_path.read_text().splitlines() if line.strip()]
               if samples_path.is_file() else [])
    run_path = run_dir / RUN_FILE
    run_json = json.loads(run_path.read_text()) if run_path.is_file() else {}
    run_json.setdefault("run_id", run_dir.name)
    if frame["run_id"].isna().all():
        frame["run_id"] = run_json["run_id"]
    return frame, samples, run_json


def run_started(run_id: str, run_json: dict[str, Any] | None = None) -> str:
    """When a run started (UTC ISO): run.json `started`, else the time in the run id, else now."""
    started = (run_json or {}).get("started")
    if started:
        return str(started)
    match = RUN_ID_TIME.match(run_id or "")
    if match:
        stamp = _dt.datetime.strptime("".join(match.groups()), "%Y%m%d%H%M%S")
        return stamp.replace(tzinfo=_dt.timezone.utc).isoformat()
    return _now()


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def _suite(frame: pd.DataFrame, run_json: dict[str, Any]) -> str | None:
    suite = run_json.get("suite")
    if isinstance(suite, dict):
        suite = suite.get("name")
    if not suite and "suite" in frame.columns and frame["suite"].notna().any():
        suite = str(frame["suite"].dropna().iloc[0])
    return suite


def _sql_value(value: Any) -> Any:
    if value is None:
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        return json.dumps(value)
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return value


# --------------------------------------------------------------------------- the store

class History:
    """The history database. `History(path).append(run_dir)`, `.trend(...)`."""

    def __init__(self, path: Path | str = DEFAULT_PATH) -> None:
        self.path = Path(path)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=30)
        cols = ", ".join(f'"{c}"' for c in COLUMNS)
        sample_cols = ", ".join(f'"{c}"' for c in SAMPLE_KEYS)
        env_cols = ", ".join(f'"{c}"' for c in ENV_KEYS)
        db.executescript(f"""
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
            INSERT OR IGNORE INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}');
            CREATE TABLE IF NOT EXISTS runs (run_id TEXT PRIMARY KEY, suite TEXT, started TEXT,
                appended TEXT, harness_version TEXT, path TEXT, run_json TEXT);
            CREATE TABLE IF NOT EXISTS rows ({cols});
            CREATE INDEX IF NOT EXISTS rows_run ON rows (run_id);
            CREATE INDEX IF NOT EXISTS rows_metric ON rows (suite, target, model, metric);
            CREATE TABLE IF NOT EXISTS samples (run_id TEXT, {sample_cols}, n INTEGER,
                samples TEXT);
            CREATE INDEX IF NOT EXISTS samples_run ON samples (run_id);
            CREATE TABLE IF NOT EXISTS environments (run_id TEXT, target TEXT, {env_cols},
                environment TEXT);
            CREATE INDEX IF NOT EXISTS env_run ON environments (run_id);
        """)
        return db

    def append(self, run: Path | str | None = None, *, frame: pd.DataFrame | None = None,
               samples: list[dict[str, Any]] | None = None,
               run_json: dict[str, Any] | None = None) -> str:
        """Append a run (a run directory, or its frame + samples + run.json); returns its run id.

        A run already in the history is replaced.
        """
        from harness.compare import fingerprint

        path = None
        if run is not None:
            path = str(Path(run).resolve())
            frame, samples, run_json = load_run(run)
        if frame is None:
            raise ValueError("History.append needs a run directory or a frame")
        run_json = dict(run_json or {})
        samples = samples or []
        run_id = str(run_json.get("run_id") or (frame["run_id"].dropna().iloc[0]
                                                if frame["run_id"].notna().any() else None))
        if not run_id or run_id == "None":
            raise UserError("cannot append a run without a run id",
                            hint="run.json needs `run_id`, or rows a run_id column")
        suite = _suite(frame, run_json)
        frame = frame.reindex(columns=COLUMNS).copy()
        frame["run_id"] = run_id
        if suite:
            frame["suite"] = frame["suite"].astype(object).where(frame["suite"].notna(), suite)
        harness_version = run_json.get("harness_version")
        with closing(self._connect()) as db, db:
            for table in ("runs", "rows", "samples", "environments"):
                db.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
            db.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (run_id, suite, run_started(run_id, run_json), _now(), harness_version,
                        path, json.dumps(run_json, default=str)))
            marks = ", ".join("?" for _ in COLUMNS)
            db.executemany(f"INSERT INTO rows VALUES ({marks})",
                           [tuple(_sql_value(v) for v in rec)
                            for rec in frame.itertuples(index=False, name=None)])
            db.executemany(
                f"INSERT INTO samples VALUES ({', '.join('?' for _ in SAMPLE_KEYS + [0, 0, 0])})",
                [(run_id, *[_sql_value(s.get(k)) for k in SAMPLE_KEYS], len(s.get("samples") or []),
                  json.dumps(s.get("samples") or [])) for s in samples])
            for target, env in sorted((run_json.get("environment") or {}).items()):
                fp = fingerprint(dict(env or {}, harness_version=harness_version))
                marks = ", ".join("?" for _ in ENV_KEYS + [0, 0, 0])
                db.execute(f"INSERT INTO environments VALUES ({marks})",
                           (run_id, target, *[_sql_value(fp.get(k)) for k in ENV_KEYS],
                            json.dumps(env, default=str)))
        return run_id

    # ----------------------------------------------------------------------- queries

    def runs(self, suite: str | None = None, last: int | None = None) -> pd.DataFrame:
        """Runs in time order (oldest first): run_id, suite, started, appended, harness_version,
        path."""
        if not self.path.is_file():
            return pd.DataFrame(columns=["run_id", "suite", "started", "appended",
                                         "harness_version", "path"])
        query = "SELECT run_id, suite, started, appended, harness_version, path FROM runs"
        args: list[Any] = []
        if suite:
            query += " WHERE suite = ?"
            args.append(suite)
        query += " ORDER BY started DESC, run_id DESC"
        if last:
            query += " LIMIT ?"
            args.append(int(last))
        with closing(self._connect()) as db:
            frame = pd.read_sql_query(query, db, params=args)
        return frame.iloc[::-1].reset_index(drop=True)

    def trend(self, suite: str | None = None, target: str | None = None, model: str | None = None,
              metric: str | None = None, last: int = 10) -> pd.DataFrame:
        """The last `last` runs (of the suite, or overall) as long rows, oldest run first.

        Columns: run_id, started, suite, the key columns (target, model, variant, runtime, threads,
        measurement, metric, key), value, unit, n, valid, status, error_kind, artifact_sha256.
        Filters are exact names; `metric` also accepts a measurement name (`latency`).
        """
        columns = (["run_id", "started", "suite"] + KEY_COLUMNS
                   + ["value", "unit", "n", "valid", "status", "error_kind", "artifact_sha256"])
        runs = self.runs(suite, last)
        if runs.empty:
            return pd.DataFrame(columns=columns)
        query = ("SELECT r.run_id, runs.started, r.suite, "
                 + ", ".join(f'r."{c}"' for c in KEY_COLUMNS + columns[len(KEY_COLUMNS) + 3:])
                 + " FROM rows r JOIN runs ON runs.run_id = r.run_id"
                 + f" WHERE r.run_id IN ({', '.join('?' for _ in runs['run_id'])})")
        args: list[Any] = list(runs["run_id"])
        if target:
            query += " AND r.target = ?"
            args.append(target)
        if model:
            query += " AND r.model = ?"
            args.append(model)
        if metric:
            query += " AND (r.metric = ? OR r.measurement = ?)"
            args += [metric, metric]
        query += " ORDER BY runs.started, r.run_id"
        with closing(self._connect()) as db:
            frame = pd.read_sql_query(query, db, params=args)
        frame.columns = columns
        frame["value"] = pd.to_numeric(frame["value"], errors="coerce")
        frame["threads"] = pd.to_numeric(frame["threads"], errors="coerce").astype("Int64")
        return frame

    def noise(self, suite: str | None = None, last: int = 10,
              exclude_run: str | None = None) -> dict[tuple, float]:
        """Run-to-run noise per row key over the last runs (see harness.compare.series_noise)."""
        from harness.compare import series_noise

        trend = self.trend(suite=suite, last=last + (1 if exclude_run else 0))
        if exclude_run:
            trend = trend[trend["run_id"] != exclude_run]
        return series_noise(trend)

    def run_frame(self, run_id: str) -> tuple[pd.DataFrame, list[dict[str, Any]], dict[str, Any]]:
        """A stored run back as (frame, samples, run.json): compare against any past run."""
        with closing(self._connect()) as db:
            found = db.execute("SELECT run_json FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if not found:
                raise UserError(f"run {run_id!r} is not in the history {self.path}",
                                hint="`harness history` lists the runs it holds")
            rows = pd.read_sql_query("SELECT * FROM rows WHERE run_id = ?", db, params=[run_id])
            series = db.execute(
                f"SELECT {', '.join(SAMPLE_KEYS)}, samples FROM samples WHERE run_id = ?",
                (run_id,)).fetchall()
        frame = to_frame(rows.reindex(columns=COLUMNS).to_dict("records"))
        samples = [dict(zip(SAMPLE_KEYS, s[:-1]), samples=json.loads(s[-1])) for s in series]
        return frame, samples, json.loads(found[0])

    def environments(self, run_id: str) -> pd.DataFrame:
        """The fingerprint per target of one run."""
        with closing(self._connect()) as db:
            return pd.read_sql_query(
                f"SELECT target, {', '.join(ENV_KEYS)} FROM environments WHERE run_id = ?",
                db, params=[run_id])
