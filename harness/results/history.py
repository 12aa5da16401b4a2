"""Run history: every run appended to one store, queried for trends.

The store is an SQLite file (default `reports/history.sqlite`, harness.defaults) or a PostgreSQL
database that several controllers share (`postgresql://user@host/db`); `open_history` picks the
backend from the location. Tables, migrations and engines: `harness.results.history_db`.
Appending a run that is already there replaces it (re-running `history append` is harmless);
appends from several controllers at once are transactions of their own.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Float, Integer, Select, select

from harness import defaults
from harness.errors import UserError
from harness.results import history_db as db
from harness.results.history_db import ENV_KEYS, SAMPLE_KEYS
from harness.results.rundir import RunDir, RunMeta, suite_name
from harness.results.schema import COLUMNS, KEY_COLUMNS, to_frame

SCHEMA_VERSION = db.SCHEMA_VERSION
RUN_ID_TIME = re.compile(r"^(\d{8})-(\d{6})")
__all__ = ["ENV_KEYS", "SAMPLE_KEYS", "History", "open_history", "run_started"]


def open_history(location: Path | str | None = None) -> "History":
    """The history at `location`: an SQLite file path or a postgresql:// URL; None: the
    default ($HARNESS_HISTORY, else reports/history.sqlite)."""
    return History(defaults.history_location() if location is None else location)


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


def _bound(value: Any, column: Any) -> Any:
    """A value as its column stores it (PostgreSQL checks types; SQLite stores the same)."""
    value = _sql_value(value)
    if value is None:
        return None
    if isinstance(column.type, Float):
        try:
            return float(value)
        except (TypeError, ValueError):
            return None
    if isinstance(column.type, Integer):
        if isinstance(value, str):
            value = {"true": 1, "false": 0}.get(value.strip().lower(), value)
        try:
            number = float(value)
        except (TypeError, ValueError):
            return None
        return int(number) if number.is_integer() else None
    return value if isinstance(value, str) else str(value)


def _frame(connection: Any, query: Select, columns: list[str] | None = None) -> pd.DataFrame:
    result = connection.execute(query)
    return pd.DataFrame(result.fetchall(), columns=columns or list(result.keys()))


# --------------------------------------------------------------------------- the store

class History:
    """The history store. `History(path_or_url).append(run_dir)`, `.trend(...)`."""

    def __init__(self, path: Path | str = defaults.HISTORY_PATH) -> None:
        self.url = db.database_url(path)
        sqlite = self.url.get_backend_name() == "sqlite"
        self.path: Path | None = Path(str(self.url.database)) if sqlite else None  # the file
        self.location = db.label(self.url)  # for messages: no password
        self._engine: Any = None
        self._ready = False

    def __repr__(self) -> str:
        return f"History({self.location!r})"

    def _connect(self, write: bool = False) -> Any:
        """A transaction on a store at the current schema (made or migrated on first use)."""
        if self._engine is None:
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._engine = db.make_engine(self.url)
        if not self._ready:
            with db.reporting(self.url):
                with self._engine.begin() as connection:
                    current = db.stored_version(connection) == db.SCHEMA_VERSION
                if not current:
                    with self._engine.execution_options(**{db.WRITE: True}).begin() as connection:
                        db.migrate(connection, self.location)
            self._ready = True
        return self._engine.execution_options(**{db.WRITE: write}).begin()

    def exists(self) -> bool:
        """Whether the store holds a history (a file there; a database with its tables)."""
        if self.path is not None:
            return self.path.is_file()
        if self._engine is None:
            self._engine = db.make_engine(self.url)
        with db.reporting(self.url), self._engine.connect() as connection:
            return db.stored_version(connection) > 0

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
        records = [dict(zip(COLUMNS, rec), seq=i)
                   for i, rec in enumerate(frame.itertuples(index=False, name=None))]
        series = [dict({k: s.get(k) for k in SAMPLE_KEYS}, run_id=run_id,
                       n=len(s.get("samples") or []), samples=json.dumps(s.get("samples") or []),
                       seq=i) for i, s in enumerate(samples)]
        envs = []
        for target, env in sorted(meta.environment.items()):
            fp = fingerprint(dict(env or {}, harness_version=harness_version))
            envs.append(dict({k: fp.get(k) for k in ENV_KEYS}, run_id=run_id, target=target,
                             environment=json.dumps(env, default=str)))
        run_row = dict(run_id=run_id, suite=suite, started=run_started(run_id, run_json),
                       appended=_now(), harness_version=harness_version, path=path,
                       run_json=json.dumps(run_json, default=str))
        with db.reporting(self.url), self._connect(write=True) as connection:
            db.run_lock(connection, run_id)
            for table in db.RUN_TABLES:
                connection.execute(table.delete().where(table.c.run_id == run_id))
            for table, values in ((db.runs, [run_row]), (db.rows, records), (db.samples, series),
                                  (db.environments, envs)):
                if values:
                    connection.execute(table.insert(), [
                        {c.name: _bound(v.get(c.name), c) for c in table.columns}
                        for v in values])
        return run_id

    # ----------------------------------------------------------------------- queries

    RUN_COLUMNS = ["run_id", "suite", "started", "appended", "harness_version", "path"]

    def runs(self, suite: str | None = None, last: int | None = None) -> pd.DataFrame:
        """Runs in time order (oldest first): run_id, suite, started, appended, harness_version,
        path."""
        if not self.exists():
            return pd.DataFrame(columns=self.RUN_COLUMNS)
        runs = db.runs
        query = select(*[runs.c[c] for c in self.RUN_COLUMNS])
        if suite:
            query = query.where(runs.c.suite == suite)
        query = query.order_by(runs.c.started.desc(), runs.c.run_id.desc())
        if last:
            query = query.limit(int(last))
        with db.reporting(self.url), self._connect() as connection:
            frame = _frame(connection, query, self.RUN_COLUMNS)
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
        r, run = db.rows, db.runs
        query = (select(r.c.run_id, run.c.started, r.c.suite, *[r.c[c] for c in columns[3:]])
                 .join(run, run.c.run_id == r.c.run_id)
                 .where(r.c.run_id.in_(list(runs["run_id"]))))
        if target:
            query = query.where(r.c.target == target)
        if model:
            query = query.where(r.c.model == model)
        if metric:
            query = query.where((r.c.metric == metric) | (r.c.measurement == metric))
        query = query.order_by(run.c.started, r.c.run_id, r.c.seq)
        with db.reporting(self.url), self._connect() as connection:
            frame = _frame(connection, query, columns)
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
        found = None
        if self.exists():
            with db.reporting(self.url), self._connect() as connection:
                found = connection.execute(select(db.runs.c.run_json)
                                           .where(db.runs.c.run_id == run_id)).scalar()
                rows = _frame(connection, select(*[db.rows.c[c] for c in COLUMNS])
                              .where(db.rows.c.run_id == run_id).order_by(db.rows.c.seq), COLUMNS)
                series = connection.execute(
                    select(*[db.samples.c[k] for k in SAMPLE_KEYS], db.samples.c.samples)
                    .where(db.samples.c.run_id == run_id).order_by(db.samples.c.seq)).fetchall()
        if not found:
            raise UserError(f"run {run_id!r} is not in the history {self.location}",
                            hint="`harness history` lists the runs it holds")
        frame = to_frame(rows.to_dict("records"))
        samples = [dict(zip(SAMPLE_KEYS, s[:-1]), samples=json.loads(s[-1])) for s in series]
        return frame, samples, RunMeta.from_json(json.loads(found),
                                                 f"{self.location} (run {run_id})", run_id=run_id)

    def environments(self, run_id: str) -> pd.DataFrame:
        """The fingerprint per target of one run."""
        columns = ["target", *ENV_KEYS]
        if not self.exists():
            return pd.DataFrame(columns=columns)
        env = db.environments
        with db.reporting(self.url), self._connect() as connection:
            return _frame(connection, select(*[env.c[c] for c in columns])
                          .where(env.c.run_id == run_id), columns)
