"""The fault matrix's bench: a one-model suite run by the real CLI on a local or loopback-SSH
target, and what the tests look at on the "device" (its work dir, its processes) and in the run
directory. Fixtures are in conftest.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
import yaml

TESTS = Path(__file__).resolve().parent.parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from harness.transport import LocalTransport, connect  # noqa: E402
from sshd import SSHServer  # noqa: E402
from testutil import ROOT, run_cli  # noqa: E402

SUITE = "faults"
HANG_S = 240  # a guard against a hung run, not a performance bound


def unavailable(reason: str) -> None:
    """Skip, except in CI, where every fault case must run (CI runs as root with sshd)."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run the fault matrix (as root, .ci/setup_ssh_tests.sh)")
    pytest.skip(reason)


@dataclass
class Bench:
    """One fault case: its suite, inventory, output folder and artifact cache."""

    root: Path
    model: Path
    cache: Path
    targets: dict = field(default_factory=dict)

    @property
    def out(self) -> Path:
        return self.root / "out"

    def suite(self, min_seconds: float, models: tuple[str, ...] = ("tiny",)) -> Path:
        """(Re)write the suite: `models` all name the tiny model; one thread, one round."""
        path = self.root / "suite.yaml"
        path.write_text(yaml.safe_dump({
            "name": SUITE,
            "workload": {"kind": "generic", "data": "data.npz", "metric": "mae",
                         "models": [{"name": name, "path": "tiny.tflite"} for name in models]},
            "measurements": {"latency": {"threads": [1], "warmup_runs": 1, "warmup_seconds": 0,
                                         "runs": 5, "min_seconds": min_seconds, "rounds": 1}},
        }))
        return path

    def inventory(self, **targets: dict) -> Path:
        """(Re)write the inventory with these target entries (merged over earlier ones)."""
        self.targets.update(targets)
        path = self.root / "inventory.yaml"
        path.write_text(yaml.safe_dump({"targets": self.targets}))
        return path

    def inventory_variant(self, name: str, target: str, **changes) -> Path:
        """A copy of the inventory, `name`, with one target's entry changed."""
        entries = {key: dict(value) for key, value in self.targets.items()}
        entries[target].update(changes)
        path = self.root / name
        path.write_text(yaml.safe_dump({"targets": entries}))
        return path

    def local_target(self, name: str = "host", **entry) -> Path:
        """A local target whose work dir is `<bench>/<name>-work`; returns the work dir."""
        workdir = self.root / f"{name}-work"
        self.inventory(**{name: {"kind": "cpu", "workdir": str(workdir), **entry}})
        return workdir

    def ssh_target(self, server: SSHServer, name: str = "lo", **entry) -> Path:
        """A loopback SSH target whose runner is this venv's python; returns the work dir."""
        entry = server.inventory_entry(python=sys.executable, **entry)
        self.inventory(**{name: entry})
        return Path(entry["workdir"])

    @property
    def env(self) -> dict:
        return {"HARNESS_CACHE": str(self.cache)}

    def argv(self, *args: str) -> list[str]:
        return ["run", *args, "--inventory", str(self.root / "inventory.yaml"),
                "--out", str(self.out)]

    def run(self, target: str, *extra: str) -> subprocess.CompletedProcess:
        """`harness run suite.yaml --targets target` to the end."""
        return run_cli(*self.argv(str(self.root / "suite.yaml"), "--targets", target, *extra),
                       env=self.env, timeout=HANG_S)

    def resume(self, run_dir: Path) -> subprocess.CompletedProcess:
        return run_cli("run", "--resume", str(run_dir), env=self.env, timeout=HANG_S)

    def start(self, target: str, *extra: str, inventory: Path | None = None) -> Background:
        """`harness run` in the background (to signal or race it); output kept in files."""
        argv = self.argv(str(self.root / "suite.yaml"), "--targets", target, *extra)
        if inventory is not None:
            argv[argv.index("--inventory") + 1] = str(inventory)
        tag = time.monotonic_ns()
        out, err = self.root / f"run-{tag}.out", self.root / f"run-{tag}.err"
        with open(out, "w") as stdout, open(err, "w") as stderr:
            proc = subprocess.Popen([sys.executable, "-m", "harness.cli", *argv], cwd=ROOT,
                                    env=dict(os.environ, **self.env), stdout=stdout,
                                    stderr=stderr, text=True)
        return Background(proc, out, err)

    def runs(self) -> list[Path]:
        folder = self.out / SUITE
        return sorted(folder.iterdir()) if folder.is_dir() else []

    def only_run(self) -> Path:
        runs = self.runs()
        assert len(runs) == 1, runs
        return runs[0]


