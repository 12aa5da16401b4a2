"""A real PostgreSQL server for the tests: `initdb` and `pg_ctl` (Debian's `postgresql` package)
in a temp dir of its own, on 127.0.0.1 and a free port, with trust authentication.

PostgreSQL refuses to run as root, and CI runs as root: then the server runs as `nobody`
(`runuser`), in a directory that user owns. Every database a test makes lives in that directory,
which is removed when the server stops.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

from sshd import free_port

RUN_AS = "nobody"  # when we are root
SUPERUSER = "harness"


def pg_bindir() -> Path | None:
    """The directory of initdb and pg_ctl: Debian's /usr/lib/postgresql/<version>/bin (newest),
    else wherever initdb is on PATH."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def unavailable() -> str | None:
    """None when a server can be started here, else why not."""
    if pg_bindir() is None:
        return ("PostgreSQL is not installed (apt-get install postgresql; "
                "see .ci/setup_ssh_tests.sh)")
    if os.geteuid() == 0 and not shutil.which("runuser"):
        return "running as root without runuser to start PostgreSQL as another user"
    return None


class PostgresServer:
    """`PostgresServer().start()`; `.new_database()` -> a postgresql:// URL; `.stop()`."""

    def __init__(self) -> None:
        self.bindir = pg_bindir()
        assert self.bindir is not None, unavailable()
        self.root = Path(tempfile.mkdtemp(prefix="harness-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(self.root, RUN_AS)
        self.running = False

    def _run(self, *argv: str) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", RUN_AS, "--"] if os.geteuid() == 0 else []
        proc = subprocess.run([*prefix, *argv], capture_output=True, text=True, timeout=120,
                              cwd=self.root)
        if proc.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): "
                               f"{proc.stdout[-1000:]}{proc.stderr[-2000:]}{log}")
        return proc

    def start(self) -> "PostgresServer":
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", SUPERUSER,
                  "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync")
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 "
                   f"-c unix_socket_directories={self.root} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=50")
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                  "-w", "-t", "60", "-o", options, "start")
        self.running = True
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database; its URL."""
        import psycopg

        name = f"h_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self.running:
            try:
                self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                          "-w", "stop")
            finally:
                self.running = False
        shutil.rmtree(self.root, ignore_errors=True)
