"""`harness targets --setup` against real sshd targets: a fresh device set up in one command, then
`harness run`; a second setup that does nothing; the offline path with `--wheelhouse`; each error
with its message and exit code; the emulated aarch64 device where the first runtime installs but
crashes, so setup falls back to the next one.

Loopback devices share this machine: their `python3` is the system's Python, which has no TFLite
runtime. A device "without network" is an sshd whose sessions get `PIP_INDEX_URL` pointing at a
closed port.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from harness.config.inventory import Inventory
from harness.probe import check_targets
from harness.transport.setup_record import SETUP_FILE
from sshd import SSHServer
from testutil import run_cli

pytestmark = pytest.mark.slow
BLOCKED_INDEX = "http://127.0.0.1:9/simple/"  # nothing listens on port 9: connection refused
JOBS = {("convert_only", 1), ("convert_only", 2), ("w8_a8", 1), ("w8_a8", 2)}


def _write_inventory(path: Path, targets: dict) -> Path:
    path.write_text(yaml.safe_dump({"targets": targets}))
    return path


def _setup(inventory: Path, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    """`harness targets --setup`; its output is printed (shown with `pytest -s`)."""
    proc = run_cli("targets", "--setup", "--inventory", str(inventory), *args, timeout=timeout)
    print(proc.stderr, proc.stdout, sep="\n")
    return proc


def _record(server: SSHServer) -> dict:
    return json.loads((server.root / "work" / SETUP_FILE).read_text())


def _server(root: Path, *, env: dict[str, str] | None = None) -> SSHServer:
    """A loopback sshd whose sessions get `env` (SetEnv)."""
    server = SSHServer(root)
    if env:
        settings = " ".join(f"{key}={value}" for key, value in env.items())
        server.config.write_text(server.config.read_text() + f"SetEnv {settings}\n")
    return server.start()


@pytest.fixture
def offline_server(tmp_path):
    server = _server(tmp_path / "offline", env={"PIP_INDEX_URL": BLOCKED_INDEX})
    yield server
    server.stop()


def test_fresh_targets_set_up_then_run_the_smoke_suite(sshd_factory, tmp_path, harness_cache):
    """bar1 runs the device's `python3`, bar2 a bare venv named in `python:`: neither has a TFLite
    runtime. One `--setup` makes both work, the run uses their venvs, a second setup does
    nothing."""
    bar1, bar2 = sshd_factory(), sshd_factory()
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    inventory = _write_inventory(tmp_path / "inventory.yaml", {
        "bar1": bar1.inventory_entry(python=None),
        "bar2": bar2.inventory_entry(python=str(bare / "bin" / "python"))})
    inv = Inventory.model_validate(yaml.safe_load(inventory.read_text()))
    before = {r["target"]: r for r in check_targets(["bar1", "bar2"], inv)}
    assert before["bar2"]["runtime"] is None and before["bar2"]["setup"]["state"] == "missing"
    assert "harness targets --setup --targets bar2" in before["bar2"]["hints"][0]

    proc = _setup(inventory, "--targets", "bar1,bar2")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for server in (bar1, bar2):
        record = _record(server)
        assert record["python"] == str(server.root / "work" / "venv" / "bin" / "python")
        assert record["runtime"]["name"] == "ai_edge_litert", record
        assert record["source"] == "index"
        assert any(line.startswith("ai-edge-litert==") for line in record["installed"])
    assert _record(bar2)["base_python"] == str(bare / "bin" / "python")
    assert proc.stdout.count("set up") >= 2

    stamps = {s: (s.root / "work" / SETUP_FILE).stat().st_mtime_ns for s in (bar1, bar2)}
    again = _setup(inventory, "--targets", "bar1,bar2")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "bar1: already set up (ai_edge_litert" in again.stderr
    assert "bar2: already set up (ai_edge_litert" in again.stderr
    assert again.stderr.count("nothing to do") == 2
    assert "installing" not in again.stderr and "checking" not in again.stderr
    assert stamps == {s: (s.root / "work" / SETUP_FILE).stat().st_mtime_ns for s in (bar1, bar2)}

    after = {r["target"]: r for r in check_targets(["bar1", "bar2"], inv)}
    for name, server in (("bar1", bar1), ("bar2", bar2)):
        venv_python = server.root / "work" / "venv" / "bin" / "python"
        assert Path(after[name]["python_executable"]).parent == venv_python.parent
        assert after[name]["runtime"] == "ai_edge_litert"
        assert after[name]["setup"]["state"] == "done"

    out = tmp_path / "out"
    run = run_cli("run", "suites/smoke.yaml", "--targets", "bar1,bar2", "--inventory",
                  str(inventory), "--out", str(out), env={"HARNESS_CACHE": str(harness_cache)})
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    run_dir = next((out / "smoke").iterdir())
    frame = pd.read_csv(run_dir / "results.csv")
    assert (frame.status != "failed").all(), frame[frame.status == "failed"][["target", "message"]]
    medians = frame[(frame.measurement == "latency") & (frame.metric == "median_ms")]
    for name in ("bar1", "bar2"):
        rows = medians[medians.target == name]
        assert set(zip(rows.variant, rows.threads)) == JOBS, name
        assert (rows.value > 0).all() and set(rows.runtime) == {"ai_edge_litert"}


def test_an_offline_device_is_set_up_from_a_wheelhouse(offline_server, tmp_path):
    inventory = _write_inventory(tmp_path / "inventory.yaml",
                                 {"off": offline_server.inventory_entry(python=None)})
    proc = _setup(inventory)
    assert proc.returncode == 3, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "off: the device cannot reach the package index ([Errno 111] Connection refused) " \
           "and no --wheelhouse was given" in proc.stderr
    assert "harness targets --download --setup --wheelhouse DIR --targets off" in proc.stderr
    assert not (offline_server.root / "work" / SETUP_FILE).exists()

    wheelhouse = tmp_path / "wheels"
    proc = run_cli("targets", "--download", "--setup", "--wheelhouse", str(wheelhouse),
                   "--inventory", str(inventory), timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    names = {p.name.split("-")[0] for p in wheelhouse.glob("*.whl")}
    assert {"pip", "ai_edge_litert", "tflite_runtime", "numpy"} <= names
    record = _record(offline_server)
    assert record["source"] == "wheelhouse" and record["runtime"]["name"] == "ai_edge_litert"
    assert (offline_server.root / "work" / "wheelhouse").is_dir()

    again = _setup(inventory, "--wheelhouse", str(wheelhouse))
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "off: already set up" in again.stderr and "nothing to do" in again.stderr


def test_no_wheel_in_the_wheelhouse_names_what_was_tried(offline_server, tmp_path):
    """A wheelhouse with pip only: neither runtime has a wheel for the device."""
    wheelhouse = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                    "-d", str(wheelhouse), "pip"], check=True, capture_output=True)
    inventory = _write_inventory(tmp_path / "inventory.yaml",
                                 {"off": offline_server.inventory_entry(python=None)})
    proc = _setup(inventory, "--wheelhouse", str(wheelhouse))
    assert proc.returncode == 3, proc.stdout[-3000:] + proc.stderr[-3000:]
    device = f"CPython {sys.version_info.major}.{sys.version_info.minor} on {platform.machine()}"
    assert f"off: no TFLite runtime wheel for {device}" in proc.stderr
    assert f"in the wheelhouse {wheelhouse}: tried ai-edge-litert: no wheel in the wheelhouse; " \
           "tflite-runtime with numpy<2: no wheel in the wheelhouse" in proc.stderr
    assert f"harness targets --download --wheelhouse {wheelhouse} --targets off" in proc.stderr
    assert not (offline_server.root / "work" / SETUP_FILE).exists()


def _python_without_wheels() -> str | None:
    """A CPython neither ai-edge-litert nor tflite-runtime publishes wheels for (3.6)."""
    for path in sorted(Path("/root/.pyenv/versions").glob("3.6.*/bin/python3.6")) + \
            sorted(Path("/usr/local/bin").glob("python3.6")):
        if os.access(path, os.X_OK):
            return str(path)
    return None


def test_no_wheel_for_this_python_on_the_index(sshd, tmp_path):
    python = _python_without_wheels()
    if python is None:
        pytest.skip("no CPython 3.6 on this machine (the Python without runtime wheels)")
    inventory = _write_inventory(tmp_path / "inventory.yaml",
                                 {"old": sshd.inventory_entry(python=python)})
    proc = _setup(inventory)
    assert proc.returncode == 3, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"old: no TFLite runtime wheel for CPython 3.6 on {platform.machine()}" in proc.stderr
    assert "on the package index: tried ai-edge-litert: no wheel on the package index; " \
           "tflite-runtime with numpy<2: no wheel on the package index" in proc.stderr
    assert "CPython 3.9 and later" in proc.stderr and "set `python:` of the target" in proc.stderr


def test_no_python_on_the_device(sshd, tmp_path):
    inventory = _write_inventory(tmp_path / "inventory.yaml",
                                 {"nopy": sshd.inventory_entry(python="/nonexistent/python3")})
    proc = _setup(inventory)
    assert proc.returncode == 3, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "nopy: no Python at '/nonexistent/python3' on the device" in proc.stderr
    assert "sudo apt-get install python3 python3-venv" in proc.stderr


# --------------------------------------------------------------------------- disk (root: tmpfs)

@pytest.fixture
def tmpfs(tmp_path):
    """`tmpfs(size)` -> a fresh tmpfs of that size; mount it before starting an sshd (a root sshd
    runs in its own mount namespace)."""
    if os.geteuid() != 0:
        pytest.skip("needs root (mounts a small tmpfs); CI runs as root")
    mounted: list[Path] = []

    def make(size: str) -> Path:
        point = tmp_path / f"tmpfs{len(mounted)}"
        point.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0777", "tmpfs",
                        str(point)], check=True)
        mounted.append(point)
        return point

    yield make
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], check=False)


@pytest.mark.root
def test_not_enough_disk_in_the_work_dir(tmpfs, tmp_path):
    small = tmpfs("64m")
    server = _server(tmp_path / "sshd")
    try:
        inventory = _write_inventory(tmp_path / "inventory.yaml", {
            "full": server.inventory_entry(python=None, workdir=str(small / "work"))})
        proc = _setup(inventory)
    finally:
        server.stop()
    assert proc.returncode == 3, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert re.search(rf"full: only \d+ MB free in {small}/work on the device; setting up needs "
                     r"about 4\d\d MB", proc.stderr), proc.stderr
    assert "free space on the device" in proc.stderr and "`workdir:` of target full" in proc.stderr


@pytest.mark.root
def test_the_disk_fills_up_while_installing(tmpfs, tmp_path):
    """pip unpacks in $TMPDIR: a device whose /tmp is nearly full fails mid-install."""
    small = tmpfs("12m")
    server = _server(tmp_path / "sshd", env={"TMPDIR": str(small), "PIP_NO_CACHE_DIR": "1"})
    try:
        inventory = _write_inventory(tmp_path / "inventory.yaml",
                                     {"tight": server.inventory_entry(python=None)})
        proc = _setup(inventory)
    finally:
        server.stop()
    assert proc.returncode == 3, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "tight: the device ran out of disk space" in proc.stderr
    assert "[Errno 28] No space left on device" in proc.stderr
    assert "pip also unpacks in $TMPDIR" in proc.stderr


# --------------------------------------------------------------------------- emulated aarch64

@pytest.mark.root
def test_aarch64_without_python3_venv(aarch64_sshd, tmp_path):
    """Debian's python3.11 without python3-venv (no ensurepip) and no wheelhouse."""
    _, server = aarch64_sshd
    inventory = _write_inventory(tmp_path / "inventory.yaml",
                                 {"rpi4emu": server.inventory_entry(python=None)})
    proc = _setup(inventory)
    assert proc.returncode == 3, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "rpi4emu: python3 (CPython 3.11 on aarch64, glibc 2.36) cannot make a virtual " \
           "environment: ensurepip is not available" in proc.stderr
    assert "install the Debian package python3-venv on the device (`sudo apt-get install " \
           "python3.11-venv`); or give --wheelhouse DIR" in proc.stderr


