"""Coral Edge TPU: compiler output parsed into rows, the int8-I/O artifact really built, and every
missing piece (compiler on the controller, libedgetpu / device on the target) an actionable row."""

from __future__ import annotations

import json
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
