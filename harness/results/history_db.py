"""The history database itself: where it is, its tables, their migrations, one engine per store.

A history is an SQLite file (the zero-setup default, `reports/history.sqlite`) or a PostgreSQL
database shared by several controllers (`postgresql://user@host/db`, the `lab` extra's psycopg
driver). Both hold the same tables, made by SQLAlchemy Core from one definition:

  meta          key/value; `schema_version` is the version of the tables (the migration record)
  runs          one row per run: run_id, suite, started (UTC ISO), appended, harness_version,
                path, run_json
  rows          the tidy rows of every run (all schema columns) and `seq`, their order in the run
  samples       raw sample series (JSON arrays), one row per series, and `seq`
  environments  the environment per run and target, with the fingerprint columns pulled out

`migrate` brings a store to SCHEMA_VERSION under a lock (PostgreSQL: an advisory lock; SQLite: a
writing transaction is BEGIN IMMEDIATE), so controllers that open a new store at the same moment
create it once. A store newer than this harness is refused.
"""

from __future__ import annotations

import hashlib
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from sqlalchemy import (Column, Float, Index, Integer, MetaData, Table, Text, create_engine, event,
                        inspect, select, text)
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError
from sqlalchemy.pool import NullPool

from harness.errors import InfraError, UserError
from harness.results.schema import COLUMNS

SCHEMA_VERSION = 2
URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
POSTGRES_SCHEMES = ("postgresql", "postgres")
SAMPLE_KEYS = ["target", "model", "variant", "runtime", "threads", "measurement", "metric",
               "artifact_sha256", "unit"]
ENV_KEYS = ["runtime", "runtime_version", "cpu_model", "governor", "os", "harness_version"]
NUMERIC = {"value": Float, "threads": Integer, "n": Integer, "delegated_nodes": Integer,
           "valid": Integer}  # valid: 1/0, as SQLite always stored the booleans
WRITE = "harness_write"  # execution option: this transaction writes (SQLite: BEGIN IMMEDIATE)
MIGRATION_LOCK = 0x6861726E657373  # "harness": the advisory lock key of PostgreSQL migrations
DRIVER_HINT = "install the lab extra: pip install 'harness[lab]' (psycopg)"

metadata = MetaData()
meta = Table("meta", metadata, Column("key", Text, primary_key=True), Column("value", Text))
runs = Table("runs", metadata, Column("run_id", Text, primary_key=True), Column("suite", Text),
             Column("started", Text), Column("appended", Text), Column("harness_version", Text),
             Column("path", Text), Column("run_json", Text))
rows = Table("rows", metadata, *[Column(c, NUMERIC.get(c, Text)) for c in COLUMNS],
             Column("seq", Integer),
             Index("rows_run", "run_id"),
             Index("rows_metric", "suite", "target", "model", "metric"))
samples = Table("samples", metadata, Column("run_id", Text),
                *[Column(c, NUMERIC.get(c, Text)) for c in SAMPLE_KEYS], Column("n", Integer),
                Column("samples", Text), Column("seq", Integer), Index("samples_run", "run_id"))
environments = Table("environments", metadata, Column("run_id", Text), Column("target", Text),
                     *[Column(c, Text) for c in ENV_KEYS], Column("environment", Text),
                     Index("env_run", "run_id"))
RUN_TABLES = (runs, rows, samples, environments)


# --------------------------------------------------------------------------- where

def is_url(location: Path | str) -> bool:
    """A database URL (postgresql://…, sqlite:///…) rather than a file path."""
    return isinstance(location, str) and bool(URL_RE.match(location))


def database_url(location: Path | str) -> URL:
    """The SQLAlchemy URL of a history location: a path is an SQLite file; postgresql:// URLs
    use the psycopg (3) driver."""
    if isinstance(location, Path) and str(location).startswith(
            tuple(f"{s}:" for s in POSTGRES_SCHEMES)):
        raise ValueError(f"{location}: a database URL was turned into a path; pass it as a str")
    if not is_url(location):
        return URL.create("sqlite", database=str(Path(location).expanduser().resolve()))
    try:
        url = make_url(str(location))
    except ArgumentError as exc:
        raise UserError(f"history {location!r} is not a database URL: {exc}") from exc
    scheme = url.drivername.split("+")[0]
    if scheme in POSTGRES_SCHEMES:
        return url.set(drivername="postgresql+psycopg")
    if scheme == "sqlite":
        return url
    raise UserError(f"history {url.render_as_string(hide_password=True)}: unknown database",
                    hint="use an SQLite file path or postgresql://user@host[:port]/db")