@dataclass
class Background:
    """A `harness run` started with `Bench.start`."""

    proc: subprocess.Popen
    out: Path
    err: Path

    @property
    def pid(self) -> int:
        return self.proc.pid


def finish(run: Background) -> tuple[int, str, str]:
    """Wait for a background run: (exit code, stdout, stderr)."""
    try:
        run.proc.wait(timeout=HANG_S)
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait()
    return run.proc.returncode, run.out.read_text(), run.err.read_text()


# --------------------------------------------------------------------------- the run directory


def rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "rows.jsonl").read_text().splitlines()
            if line.strip()]


def latency(run_dir: Path, model: str = "tiny") -> list[dict]:
    """The latency rows of one model's job."""
    return [r for r in rows(run_dir) if r["model"] == model and r["measurement"] == "latency"]


def medians(run_dir: Path, model: str = "tiny") -> list[float]:
    return [r["value"] for r in latency(run_dir, model)
            if r["status"] == "ok" and r["metric"] == "median_ms"]


def result_document(run_dir: Path, target: str, job_id: str) -> dict | None:
    """The raw result the controller fetched for a job in this run, if any."""
    path = run_dir / "targets" / target / "results" / f"{job_id}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def job_document(run_dir: Path, target: str, job_id: str) -> dict:
    return json.loads((run_dir / "targets" / target / "jobs" / f"{job_id}.json").read_text())


def assert_complete(run_dir: Path, models: tuple[str, ...] = ("tiny",)) -> None:
    """Every model measured, no failure left, the tidy table and report written."""
    for model in models:
        assert medians(run_dir, model), (model, latency(run_dir, model))
    failed = [r for r in rows(run_dir) if r["status"] == "failed"]
    assert not failed, failed
    assert (run_dir / "results.csv").is_file() and (run_dir / "report.md").is_file()


# --------------------------------------------------------------------------- the device side


def processes_in(workdir: Path) -> dict[int, str]:
    """Processes whose current directory is the work dir (what the harness runs on the
    device: wrappers, watchdogs, runners, the lock holder), pid -> command line."""
    here = os.path.realpath(workdir)
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(entry / "cwd") != here:
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            found[int(entry.name)] = cmdline.strip()
    return found


def runners(workdir: Path, job_id: str = "") -> list[int]:
    """Runner processes (python .../runner.py jobs/<job_id>...) working in `workdir`: the leaders
    of their process groups (a runner's forked child, e.g. for `uname -p`, is not another one)."""
    found = []
    for pid, cmd in processes_in(workdir).items():
        if not (Path(cmd.split(" ", 1)[0]).name.startswith("python") and "runner.py" in cmd
                and f"jobs/{job_id}" in cmd):
            continue
        try:
            pgrp = int((Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[2])
        except (OSError, IndexError, ValueError):
            continue
        if pgrp == pid:
            found.append(pid)
    return found


def pgrep_runner(workdir: Path) -> str:
    """What `pgrep -af` finds of the device's runner code (its path is inside the work dir)."""
    res = subprocess.run(["pgrep", "-af", f"{os.path.realpath(workdir)}/runner/"],
                         capture_output=True, text=True)
    return res.stdout.strip()


def transport_for(where: str, tmp_path: Path, request) -> tuple:
    """A local transport, or an SSH one to a loopback sshd; (transport, work dir)."""
    if where == "ssh":
        server = request.getfixturevalue("sshd_server")
        transport = connect("lo", server.target())
        return transport, transport.workdir
    return LocalTransport("host", tmp_path / "work"), str(tmp_path / "work")


def sleepers(workdir) -> list[str]:
    return [cmd for cmd in processes_in(workdir).values() if cmd.startswith("sleep ")]


def wait_for(predicate: Callable[[], object], what: str, timeout: float = HANG_S) -> object:
    """Poll until `predicate()` is truthy (returns it); fail naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def wait_gone(workdir: Path) -> None:
    """Wait until nothing the harness started runs in the work dir any more."""
    wait_for(lambda: not processes_in(workdir), f"no process left in {workdir}", timeout=30)
