"""The shared history on a real PostgreSQL server: two controllers append at once, and `harness
history`, a compare reference and change points read the same from PostgreSQL as from SQLite.
Also the migration of an SQLite history written by the first harness.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from _cmp_fixtures import failure, latency, real_samples_us, size_row, write_run
from harness.errors import InfraError, UserError
from harness.results import history_db
from harness.results.history import History, open_history
from testutil import ROOT

X = real_samples_us(0)


def _run_dirs(root: Path, prefix: str, count: int, day: int = 1) -> list[Path]:
    """`count` runs a night apart (a step at the fourth), with a failure row in each."""
    dirs = []
    for i in range(count):
        rows, series = latency(X, 1.0 if i < 3 else 1.3)
        rows += [size_row(1000 + i), failure(variant="f16")]
        run_id = f"202611{day + i:02d}-0200{i:02d}-{prefix}"
        dirs.append(write_run(root, run_id, rows, series))
    return dirs


CONTROLLER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import harness.compare, psycopg, sqlalchemy.dialects.postgresql.psycopg  # loaded now, so
    # that both start writing at once
    from harness.results.history import open_history
    url, go, runs = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]
    while not go.exists():
        time.sleep(0.001)
    history = open_history(url)        # a fresh database: both create it at the same moment
    for run in runs:
        history.append(run)
""")


def _append_at_once(where: str, tmp_path: Path) -> None:
    """Two processes append their own runs, and one run both of them, at the same time: every
    run is there once, with all its rows, and the shared one is not doubled."""
    a = _run_dirs(tmp_path / "a", "aaaa", 6)
    b = _run_dirs(tmp_path / "b", "bbbb", 6, day=10)
    both = _run_dirs(tmp_path / "both", "cccc", 1, day=20)[0]
    go = tmp_path / "go"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = [subprocess.Popen([sys.executable, "-c", CONTROLLER, where, str(go),
                               *map(str, mine[:3] + [both] + mine[3:])], env=env,
                              stderr=subprocess.PIPE, text=True) for mine in (a, b)]
    time.sleep(3)  # both interpreters are up and polling
    go.touch()
    for proc in procs:
        assert proc.wait(timeout=300) == 0, proc.stderr.read()[-3000:]
    history = open_history(where)
    runs = history.runs()
    assert sorted(runs["run_id"]) == sorted(p.name for p in a + b + [both])
    trend = history.trend(last=100)
    assert len(trend) == 13 * len(pd.read_csv(both / "results.csv"))
    assert trend.groupby("run_id").size().nunique() == 1  # no run doubled or cut short
    with history._connect() as connection:
        assert history_db.stored_version(connection) == history_db.SCHEMA_VERSION


def test_two_controllers_append_at_once(pg_url, tmp_path):
    _append_at_once(pg_url, tmp_path)


def test_two_controllers_append_at_once_to_sqlite(tmp_path):
    _append_at_once(str(tmp_path / "shared.sqlite"), tmp_path)


def _both(pg_url: str, tmp_path: Path) -> tuple[History, History, list[Path]]:
    dirs = _run_dirs(tmp_path / "reports", "dddd", 8)
    pg, sqlite = open_history(pg_url), open_history(tmp_path / "history.sqlite")
    for run in dirs:
        pg.append(run)
        sqlite.append(run)
    return pg, sqlite, dirs


def test_history_command_reads_the_same_from_postgres(pg_url, tmp_path, monkeypatch):
    from harness.cli import app

    _, sqlite, _ = _both(pg_url, tmp_path)
    cli = CliRunner()

    def history(where: str, *args: str, env: dict | None = None) -> str:
        result = cli.invoke(app, ["history", *args] + (["--history", where] if where else []),
                            env=env)
        assert result.exit_code == 0, result.output
        return result.output

    for args in (["--format", "md"], ["--format", "csv", "--metric", "all"],
                 ["--metric", "size", "--last", "5"], ["--target", "host", "--metric", "all"]):
        on_pg, on_sqlite = history(pg_url, *args), history(str(sqlite.path), *args)
        if "--format" not in args:  # the terminal table's title names the store
            assert f"History ({pg_url}" in on_pg
            on_pg, on_sqlite = (text.split("\n", 1)[1] for text in (on_pg, on_sqlite))
        assert on_pg == on_sqlite and "202611" in on_pg
    # HARNESS_HISTORY points every command at the shared store
    assert history("", "--format", "md", env={"HARNESS_HISTORY": pg_url}) == \
        history(str(sqlite.path), "--format", "md")