def label(url: URL) -> str:
    """How a store is named in messages: the file, or the URL without its password."""
    if url.get_backend_name() == "sqlite":
        return str(url.database)
    return url.set(drivername=url.get_backend_name()).render_as_string(hide_password=True)


def make_engine(url: URL) -> Engine:
    """An engine without a pool (each operation connects: controllers come and go)."""
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url, poolclass=NullPool, connect_args={"timeout": 60})

        @event.listens_for(engine, "connect")
        def _no_implicit_begin(dbapi_connection: Any, record: Any) -> None:
            dbapi_connection.isolation_level = None  # BEGIN is ours, below

        @event.listens_for(engine, "begin")
        def _begin(connection: Connection) -> None:  # a writer waits for the one before it
            write = connection.get_execution_options().get(WRITE, False)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine
    try:
        return create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 15})
    except (ImportError, NoSuchModuleError) as exc:
        raise UserError(f"history {label(url)} needs the PostgreSQL driver: {exc}",
                        hint=DRIVER_HINT) from exc


@contextmanager
def reporting(url: URL) -> Iterator[None]:
    """Database failures as InfraError naming the store (unreachable, refused, ...)."""
    try:
        yield
    except DBAPIError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        reach = isinstance(exc, OperationalError) and url.get_backend_name() != "sqlite"
        raise InfraError(f"history database {label(url)}: {reason}",
                         kind="unreachable" if reach else "infra", phase="history",
                         hint="is the database server running and the URL right?" if reach
                         else None) from exc


# --------------------------------------------------------------------------- migrations

def _create_tables(connection: Connection) -> None:
    """The tables, at their current shape (a later migration checks before it changes one: a
    store made by this step already has what it adds)."""
    metadata.create_all(connection, tables=[meta, *RUN_TABLES], checkfirst=True)


def _add_seq(connection: Connection) -> None:
    """Rows and samples remember their order in the run (`seq`): a history reads a run back
    in the order it was recorded, on any backend."""
    for table in (rows, samples):
        have = {c["name"] for c in inspect(connection).get_columns(table.name)}
        if "seq" not in have:
            connection.exec_driver_sql(f'ALTER TABLE "{table.name}" ADD COLUMN seq INTEGER')
            if connection.dialect.name == "sqlite":  # earlier runs: their insertion order
                connection.exec_driver_sql(f'UPDATE "{table.name}" SET seq = rowid')


MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _create_tables, 2: _add_seq}
assert sorted(MIGRATIONS) == list(range(1, SCHEMA_VERSION + 1))


def stored_version(connection: Connection) -> int:
    """The schema version a store records (0: no tables yet)."""
    if not inspect(connection).has_table("meta"):
        return 0
    value = connection.execute(select(meta.c.value).where(meta.c.key == "schema_version")
                               ).scalar()
    return int(value) if value else 0


def migrate(connection: Connection, where: str) -> int:
    """Bring the store to SCHEMA_VERSION inside the caller's (writing) transaction; returns the
    version it had. Serialised between controllers (PostgreSQL advisory lock; SQLite BEGIN
    IMMEDIATE)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    found = stored_version(connection)
    if found > SCHEMA_VERSION:
        raise UserError(f"history {where} has schema version {found}; this harness knows "
                        f"{SCHEMA_VERSION}", hint="upgrade harness on this controller")
    for version in range(found + 1, SCHEMA_VERSION + 1):
        MIGRATIONS[version](connection)
    if found < SCHEMA_VERSION:
        metadata.create_all(connection, tables=[meta], checkfirst=True)
        connection.execute(meta.delete().where(meta.c.key == "schema_version"))
        connection.execute(meta.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
    return found


def run_lock(connection: Connection, run_id: str) -> None:
    """Serialise appends of one run id (PostgreSQL; SQLite transactions are serial anyway)."""
    if connection.dialect.name == "postgresql":
        key = int.from_bytes(hashlib.sha256(run_id.encode()).digest()[:8], "big", signed=True)
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
