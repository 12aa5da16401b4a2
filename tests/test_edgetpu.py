"""Coral Edge TPU: compiler output parsed into rows, the int8-I/O artifact really built, and every
missing piece (compiler on the controller, libedgetpu / device on the target) an actionable row."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from accel_util import artifact_for, make_ctx, make_suite
from harness.devices import KINDS
from harness.devices.runner_exec import loop_rate_rows
from harness.parsers.edgetpu_compiler import parse_operation_log, parse_summary
from testutil import FIXTURES, ROOT

EDGETPU = KINDS["edgetpu"]

LOG = FIXTURES / "edgetpu_compiler" / "kettle_cnn_w8_a8_edgetpu.log"
SUMMARY = FIXTURES / "edgetpu_compiler" / "stdout_v2_partial_cpu.txt"

# The v16 console summary layout ("remaining", a model that streams parameters off-chip).
SUMMARY_V16 = """Edge TPU Compiler version 16.0.384591198
Started a compilation timeout timer of 180 seconds.

Model compiled successfully in 1197 ms.

Input model: big_cnn_w8_a8.tflite
Input size: 10.65MiB
Output model: big_cnn_w8_a8_edgetpu.tflite
Output size: 10.71MiB
On-chip memory used for caching model parameters: 6.91MiB
On-chip memory remaining for caching model parameters: 4.75KiB
Off-chip memory used for streaming uncached model parameters: 3.62MiB
Number of Edge TPU subgraphs: 1
Total number of operations: 22
Operation log: big_cnn_w8_a8_edgetpu.log