def test_compare_reference_and_change_points_from_postgres(pg_url, tmp_path):
    from harness.changepoints import change_points
    from harness.regress import load_reference

    pg, sqlite, dirs = _both(pg_url, tmp_path)
    run_id = dirs[2].name
    on_pg = load_reference(run_id, "smoke", history_path=pg_url)
    on_sqlite = load_reference(run_id, "smoke", history_path=sqlite.path)
    pd.testing.assert_frame_equal(on_pg.frame, on_sqlite.frame)
    assert on_pg.samples == on_sqlite.samples and on_pg.environment == on_sqlite.environment
    assert pg.noise("smoke") == sqlite.noise("smoke")

    def points(history: History) -> list:
        trend = history.trend(metric="median_ms", last=100)
        return change_points(list(zip(trend["run_id"], trend["started"], trend["value"])))

    found = points(pg)
    assert found == points(sqlite)
    assert [p.run_id for p in found] == [dirs[3].name]  # the step at the fourth night


def test_store_errors_name_it_without_the_password(postgres):
    from sshd import free_port

    nowhere = History(f"postgresql://harness:s3cret@127.0.0.1:{free_port()}/db")
    with pytest.raises(InfraError, match=r"history database postgresql://harness:\*\*\*@") as e:
        nowhere.exists()
    assert "s3cret" not in str(e.value) and e.value.kind == "unreachable"
    with pytest.raises(UserError, match="unknown database"):
        History("mysql://db.example/history")


V1_DDL = """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
    INSERT INTO meta VALUES ('schema_version', '1');
    CREATE TABLE runs (run_id TEXT PRIMARY KEY, suite TEXT, started TEXT, appended TEXT,
        harness_version TEXT, path TEXT, run_json TEXT);
    CREATE TABLE rows ({cols});
    CREATE TABLE samples (run_id TEXT, {sample_cols}, n INTEGER, samples TEXT);
    CREATE TABLE environments (run_id TEXT, target TEXT, {env_cols}, environment TEXT);
"""


def test_an_sqlite_history_of_the_first_layout_is_migrated(tmp_path):
    """A file the first harness wrote (schema 1, untyped columns): read as before, given `seq`
    from its insertion order, and marked version 2; a newer file is refused."""
    from harness.results.schema import COLUMNS

    path = tmp_path / "history.sqlite"
    quote = lambda names: ", ".join(f'"{n}"' for n in names)  # noqa: E731
    with sqlite3.connect(path) as con:
        con.executescript(V1_DDL.format(cols=quote(COLUMNS),
                                        sample_cols=quote(history_db.SAMPLE_KEYS),
                                        env_cols=quote(history_db.ENV_KEYS)))
        con.execute("INSERT INTO runs VALUES (?, 'smoke', '2026-11-01T02:00:00+00:00', "
                    "'2026-11-01T03:00:00+00:00', '0.1.0', NULL, ?)",
                    ("20261101-020000-old1", json.dumps({"run_id": "20261101-020000-old1"})))
        for metric, value in (("median_ms", 2.5), ("p90_ms", 3.0)):
            row = dict.fromkeys(COLUMNS, None) | dict(
                run_id="20261101-020000-old1", suite="smoke", target="host", model="cnn",
                variant="w8", threads=1, measurement="latency", metric=metric, value=value,
                status="ok", valid=1)
            con.execute(f"INSERT INTO rows VALUES ({', '.join('?' for _ in COLUMNS)})",
                        [row[c] for c in COLUMNS])
    history = History(path)
    trend = history.trend(metric="latency")
    assert list(trend["metric"]) == ["median_ms", "p90_ms"]
    assert trend["value"].tolist() == [2.5, 3.0]
    with sqlite3.connect(path) as con:
        version = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        assert version == ("2",)
        assert [s for (s,) in con.execute("SELECT seq FROM rows ORDER BY seq")] == [1, 2]
    rows, series = latency(X)
    history.append(write_run(tmp_path / "r", "20261102-020000-new1", rows, series))
    assert list(history.runs()["run_id"]) == ["20261101-020000-old1", "20261102-020000-new1"]
    with sqlite3.connect(path) as con:
        con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(UserError, match="schema version 99; this harness knows 2"):
        History(path).runs()