@pytest.mark.root
def test_aarch64_setup_verifies_and_falls_back(aarch64_sshd, tmp_path):
    """On the emulated Raspberry Pi (no python3-venv, no network), with a wheelhouse: pip is
    bootstrapped from it, ai-edge-litert installs but crashes under qemu, and tflite-runtime 2.14
    with numpy<2 is what gets recorded."""
    _, server = aarch64_sshd
    inventory = _write_inventory(tmp_path / "inventory.yaml",
                                 {"rpi4emu": server.inventory_entry(python=None)})
    wheelhouse = tmp_path / "wheels"
    proc = run_cli("targets", "--download", "--wheelhouse", str(wheelhouse), "--inventory",
                   str(inventory), timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert any(p.name.startswith("tflite_runtime-2.14.0-cp311-cp311-manylinux_2_34_aarch64")
               for p in wheelhouse.glob("*.whl"))
    proc = _setup(inventory, "--wheelhouse", str(wheelhouse), timeout=3600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "bootstrapping pip from the wheelhouse" in proc.stderr
    assert "ai-edge-litert installed but the runner crashed (SIGSEGV) on the probe model: " \
           "uninstalling it" in proc.stderr
    record = json.loads((server.root / "upper" / "root" / "harness-test" / SETUP_FILE)
                        .read_text())
    assert record["runtime"]["name"] == "tflite_runtime"
    assert record["runtime"]["version"] == "2.14.0"
    assert record["tried"][0].startswith("ai-edge-litert: installed but the runner crashed")
    assert not any(line.startswith("ai-edge-litert==") for line in record["installed"])
    assert any(line.startswith("numpy==1.") for line in record["installed"])

    again = _setup(inventory, "--wheelhouse", str(wheelhouse))
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "rpi4emu: already set up (tflite_runtime 2.14.0" in again.stderr
    inv = Inventory.model_validate(yaml.safe_load(inventory.read_text()))
    [checked] = check_targets(["rpi4emu"], inv)
    assert checked["python_executable"].endswith("/harness-test/venv/bin/python")
    assert checked["runtime"] == "tflite_runtime" and checked["setup"]["state"] == "done"