See the operation log file for individual operation details.
Compilation child process completed within timeout period.
Compilation succeeded!
"""


def by(rows: list[dict], metric: str, key: str | None = None) -> dict:
    found = [r for r in rows if r["metric"] == metric and r.get("key") == key]
    assert len(found) == 1, (metric, key, found)
    return found[0]


def test_operation_log_fixture_rows() -> None:
    rows = parse_operation_log(LOG.read_text())
    assert by(rows, "ops_on_edgetpu", "CONV_2D")["value"] == 5
    assert by(rows, "ops_on_edgetpu", "RESHAPE")["value"] == 10
    assert by(rows, "ops_on_edgetpu", "MAX_POOL_2D")["value"] == 4
    assert by(rows, "ops_on_edgetpu", "FULLY_CONNECTED")["value"] == 3
    assert by(rows, "ops_on_edgetpu", "CONV_2D")["message"] == "Mapped to Edge TPU"
    assert by(rows, "ops_on_edgetpu_total")["value"] == 22
    assert by(rows, "ops_on_cpu_total")["value"] == 0
    assert by(rows, "edgetpu_op_share_pct")["value"] == 100.0
    assert by(rows, "ops_on_edgetpu_total")["message"] == "Edge TPU Compiler 16.0.384591198"
    assert all(r["measurement"] == "build" and r["method"] == "edgetpu_compiler" for r in rows)


def test_operation_log_with_cpu_fallback() -> None:
    text = LOG.read_text() + ("MEAN                           2          Operation is working on "
                              "an unsupported data type\n")
    rows = parse_operation_log(text)
    cpu = by(rows, "ops_on_cpu", "MEAN")
    assert cpu["value"] == 2 and cpu["valid"] is False
    assert cpu["message"] == "Operation is working on an unsupported data type"
    assert by(rows, "ops_on_cpu_total")["value"] == 2
    assert by(rows, "edgetpu_op_share_pct")["value"] == round(100 * 22 / 24, 2)


def test_console_summary_fixture_rows() -> None:
    rows = parse_summary(SUMMARY.read_text())
    assert by(rows, "on_chip_memory_used_bytes")["value"] == round(1.02 * 1024 ** 2)
    assert by(rows, "on_chip_memory_available_bytes")["value"] == round(7.62 * 1024 ** 2)
    assert by(rows, "off_chip_memory_streamed_bytes")["value"] == 0
    assert by(rows, "off_chip_memory_streamed_bytes")["valid"] is True
    assert by(rows, "edgetpu_subgraphs")["value"] == 2
    assert by(rows, "total_ops")["value"] == 61
    assert by(rows, "ops_on_edgetpu_total")["value"] == 44
    cpu = by(rows, "ops_on_cpu_total")
    assert cpu["value"] == 17 and cpu["valid"] is False and "CPU" in cpu["hint"]
    assert by(rows, "compile_ms")["value"] == 412
    assert by(rows, "input_size_bytes")["value"] == round(1.98 * 1024 ** 2)
    assert by(rows, "edgetpu_op_share_pct")["value"] == 72.13
    assert by(rows, "total_ops")["message"] == "Edge TPU Compiler 2.0.267685300"


def test_newer_summary_says_remaining_and_flags_off_chip_streaming() -> None:
    rows = parse_summary(SUMMARY_V16)
    assert by(rows, "on_chip_memory_remaining_bytes")["value"] == round(4.75 * 1024)
    assert not [r for r in rows if r["metric"] == "on_chip_memory_available_bytes"]
    streamed = by(rows, "off_chip_memory_streamed_bytes")
    assert streamed["value"] == round(3.62 * 1024 ** 2)
    assert streamed["valid"] is False and "off-chip" in streamed["hint"]
    # fully mapped: every operation on the Edge TPU
    assert by(rows, "ops_on_edgetpu_total")["value"] == 22
    assert by(rows, "ops_on_cpu_total")["value"] == 0


def test_unsupported_variants() -> None:
    from harness.config.inventory import Target

    coral = Target(kind="edgetpu", ssh="mendel@coral.local", accelerator="edgetpu")
    assert EDGETPU.unsupported(coral, "w8_a8") is None
    for variant in ("convert_only", "w8", "w8_a16", "f16", "as_is"):
        reason = EDGETPU.unsupported(coral, variant)
        assert reason and "w8_a8" in reason


@pytest.mark.slow
def test_int8_io_model_is_full_int8_with_static_batch(accel_models: dict, tmp_path: Path) -> None:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from harness.artifacts.int8_io import int8_io_model

    model = int8_io_model(accel_models["w8_a8"], tmp_path)
    assert model.input_dtype == "int8" and model.output_dtype == "int8"
    assert model.input_shape == [1, 99, 1]
    again = int8_io_model(accel_models["w8_a8"], tmp_path)
    assert again.cached and again.sha256 == model.sha256
    # same quantized model as w8_a8: identical outputs once the I/O (de)quantization is applied
    plain = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    a = Interpreter(model_path=str(accel_models["w8_a8"]), experimental_op_resolver_type=plain)
    b = Interpreter(model_path=str(model.path), experimental_op_resolver_type=plain)
    a.allocate_tensors()
    b.allocate_tensors()
    ops = {op["op_name"] for op in b._get_ops_details()}
    assert "QUANTIZE" not in ops and "DEQUANTIZE" not in ops
    x = np.random.default_rng(3).standard_normal((1, 99, 1)).astype(np.float32)
    a.set_tensor(a.get_input_details()[0]["index"], x)
    a.invoke()
    expected = a.get_tensor(a.get_output_details()[0]["index"])
    scale, zero = b.get_input_details()[0]["quantization"]
    b.set_tensor(b.get_input_details()[0]["index"],
                 np.clip(np.round(x / scale + zero), -128, 127).astype(np.int8))
    b.invoke()
    oscale, ozero = b.get_output_details()[0]["quantization"]
    got = (b.get_tensor(b.get_output_details()[0]["index"]).astype(np.float32) - ozero) * oscale
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_missing_compiler_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.artifacts.edgetpu_compile import require_compiler
    from harness.errors import InfraError

    monkeypatch.setenv("HARNESS_EDGETPU_COMPILER", "/nonexistent/edgetpu_compiler")
    with pytest.raises(InfraError) as info:
        require_compiler()
    assert info.value.kind == "tool_missing"
    assert "apt-get install edgetpu-compiler" in str(info.value)
    assert "coral-edgetpu-stable" in str(info.value)


def test_compile_command_is_fully_formed(tmp_path: Path) -> None:
    from harness.artifacts.edgetpu_compile import compile_command

    assert compile_command("edgetpu_compiler", tmp_path / "m.tflite", tmp_path / "out") == [
        "edgetpu_compiler", "--show_operations", "--out_dir", str(tmp_path / "out"),
        str(tmp_path / "m.tflite")]


@pytest.mark.slow
def test_execute_builds_the_artifact_and_ends_with_a_tool_missing_row(
        accel_models: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.plan import Job

    monkeypatch.setenv("HARNESS_EDGETPU_COMPILER", "/nonexistent/edgetpu_compiler")
    suite = make_suite(accel_models["keras"])
    ctx = make_ctx(tmp_path, {"kind": "edgetpu", "accelerator": "edgetpu"}, suite, name="coral")
    artifact = artifact_for(accel_models, "w8_a8")
    prepared = EDGETPU.prepare(ctx.target, artifact, ctx.cache)
    assert prepared.path.is_file() and prepared.path.name.endswith(".int8io.tflite")
    rows, series = EDGETPU.execute(ctx, Job("coral", "cnn", "w8_a8", "auto"), prepared)
    assert series == []
    size = by(rows, "int8_model_bytes")
    assert size["value"] == prepared.path.stat().st_size and size["status"] == "ok"
    failure = rows[-1]
    assert failure["status"] == "failed" and failure["error_kind"] == "tool_missing"
    assert "edgetpu-compiler" in failure["message"] and failure["target"] == "coral"


@pytest.mark.slow
def test_runner_reports_a_missing_edgetpu_runtime_as_device_missing(
        accel_models: dict, tmp_path: Path) -> None:
    """The real runner with the real TFLite runtime asked to load libedgetpu.so.1 (absent here)."""
    from harness.artifacts.int8_io import int8_io_model

    model = int8_io_model(accel_models["w8_a8"], tmp_path / "cache")
    work = tmp_path / "work"
    (work / "jobs").mkdir(parents=True)
    (work / "artifacts").mkdir()
    (work / "artifacts" / "m.tflite").write_bytes(model.path.read_bytes())
    job = {"schema_version": 1, "job_id": "cnn.w8_a8.auto", "model": "artifacts/m.tflite",
           "runtime": "auto", "delegate": {"name": "edgetpu", "library": "libedgetpu.so.1"},
           "loop_rate": True, "measure": {"latency": {"threads": [1], "runs": 5}},
           "result": "results/cnn.w8_a8.auto.json"}
    (work / "jobs" / "job.json").write_text(json.dumps(job))
    proc = subprocess.run([sys.executable, str(ROOT / "targets" / "runner.py"),
                           str(work / "jobs" / "job.json")], capture_output=True, text=True,
                          timeout=300)
    result = json.loads((work / "results" / "cnn.w8_a8.auto.json").read_text())
    assert proc.returncode == 1
    assert result["status"] == "error" and result["error"]["kind"] == "device_missing"
    assert "libedgetpu.so.1" in result["error"]["message"]
    assert "libedgetpu1-std" in result["error"]["message"]


def test_loop_rate_is_a_separate_metric() -> None:
    rows = loop_rate_rows({"loop_rate": {"threads": 1, "iterations": 400, "rate_hz": 250.0}},
                          {"target": "coral"})
    rate = by(rows, "loop_rate_hz")
    assert rate["value"] == 250.0 and rate["method"] == "python_loop" and rate["unit"] == "Hz"
    assert by(rows, "loop_ms")["value"] == 4.0
    assert not [r for r in rows if r["metric"] == "median_ms"]


# --------------------------------------------------------------------------- runtime choice

STOCK, REBUILT = "16.0", "16.0tf2.17.1-1"


@pytest.mark.parametrize("package, runtime, version, verdict, cited", [
    (STOCK, "tflite_runtime", "2.5.0.post1", "ok", None),
    (STOCK, "tflite_runtime", "2.11.1", "ok", None),
    (STOCK, "tflite_runtime", "2.14.0", "bad", "google-coral/edgetpu#812"),
    (STOCK, "ai_edge_litert", "2.3.0", "bad", "google-ai-edge/LiteRT#3611"),
    (REBUILT, "ai_edge_litert", "1.2.0", "ok", "LiteRT#3611"),
    (REBUILT, "tflite_runtime", "2.17.1", "ok", None),
    (REBUILT, "tflite_runtime", "2.5.0.post1", "unknown", None),
    (STOCK, "tensorflow", "2.21.0", "bad", "google-coral/edgetpu#126"),
    (None, "tflite_runtime", "2.14.0", "unknown", None),
])
def test_libedgetpu_and_runtime_pairs(package: str | None, runtime: str, version: str,
                                      verdict: str, cited: str | None) -> None:
    from harness.devices.edgetpu import pair_verdict

    got, why = pair_verdict(package, runtime, version)
    assert got == verdict, why
    assert runtime in why and (cited is None or cited in why)


def test_delegate_runtimes_follow_the_installed_libedgetpu() -> None:
    from harness.devices.edgetpu import delegate_runtimes

    def found(package: str | None, **runtimes: str) -> dict:
        return {"package": {"name": "libedgetpu1-std", "version": package} if package else None,
                "runtimes": runtimes}

    # Mendel (Dev Board, Python 3.7): Coral's tflite-runtime only
    assert delegate_runtimes(found(STOCK, tflite_runtime="2.5.0.post1")) == (
        ["tflite_runtime"], None)
    # ai-edge-litert installed beside it: never preferred with the stock library
    assert delegate_runtimes(found(STOCK, tflite_runtime="2.5.0.post1", ai_edge_litert="2.3.0",
                                   tensorflow="2.21.0")) == (["tflite_runtime"], None)
    # a rebuilt libedgetpu: the matching tflite-runtime first, then ai-edge-litert
    assert delegate_runtimes(found(REBUILT, tflite_runtime="2.17.1", ai_edge_litert="1.2.0")) == (
        ["tflite_runtime", "ai_edge_litert"], None)
    assert delegate_runtimes(found(REBUILT, tflite_runtime="2.5.0", ai_edge_litert="1.2.0")) == (
        ["ai_edge_litert", "tflite_runtime"], None)
    # only known-bad pairs: nothing to run, and why
    order, refusal = delegate_runtimes(found(STOCK, tflite_runtime="2.14.0",
                                             ai_edge_litert="2.3.0", tensorflow="2.21.0"))
    assert order == [] and "#812" in refusal and "LiteRT#3611" in refusal
    assert "tensorflow" not in refusal  # never a fallback for the delegate
    # the inventory says otherwise: as given
    assert delegate_runtimes(found(STOCK, ai_edge_litert="2.3.0"), "ai_edge_litert") == (
        ["ai_edge_litert"], None)
    # nothing known about the device: the runner's default order
    assert delegate_runtimes(None) == (["tflite_runtime", "ai_edge_litert"], None)


def write_fake_runtimes(folder: Path, **present: str) -> Path:
    """Importable stand-ins of the TFLite runtimes on a path put first: a runtime given a
    version imports (its `load_delegate` fails as a missing libedgetpu does), every other one
    shadows the installed package with an ImportError, as if it were not installed."""
    for name in ("tflite_runtime", "ai_edge_litert", "tensorflow"):
        package = folder / name
        package.mkdir(parents=True, exist_ok=True)
        if name not in present:
            (package / "__init__.py").write_text(f"raise ImportError('no {name} (test)')\n")
            continue
        delegate = ("def load_delegate(library, options=None):\n"
                    "    raise ValueError('Failed to load delegate from ' + library)\n"
                    "class Interpreter:\n    pass\n")
        if name == "tensorflow":
            (package / "__init__.py").write_text(
                f"__version__ = {present[name]!r}\nclass lite:\n    Interpreter = object\n"
                "    class experimental:\n        @staticmethod\n"
                "        def load_delegate(library, options=None):\n"
                "            raise ValueError('Failed to load delegate from ' + library)\n")
        else:
            (package / "__init__.py").write_text(f"__version__ = {present[name]!r}\n")
            (package / "interpreter.py").write_text(delegate)
    return folder


RUNNER_CHOICE = """
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import backends
from runner_error import RunnerError
try:
    backend = backends.open_backend(json.loads(sys.argv[3]))
    print(json.dumps({"name": backend.name, "version": backend.version}))
