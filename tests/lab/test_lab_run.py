"""`harness run` on a target leased from a real labgrid lab: a coordinator and an exporter on
loopback export a real sshd target (tests/sshd.py) as the NetworkService of place bench-1.

- one controller: the run holds the place while it measures and frees it afterwards;
- two controllers at once on the same place: one waits ("waiting for place bench-1, held by …"),
  then runs; both complete, and their measurements do not overlap (from the run directories'
  job and result files and the lease lines of harness.log);
- the place is free again after a dead target (its NetworkService points at a closed port) and
  after Ctrl-C (SIGINT to the controller).

The artifact cache is shared by the module, so the smoke models are built once.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
import yaml

from sshd import SSHServer, free_port
from testutil import ROOT, run_cli

pytestmark = pytest.mark.slow
SUITE = "suites/smoke.yaml"
LOG_TIME = "%Y-%m-%d %H:%M:%S,%f"


@pytest.fixture(scope="module")
def bench(lab, tmp_path_factory):
    """Place bench-1: a loopback sshd (python: this venv's); dead-1: a port nobody listens on."""
    root = tmp_path_factory.mktemp("bench")
    server = SSHServer(root / "sshd").start()
    try:
        service = {"address": server.host, "port": server.port, "username": server.user}
        lab.export("rack", {"board": {"NetworkService": service},
                            "deadboard": {"NetworkService": dict(service, port=free_port())}})
        lab.place("bench-1", ["rack/board/NetworkService"])
        lab.place("dead-1", ["rack/deadboard/NetworkService"])
        entry = server.inventory_entry(python=sys.executable)
        for field in ("host", "port", "user"):  # the place says where the board is
            del entry[field]
        inventory = root / "inventory.yaml"
        inventory.write_text(yaml.safe_dump({"targets": {
            "board": dict(entry, labgrid={"place": "bench-1", "coordinator": lab.address,
                                          "acquire_timeout": 900}),
            "dead": dict(entry, labgrid={"place": "dead-1", "coordinator": lab.address}),
        }}))
        yield {"lab": lab, "inventory": inventory, "server": server,
               "env": {"HARNESS_CACHE": str(tmp_path_factory.mktemp("cache"))}}
    finally:
        server.stop()


def _argv(bench: dict, out: Path, target: str = "board") -> list[str]:
    return [sys.executable, "-m", "harness.cli", "run", SUITE, "--targets", target,
            "--inventory", str(bench["inventory"]), "--out", str(out)]


def _env(bench: dict, user: str) -> dict:
    return dict(os.environ, **bench["env"], LG_USERNAME=user)  # the lab's name of the controller


def _run_dir(out: Path) -> Path:
    runs = sorted((out / "smoke").iterdir())
    assert len(runs) == 1, runs
    return runs[0]


def _log_time(line: str) -> float:
    return datetime.strptime(line[:23], LOG_TIME).timestamp()


def _lease(run_dir: Path, place: str = "bench-1") -> tuple[float, float]:
    """When the run acquired and released the place (harness.log)."""
    log = (run_dir / "harness.log").read_text()
    acquired = [line for line in log.splitlines() if f"acquired place {place} " in line]
    released = [line for line in log.splitlines() if f"released place {place} " in line]
    assert len(acquired) == 1 and len(released) == 1, log
    return _log_time(acquired[0]), _log_time(released[0])


def _measured(run_dir: Path, target: str = "board") -> tuple[float, float]:
    """From the first job document written to the last result fetched (file times)."""
    jobs = list((run_dir / "targets" / target / "jobs").glob("*.json"))
    results = list((run_dir / "targets" / target / "results").glob("*.json"))
    assert len(jobs) >= 2 and len(results) == len(jobs), (jobs, results)
    return min(p.stat().st_mtime for p in jobs), max(p.stat().st_mtime for p in results)


def _medians(run_dir: Path) -> pd.DataFrame:
    frame = pd.read_csv(run_dir / "results.csv")
    failed = frame[frame.status == "failed"]
    assert failed.empty, failed[["target", "measurement", "error_kind", "message"]]
    return frame[(frame.measurement == "latency") & (frame.metric == "median_ms")]


@pytest.fixture(scope="module")
def first_run(bench, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("alone")
    proc = subprocess.run(_argv(bench, out), cwd=ROOT, env=_env(bench, "ctl-solo"),
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return _run_dir(out)


def test_one_controller_holds_the_place_while_it_measures(bench, first_run):
    assert len(_medians(first_run)) == 4  # two variants x two thread counts
    acquired, released = _lease(first_run)
    start, end = _measured(first_run)
    assert acquired <= start <= end <= released
    assert bench["lab"].holder("bench-1") is None
    log = (first_run / "harness.log").read_text()
    server = bench["server"]
    assert f"(ssh {server.user}@127.0.0.1:{server.port})" in log  # the NetworkService's address


@pytest.fixture(scope="module")
def two_runs(bench, first_run, tmp_path_factory) -> dict:
    """Controllers ctl-a and ctl-b start `harness run` on bench-1 at the same moment."""
    outs = {user: tmp_path_factory.mktemp(user) for user in ("ctl-a", "ctl-b")}
    started = time.time()
    procs = {user: subprocess.Popen(_argv(bench, out), cwd=ROOT, env=_env(bench, user),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for user, out in outs.items()}
    done = {user: proc.communicate(timeout=1800) for user, proc in procs.items()}
    for user, proc in procs.items():
        assert proc.returncode == 0, done[user][0][-3000:] + done[user][1][-3000:]
    return {"started": started, "runs": {user: _run_dir(out) for user, out in outs.items()},
            "stderr": {user: err for user, (_, err) in done.items()},
            "seconds": time.time() - started}


def test_two_controllers_take_turns(bench, two_runs):
    runs, stderr = two_runs["runs"], two_runs["stderr"]
    leases = {user: _lease(run) for user, run in runs.items()}
    first, second = sorted(runs, key=lambda user: leases[user][0])
    # the second waited for the first, and said so (console and harness.log)
    waiting = re.compile(rf"waiting for place bench-1, held by \S+/{first}\b")
    assert waiting.search(stderr[second]) and waiting.search(
        (runs[second] / "harness.log").read_text())
    assert not re.search("waiting for place", stderr[first])
    # no measurement overlaps: each measured inside its lease, and the leases follow each other
    measured = {user: _measured(run) for user, run in runs.items()}
    for user in runs:
        assert leases[user][0] <= measured[user][0] <= measured[user][1] <= leases[user][1]
    assert leases[first][1] <= leases[second][0]
    assert measured[first][1] < measured[second][0]
    for run in runs.values():
        assert len(_medians(run)) == 4
    assert bench["lab"].holder("bench-1") is None
    waited = re.search(r"acquired place bench-1 on \S+ after ([\d.]+) s",
                       (runs[second] / "harness.log").read_text())
    print(f"\nfirst {first}: lease {leases[first][1] - leases[first][0]:.1f} s, measured "
          f"{measured[first][1] - measured[first][0]:.1f} s; second {second}: waited "
          f"{waited.group(1)} s for the place, lease {leases[second][1] - leases[second][0]:.1f} "
          f"s, measured {measured[second][1] - measured[second][0]:.1f} s; gap between the "
          f"measurements {measured[second][0] - measured[first][1]:.1f} s; both done in "
          f"{two_runs['seconds']:.1f} s")


def test_the_two_runs_in_postgres_read_as_in_sqlite(two_runs, pg_url, tmp_path):
    """Both controllers' runs appended to the shared PostgreSQL history and to an SQLite file:
    `harness history` prints the same."""
    sqlite = tmp_path / "history.sqlite"
    outputs = {}
    for where in (pg_url, str(sqlite)):
        for run in two_runs["runs"].values():
            proc = run_cli("history", "--append", str(run), "--history", where, "--format",
                           "csv", "--metric", "all")
            assert proc.returncode == 0, proc.stderr[-3000:]
        proc = run_cli("history", "--history", where, "--format", "md")
        assert proc.returncode == 0, proc.stderr[-3000:]
        outputs[where] = proc.stdout
    assert outputs[pg_url] == outputs[str(sqlite)]
    assert all(run.name in outputs[pg_url] for run in two_runs["runs"].values())


def test_place_released_after_a_dead_target(bench, first_run, tmp_path):
    proc = subprocess.run(_argv(bench, tmp_path, "dead"), cwd=ROOT, env=_env(bench, "ctl-dead"),
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 3, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dir = _run_dir(tmp_path)
    frame = pd.read_csv(run_dir / "results.csv")
    latency = frame[(frame.target == "dead") & (frame.measurement == "latency")]
    assert not latency.empty and set(latency.error_kind) == {"unreachable"}
    acquired, released = _lease(run_dir, "dead-1")
    assert acquired <= released
    assert bench["lab"].holder("dead-1") is None


def test_place_released_after_ctrl_c(bench, first_run, tmp_path):
    """SIGINT while the controller measures on the place: it stops, and the place is free."""
    proc = subprocess.Popen(_argv(bench, tmp_path), cwd=ROOT, env=_env(bench, "ctl-int"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 600
        while not list(tmp_path.glob("smoke/*/targets/board/jobs/*.json")):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.2)
        assert bench["lab"].holder("bench-1").endswith("/ctl-int")
        interrupted = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err[-3000:]
    assert bench["lab"].holder("bench-1") is None
    log = (_run_dir(tmp_path) / "harness.log").read_text()
    assert "released place bench-1" in log
    print(f"\nSIGINT to exit: {time.monotonic() - interrupted:.1f} s")
