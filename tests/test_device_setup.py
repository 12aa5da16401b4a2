"""`harness targets --setup` without SSH: which interpreter a target runs after a setup, the wheel
tags of a device, how pip's failures are read, the shipped probe model, command line errors and the
error paths on a local target (the SSH ones are in tests/ssh/test_setup.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.config.inventory import Target
from harness.device_setup import PROBE_MODEL
from harness.runtime_wheels import DevicePython, classify, requirements_sha256
from harness.transport import connect
from harness.transport.setup_record import SETUP_FILE, VENV_PYTHON
from testutil import run_cli

AARCH64 = DevicePython("3.11.2", "cpython", "aarch64", 64, ("glibc", "2.36"), "/usr/bin/python3",
                       True, 5000)


# --------------------------------------------------------------------------- which Python runs

def test_a_recorded_venv_is_used_unless_python_names_another_interpreter():
    unset = Target(kind="cpu", ssh="pi@rpi4")
    assert unset.python_exe == "python3"
    assert unset.use_setup_python("/w/venv/bin/python", None)
    assert unset.python_exe == "/w/venv/bin/python"
    assert unset.configured_python == "python3"  # what a new venv is made from

    same = Target(kind="cpu", ssh="pi@rpi4", python="/usr/bin/python3.11")
    assert same.use_setup_python("/w/venv/bin/python", "/usr/bin/python3.11")
    assert same.python_exe == "/w/venv/bin/python"  # the venv was made from this `python:`

    other = Target(kind="cpu", ssh="pi@rpi4", python="/opt/tf/bin/python")
    assert not other.use_setup_python("/w/venv/bin/python", None)
    assert other.python_exe == "/opt/tf/bin/python"  # an explicit, different `python:` wins

    assert unset.use_setup_python(None, None) is False
    assert unset.python_exe == "python3"


def test_connect_adopts_the_record_of_a_local_target(tmp_path):
    """The record is read when connecting; a record whose venv is gone is ignored."""
    work = tmp_path / "work"
    (work / "venv" / "bin").mkdir(parents=True)
    venv_python = work / VENV_PYTHON
    venv_python.symlink_to(sys.executable)
    (work / SETUP_FILE).write_text(json.dumps({"format_version": 1, "python": str(venv_python),
                                               "base_python": None}))
    target = Target(kind="cpu", workdir=str(work))
    connect("host", target).close()
    assert target.python_exe == str(venv_python)
    venv_python.unlink()
    connect("host", target).close()
    assert target.python_exe == sys.executable


def test_the_requirement_set_hash_follows_python_and_runtime():
    base = requirements_sha256(Target(kind="cpu", ssh="pi@rpi4"))
    assert base == requirements_sha256(Target(kind="cpu", ssh="pi@rpi4", workdir="/srv/h"))
    assert base != requirements_sha256(Target(kind="cpu", ssh="pi@rpi4", python="python3.11"))
    assert base != requirements_sha256(Target(kind="cpu", ssh="pi@rpi4",
                                              runtime="tflite_runtime"))


# --------------------------------------------------------------------------- wheel tags

def test_wheel_tags_of_a_device():
    platforms = AARCH64.platforms()
    assert platforms[0] == "manylinux_2_36_aarch64"
    assert {"manylinux_2_34_aarch64", "manylinux_2_17_aarch64", "manylinux2014_aarch64",
            "linux_aarch64"} <= set(platforms)
    assert AARCH64.abi == "cp311" and AARCH64.describe() == "CPython 3.11 on aarch64, glibc 2.36"
    accepts = AARCH64.accepts
    assert accepts("tflite_runtime-2.14.0-cp311-cp311-manylinux_2_34_aarch64.whl")
    assert accepts("numpy-1.26.4-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl")
    assert accepts("flatbuffers-25.12.19-py2.py3-none-any.whl")
    assert accepts("protobuf-7.36.2-cp310-abi3-manylinux2014_aarch64.whl")
    assert not accepts("ai_edge_litert-2.3.0-cp311-cp311-manylinux_2_27_x86_64.whl")
    assert not accepts("tflite_runtime-2.14.0-cp312-cp312-manylinux_2_34_aarch64.whl")
    assert not accepts("numpy-2.4.6-cp311-cp311-manylinux_2_39_aarch64.whl")  # newer glibc
    assert not accepts("not-a-wheel.whl")


def test_a_32_bit_userland_on_a_64_bit_kernel_needs_armv7l_wheels():
    pi = DevicePython("3.7.3", "cpython", "aarch64", 32, ("glibc", "2.28"), "/usr/bin/python3",
                      True, 5000)
    assert pi.arch == "armv7l" and pi.abi == "cp37m"
    assert pi.platforms()[0] == "manylinux_2_28_armv7l"


# --------------------------------------------------------------------------- pip's failures

def _pip(*args: str, tmp: Path) -> str:
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--retries", "1",
                           "--timeout", "5", "--only-binary=:all:", "-d", str(tmp), *args,
                           "ai-edge-litert"], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PIP_CONFIG_FILE": "/dev/null"})
    assert proc.returncode != 0
    return proc.stdout + proc.stderr


def test_pip_failures_are_told_apart(tmp_path):
    """Real pip output: an index that refuses connections, an empty wheel folder, and the
    error text of a full disk (a write to /dev/full)."""
    offline = _pip("--index-url", "http://127.0.0.1:9/simple/", tmp=tmp_path)
    assert classify(offline) == "no_network", offline
    empty = tmp_path / "empty"
    empty.mkdir()
    no_wheel = _pip("--no-index", "--find-links", str(empty), tmp=tmp_path)
    assert classify(no_wheel) == "no_wheel", no_wheel
    with pytest.raises(OSError) as full:
        with open("/dev/full", "w") as handle:
            handle.write("x")
    assert classify(f"ERROR: Could not install packages due to an OSError: {full.value}") \
        == "disk_full"
    assert classify("Successfully installed numpy-1.26.4") is None


# --------------------------------------------------------------------------- the probe model

def test_the_probe_model_ships_with_the_package_and_runs():
    from ai_edge_litert.interpreter import Interpreter
    import numpy as np

    assert PROBE_MODEL.is_file() and PROBE_MODEL.stat().st_size < 8192
    interpreter = Interpreter(str(PROBE_MODEL))
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    assert list(detail["shape"]) == [1, 32, 1] and detail["dtype"] == np.float32
    interpreter.set_tensor(detail["index"], np.ones((1, 32, 1), np.float32))
    interpreter.invoke()
    assert np.isfinite(interpreter.get_tensor(interpreter.get_output_details()[0]["index"])).all()
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert '"data/*.tflite"' in pyproject  # installed with the package


# --------------------------------------------------------------------------- command line

def _inventory(tmp_path: Path, **target) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump({"targets": {"box": {"kind": "cpu",
                                                        "workdir": str(tmp_path / "work"),
                                                        **target}}}))
    return path


@pytest.mark.parametrize("args, message", [
    (["--setup", "--wheelhouse", "/nonexistent/wheels"], "no wheels (*.whl) there"),
    (["--download"], "--download needs --wheelhouse DIR"),
    (["--wheelhouse", "/tmp"], "--wheelhouse goes with --setup or --download"),
])
def test_command_line_mistakes_exit_2(tmp_path, args, message):
    proc = run_cli("targets", *args, "--inventory", str(_inventory(tmp_path)))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr


def test_no_python_on_a_local_target_exits_3(tmp_path):
    proc = run_cli("targets", "--setup", "--inventory",
                   str(_inventory(tmp_path, python="/nonexistent/python3")))
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "box: no Python at '/nonexistent/python3' on the device" in proc.stderr
    assert "set `python:` of target box" in proc.stderr
    assert not (tmp_path / "work" / SETUP_FILE).exists()


@pytest.mark.slow
def test_a_local_target_without_network_or_wheelhouse_exits_3(tmp_path):
    """The local transport runs pip with our environment: an index that refuses connections."""
    proc = run_cli("targets", "--setup", "--inventory", str(_inventory(tmp_path)),
                   env={"PIP_INDEX_URL": "http://127.0.0.1:9/simple/", "PIP_RETRIES": "0",
                        "PIP_CONFIG_FILE": "/dev/null", "PIP_FIND_LINKS": ""})
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "box: the device cannot reach the package index ([Errno 111] Connection refused) " \
           "and no --wheelhouse was given" in proc.stderr
    assert "harness targets --download --setup --wheelhouse DIR --targets box" in proc.stderr
    assert not (tmp_path / "work" / SETUP_FILE).exists()


# --------------------------------------------------------------------------- what a kind needs

def test_what_a_kind_needs_besides_is_reported_with_the_fix(tmp_path):
    """The kinds' own probes, on this machine: trtexec where the inventory says, the Edge TPU
    delegate library, arduino-cli; a missing piece makes the setup exit 3."""
    import ctypes.util

    from harness.device_setup import SetupResult, kind_needs
    from harness.transport import LocalTransport

    local = LocalTransport("box", tmp_path / "work")
    jetson = Target(kind="tensorrt", workdir=str(tmp_path), trtexec="/nonexistent/trtexec")
    [missing] = kind_needs("jetson", jetson, local)
    assert missing.startswith("trtexec not found: install TensorRT with JetPack")
    found = Target(kind="tensorrt", workdir=str(tmp_path), trtexec="/bin/true")
    assert kind_needs("jetson", found, local) == []
    assert kind_needs("cpu", Target(kind="cpu", workdir=str(tmp_path)), local) == []
    if ctypes.util.find_library("edgetpu") is None:  # no Edge TPU runtime here
        [missing] = kind_needs("coral", Target(kind="edgetpu", workdir=str(tmp_path)), local)
        assert "libedgetpu.so.1 (the Edge TPU delegate) does not load" in missing
        assert "sudo apt-get install libedgetpu1-std" in missing
    assert SetupResult("jetson", status="incomplete", missing=["trtexec"]).exit_code == 3
    assert SetupResult("ok", status="set_up").exit_code == 0