except RunnerError as exc:
    print(json.dumps({"error": exc.kind, "message": str(exc)}))
"""


@pytest.mark.parametrize("present, job, expected", [
    ({"tflite_runtime": "2.5.0.post1"}, {"delegate": {}}, "tflite_runtime"),
    ({"tflite_runtime": "2.5.0.post1", "ai_edge_litert": "2.3.0", "tensorflow": "2.21.0"},
     {"delegate": {}}, "tflite_runtime"),
    ({"tflite_runtime": "2.5.0.post1", "ai_edge_litert": "2.3.0"},
     {"delegate": {"runtimes": ["ai_edge_litert", "tflite_runtime"]}}, "ai_edge_litert"),
    ({"ai_edge_litert": "2.3.0"}, {"delegate": {}}, "ai_edge_litert"),
    ({"tflite_runtime": "2.5.0.post1", "ai_edge_litert": "2.3.0"},
     {"runtime": "ai_edge_litert", "delegate": {"runtimes": ["tflite_runtime"]}},
     "ai_edge_litert"),
    ({"tensorflow": "2.21.0"}, {"delegate": {}}, "runtime_missing"),
    ({"tflite_runtime": "2.5.0.post1"}, {"delegate": {"runtimes": ["ai_edge_litert"]}},
     "runtime_missing"),
    ({"tensorflow": "2.21.0"}, {}, "tensorflow"),  # plain CPU jobs keep tf.lite as a fallback
])
def test_the_runner_imports_the_runtime_the_job_allows(tmp_path: Path, present: dict, job: dict,
                                                       expected: str) -> None:
    fakes = write_fake_runtimes(tmp_path / "fakes", **present)
    if "delegate" in job:
        job["delegate"] = dict({"name": "edgetpu", "library": "libedgetpu.so.1"},
                               **job["delegate"])
    proc = subprocess.run([sys.executable, "-c", RUNNER_CHOICE, str(fakes),
                           str(ROOT / "targets"), json.dumps(dict({"runtime": "auto"}, **job))],
                          capture_output=True, text=True, timeout=120)
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    if expected == "runtime_missing":
        assert got["error"] == "runtime_missing"
        assert "tensorflow" not in got["message"].split("tried")[1].split(")")[0]
        assert "tflite-runtime 2.5.0.post1" in got["message"]  # the Edge TPU fix
    else:
        assert got["name"] == expected and got["version"] == present[expected]


# --------------------------------------------------------------------------- the device probe

FAKE_LIBEDGETPU = r"""
#include <stdlib.h>
/* Test stand-in for libedgetpu.so.1: the C entry points of edgetpu_c.h the harness calls. */
enum edgetpu_device_type { EDGETPU_APEX_PCI = 0, EDGETPU_APEX_USB = 1 };
struct edgetpu_device { enum edgetpu_device_type type; const char* path; };
const char* edgetpu_version(void) {
  return "BuildLabel(COMPILER=6.3.0 20170516,DATE=redacted,TIME=redacted), RuntimeVersion(14)";
}
struct edgetpu_device* edgetpu_list_devices(size_t* num_devices) {
  *num_devices = DEVICES;
  if (DEVICES == 0) return NULL;
  struct edgetpu_device* found = malloc(sizeof *found);
  found->type = EDGETPU_APEX_USB;
  found->path = "/sys/bus/usb/devices/2-1";
  return found;
}
void edgetpu_free_devices(struct edgetpu_device* devices) { free(devices); }
"""

DPKG_QUERY = """#!/bin/sh
# Test stand-in for dpkg-query -W -f '${{db:Status-Abbrev}} ${{Package}} ${{Version}}\\n' PKG...:
# the installed libedgetpu package, and dpkg-query's message for the one that is not.
echo "ii  libedgetpu1-std {version}"
echo "dpkg-query: no packages found matching libedgetpu1-max" >&2
exit 1
"""


def device_with_edgetpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, devices: int,
                        package: str | None, **runtimes: str) -> None:
    """This machine dressed as a Coral: a libedgetpu.so.1 stand-in on LD_LIBRARY_PATH (none when
    devices < 0), dpkg-query on PATH naming its package, fake TFLite runtimes on PYTHONPATH."""
    lib = tmp_path / "lib"
    lib.mkdir()
    if devices >= 0:
        source = tmp_path / "libedgetpu.c"
        source.write_text(FAKE_LIBEDGETPU)
        subprocess.run([GCC, "-shared", "-fPIC", f"-DDEVICES={devices}", "-o",
                        str(lib / "libedgetpu.so.1"), str(source)], check=True, timeout=120)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if package:
        (bin_dir / "dpkg-query").write_text(DPKG_QUERY.format(version=package))
        (bin_dir / "dpkg-query").chmod(0o755)
    fakes = write_fake_runtimes(tmp_path / "fakes", **runtimes)
    monkeypatch.setenv("LD_LIBRARY_PATH", str(lib))
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("PYTHONPATH", str(fakes))


def compiled_artifact(tmp_path: Path):
    from harness.artifacts import Artifact
    from harness.artifacts.cache import sha256_file

    model = tmp_path / "cnn_edgetpu.tflite"
    model.write_bytes(b"TFL3 compiled model stand-in")
    return Artifact("cnn", "w8_a8", path=model, sha256=sha256_file(model), size_bytes=28,
                    extra={"int8_size_bytes": 20000, "input_shape": [1, 99, 1], "compiled": True,
                           "compiler_version": "16.0.384591198",
                           "compiler_stdout": SUMMARY_V16, "compiler_log": LOG.read_text()})


GCC = shutil.which("gcc")
needs_gcc = pytest.mark.skipif(GCC is None, reason="gcc is not installed (apt-get install gcc)")


@needs_gcc
def test_targets_check_names_libedgetpu_runtime_versions_and_a_known_bad_pair(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.config.inventory import Target
    from harness.probe import probe
    from harness.transport import LocalTransport

    device_with_edgetpu(tmp_path, monkeypatch, devices=1, package=STOCK,
                        tflite_runtime="2.5.0.post1")
    coral = Target(kind="edgetpu", python=sys.executable)
    result = probe(LocalTransport("coral", tmp_path / "work"), coral)
    found = result["kind_probe"]
    assert found["package"] == {"name": "libedgetpu1-std", "version": "16.0"}
    assert "RuntimeVersion(14)" in found["edgetpu_version"]
    assert found["devices"] == [{"type": "usb", "path": "/sys/bus/usb/devices/2-1"}]
    assert found["runtimes"]["tflite_runtime"] == "2.5.0.post1"
    assert found["delegate_runtimes"] == ["tflite_runtime"]
    assert "libedgetpu1-std 16.0" in found["summary"] and "tflite_runtime 2.5.0.post1" in \
        found["summary"] and "1 Edge TPU (usb)" in found["summary"]
    # ai-edge-litert (installed in this environment) next to the stock library: warned
    bad = [h for h in result["hints"] if "known-bad" in h]
    assert bad and "LiteRT#3611" in bad[0]


@needs_gcc
def test_execute_runs_the_delegate_with_the_runtime_that_matches_libedgetpu(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.plan import Job

    device_with_edgetpu(tmp_path, monkeypatch, devices=1, package=STOCK,
                        tflite_runtime="2.5.0.post1", ai_edge_litert="2.3.0")
    ctx = make_ctx(tmp_path, {"kind": "edgetpu", "accelerator": "edgetpu"},
                   make_suite(tmp_path / "cnn.keras"), name="coral")
    rows, _ = EDGETPU.execute(ctx, Job("coral", "cnn", "w8_a8", "auto"),
                              compiled_artifact(tmp_path))
    job = json.loads(next((ctx.local_dir / "jobs").glob("*.json")).read_text())
    assert job["delegate"]["runtimes"] == ["tflite_runtime"]
    failure = rows[-1]  # the stand-in runtime cannot open the stand-in library's delegate
    assert failure["error_kind"] == "device_missing"
    assert "with tflite_runtime 2.5.0.post1" in failure["message"]


@needs_gcc
@pytest.mark.parametrize("devices, package, runtimes, kind, words", [
    (1, STOCK, {"tflite_runtime": "2.14.0", "ai_edge_litert": "2.3.0"}, "runtime_missing",
     ["#812", "LiteRT#3611", "tflite-runtime 2.5.0.post1"]),
    (0, STOCK, {"tflite_runtime": "2.5.0.post1"}, "device_missing",
     ["lists no Edge TPU", "lsusb"]),
    (-1, None, {"tflite_runtime": "2.5.0.post1"}, "device_missing",
     ["libedgetpu.so.1 cannot be loaded", "libedgetpu1-std"]),
])
def test_a_device_that_cannot_run_the_delegate_stops_before_the_runner(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, devices: int, package: str | None,
        runtimes: dict, kind: str, words: list[str]) -> None:
    from harness.plan import Job

    device_with_edgetpu(tmp_path, monkeypatch, devices=devices, package=package, **runtimes)
    ctx = make_ctx(tmp_path, {"kind": "edgetpu", "accelerator": "edgetpu"},
                   make_suite(tmp_path / "cnn.keras"), name="coral")
    rows, series = EDGETPU.execute(ctx, Job("coral", "cnn", "w8_a8", "auto"),
                                   compiled_artifact(tmp_path))
    failure = rows[-1]
    assert series == [] and failure["status"] == "failed" and failure["error_kind"] == kind
    assert failure["phase"] == "probe" and all(w in failure["message"] for w in words)
    assert not (ctx.local_dir / "jobs").exists()  # the runner never started
    assert by(rows, "size_bytes")["value"] == 28  # the build rows are kept
