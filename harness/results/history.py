"""Run history: every run appended to one SQLite file (standard library), queried for trends.

Default location `reports/history.sqlite` (harness.defaults). Tables:
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

from harness import defaults
from harness.errors import UserError
from harness.results.rundir import RunDir, RunMeta, suite_name
from harness.results.schema import COLUMNS, KEY_COLUMNS, to_frame

SCHEMA_VERSION = 1
RUN_ID_TIME = re.compile(r"^(\d{8})-(\d{6})")
SAMPLE_KEYS = ["target", "model", "variant", "runtime", "threads", "measurement", "metric",
               "artifact_sha256", "unit"]
ENV_KEYS = ["runtime", "runtime_version", "cpu_model", "governor", "os", "harness_version"]


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

    def __init__(self, path: Path | str = defaults.HISTORY_PATH) -> None:
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

    def append(self, run: RunDir | Path | str | None = None, *,
               frame: pd.DataFrame | None = None, samples: list[dict[str, Any]] | None = None,
               meta: RunMeta | None = None) -> str:
        """Append a run (a run directory, or its frame + samples + meta); returns its run id.

        A run already in the history is replaced.
        """
        from harness.compare import fingerprint

        path = None
        if run is not None:
            run = run if isinstance(run, RunDir) else RunDir.open(run)
            path = str(run.path.resolve())
            frame, samples, meta = run.frame(), run.samples(), run.meta()
        if frame is None:
            raise ValueError("History.append needs a run directory or a frame")
        samples = samples or []
        run_id = (meta.run_id if meta is not None and meta.run_id else
                  str(frame["run_id"].dropna().iloc[0]) if frame["run_id"].notna().any() else None)
        if not run_id:
            raise UserError("cannot append a run without a run id",
                            hint="run.json needs `run_id`, or rows a run_id column")
        meta = meta or RunMeta(run_id=run_id)
        run_json = meta.to_json()
        suite = suite_name(meta, frame, required=False)
        frame = frame.reindex(columns=COLUMNS).copy()
        frame["run_id"] = run_id
        if suite:
            frame["suite"] = frame["suite"].astype(object).where(frame["suite"].notna(), suite)
        harness_version = meta.harness_version
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
            for target, env in sorted(meta.environment.items()):
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

    def run_frame(self, run_id: str) -> tuple[pd.DataFrame, list[dict[str, Any]], RunMeta]:
        """A stored run back as (frame, samples, meta): compare against any past run."""
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
        return frame, samples, RunMeta.from_json(json.loads(found[0]),
                                                 f"{self.path} (run {run_id})", run_id=run_id)

    def environments(self, run_id: str) -> pd.DataFrame:
        """The fingerprint per target of one run."""
        with closing(self._connect()) as db:
            return pd.read_sql_query(
                f"SELECT target, {', '.join(ENV_KEYS)} FROM environments WHERE run_id = ?",
                db, params=[run_id])
