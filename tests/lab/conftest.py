"""Fixtures for the shared lab: a real labgrid coordinator on loopback, a real PostgreSQL server.

Both run in CI (scripts/setup.sh installs the `lab` extra, .ci/setup_ssh_tests.sh the Debian
`postgresql` package). They are skipped only where labgrid or PostgreSQL is not installed, and
never when the CI variable is set: there a missing piece is a failure.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
for p in (HERE.parent, HERE):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import labgrid_lab  # noqa: E402
import pgserver  # noqa: E402


def require(why_not: str | None) -> None:
    """Skip for a missing package, unless in CI: there it fails."""
    if why_not is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{why_not}; CI must run this test")
    pytest.skip(why_not)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A running labgrid coordinator on 127.0.0.1 (exporters and places: `Lab.export`,
    `Lab.place`)."""
    require(labgrid_lab.unavailable())
    running = labgrid_lab.Lab(tmp_path_factory.mktemp("labgrid")).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def postgres():
    """A running PostgreSQL server (as `nobody` when we are root)."""
    require(pgserver.unavailable())
    try:
        import psycopg  # noqa: F401
    except ImportError:
        require("psycopg is not installed (pip install -e '.[lab]'; scripts/setup.sh does)")
    server = pgserver.PostgresServer()
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def pg_url(postgres) -> str:
    """A fresh, empty PostgreSQL database."""
    return postgres.new_database()
