"""A real labgrid lab on loopback for the tests: `labgrid-coordinator`, `labgrid-exporter`s and
places made with `labgrid-client`, all from the installed labgrid (the `lab` extra).

The coordinator keeps its places in its working directory (a temp dir); every process is
stopped by `stop()`. The tests look at a place through `labgrid-client show`, the tool a lab's
users have, never through the harness code under test.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import yaml

from sshd import free_port

TOOLS = ("labgrid-coordinator", "labgrid-exporter", "labgrid-client")


def tool(name: str) -> str:
    """A labgrid program: next to this interpreter (the venv), else on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.is_file() else (shutil.which(name) or name)


def unavailable() -> str | None:
    """None when labgrid is installed with its programs, else why not."""
    import importlib.util

    if importlib.util.find_spec("labgrid") is None:
        return "labgrid is not installed (pip install -e '.[lab]'; scripts/setup.sh does)"
    missing = [t for t in TOOLS if not Path(tool(t)).is_file()]
    return f"labgrid programs not found: {', '.join(missing)}" if missing else None


class Lab:
    """`Lab(root).start()`; `.export(name, groups)`; `.place(name, matches)`; `.holder(place)`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen] = []
        self.env = dict(os.environ, LG_COORDINATOR=self.address, LG_USERNAME="lab-admin")
        self.env.pop("LG_PLACE", None)

    def _spawn(self, argv: list[str], log: Path) -> subprocess.Popen:
        with open(log, "ab") as out:
            proc = subprocess.Popen(argv, cwd=self.root, env=self.env, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        return proc

    def start(self, timeout: float = 60) -> "Lab":
        log = self.root / "coordinator.log"
        proc = self._spawn([tool("labgrid-coordinator"), "--listen", self.address], log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"labgrid-coordinator exited: {log.read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"labgrid-coordinator not listening in {timeout} s")

    def export(self, name: str, groups: dict, timeout: float = 90) -> subprocess.Popen:
        """Start an exporter called `name` exporting `groups` ({group: {ResourceClass: args}})
        and wait until the coordinator lists its resources."""
        config = self.root / f"exporter-{name}.yaml"
        config.write_text(yaml.safe_dump(groups))
        log = self.root / f"exporter-{name}.log"
        proc = self._spawn([tool("labgrid-exporter"), "--coordinator", self.address, "--name",
                            name, "--hostname", "127.0.0.1", str(config)], log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"labgrid-exporter {name} exited: {log.read_text()[-2000:]}")
            listed = self.client("resources").stdout
            if all(f"{name}/{group}/" in listed for group in groups):
                return proc
            time.sleep(0.5)
        raise RuntimeError(f"exporter {name} not listed in {timeout} s: {log.read_text()[-2000:]}")

    def client(self, *args: str, check: bool = False, env: dict | None = None
               ) -> subprocess.CompletedProcess:
        """`labgrid-client -x <coordinator> ARGS`."""
        proc = subprocess.run([tool("labgrid-client"), "-x", self.address, *args],
                              capture_output=True, text=True, timeout=120,
                              env=dict(self.env, **(env or {})))
        if check and proc.returncode != 0:
            raise RuntimeError(f"labgrid-client {' '.join(args)}: {proc.stdout}{proc.stderr}")
        return proc

    def place(self, name: str, matches: list[str]) -> None:
        """Create a place matching `matches` (exporter/group/class)."""
        self.client("-p", name, "create", check=True)
        if matches:
            self.client("-p", name, "add-match", *matches, check=True)

    def holder(self, place: str) -> str | None:
        """Who holds a place (labgrid's "host/user"), None when it is free."""
        shown = self.client("-p", place, "show", check=True).stdout
        found = re.search(r"^\s*acquired: (.+)$", shown, re.M)
        assert found, shown
        return None if found.group(1).strip() == "None" else found.group(1).strip()

    def acquire_as(self, place: str, user: str) -> None:
        """Acquire a place as another lab user (LG_USERNAME), the way a person would."""
        self.client("-p", place, "acquire", check=True, env={"LG_USERNAME": user})

    def release_as(self, place: str, user: str) -> None:
        self.client("-p", place, "release", check=True, env={"LG_USERNAME": user})

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)
        self.procs.clear()
