"""ONNX: tf2onnx export of the Keras model (batch 1) checked with ONNX Runtime, and ONNX Runtime as
a runtime on the host (a backend the plan chooses): real latency rows beside the TFLite ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from accel_util import artifact_for, make_ctx, make_suite
from harness.devices import KINDS, runner_exec
from harness.plan import Job, make_plan
from harness.runtimes import ONNXRUNTIME, backend_unsupported

ORT_JOB = Job("host", "cnn", "convert_only", "onnxruntime", ONNXRUNTIME)


@pytest.mark.slow
def test_export_is_checked_against_keras_and_cached(accel_models: dict, tmp_path: Path) -> None:
    import keras
    import onnx

    from harness.artifacts.onnx_export import export_onnx, ort_session

    export = export_onnx(accel_models["keras"], tmp_path)
    assert export.path.is_file() and export.path.suffix == ".onnx"
    assert export.input_shape == [1, 99, 1]
    assert 0 <= export.max_abs_diff < 1e-5 and export.checked_inputs == 8
    graph = onnx.load(str(export.path)).graph
    dims = [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 99, 1]  # fixed batch 1
    # independent check: the saved file through a fresh ONNX Runtime session
    model = keras.models.load_model(accel_models["keras"], compile=False)
    x = np.random.default_rng(7).standard_normal((1, 99, 1)).astype(np.float32) * 2
    session = ort_session(export.path)
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got, np.asarray(model(x)), atol=1e-5)
    again = export_onnx(accel_models["keras"], tmp_path)
    assert again.cached and again.sha256 == export.sha256
    assert again.max_abs_diff == export.max_abs_diff


@pytest.mark.slow
def test_transformer_with_exact_gelu_exports(tmp_path: Path) -> None:
    """Keras' exact GELU lowers to Erfc, which tf2onnx lacks; the export maps it to 1 - Erf."""
    import keras

    from harness.artifacts.onnx_export import export_onnx
    from harness.config.suite import TransformerSpec
    from harness.workloads.nilm.models import build_transformer, export_model

    keras.utils.set_random_seed(0)
    model = export_model(build_transformer(64, TransformerSpec(d_model=8, heads=2, layers=1, ff=16),
                                           dense=8), 64)
    model.save(tmp_path / "transformer.keras")
    export = export_onnx(tmp_path / "transformer.keras", tmp_path / "cache")
    assert export.max_abs_diff < 1e-4


def test_the_plan_gives_onnxruntime_jobs_their_backend_and_drops_quantized_variants(
        tmp_path: Path) -> None:
    from harness.config import Inventory
    from harness.config.suite import Suite

    keras_file = tmp_path / "cnn.keras"
    keras_file.write_bytes(b"")
    suite = Suite.model_validate({"name": "s", "models": [{"name": "cnn", "path": str(keras_file)}],
                                  "variants": ["convert_only", "w8_a8"],
                                  "measurements": {"latency": {"runs": 5}}})
    inventory = Inventory.model_validate({"targets": {"host": {"kind": "cpu",
                                                               "runtimes": ["onnxruntime"]}}})
    plan = make_plan(suite, tmp_path / "suite.yaml", inventory, ["host"])
    assert {(j.variant, j.runtime, j.backend) for j in plan.jobs} == {
        ("convert_only", "auto", "tflite"), ("w8_a8", "auto", "tflite"),
        ("convert_only", "onnxruntime", "onnxruntime")}
    dropped = [(d.variant, d.runtime) for d in plan.dropped]
    assert dropped == [("w8_a8", "onnxruntime")]
    assert "convert_only" in plan.dropped[0].reason


def test_onnxruntime_runtime_variants() -> None:
    assert backend_unsupported(ONNXRUNTIME, "convert_only") is None
    for variant in ("w8", "w8_a8", "w8_a16", "f16"):
        assert "convert_only" in backend_unsupported(ONNXRUNTIME, variant)
        assert backend_unsupported("tflite", variant) is None
    assert "Keras" in backend_unsupported(ONNXRUNTIME, "as_is")


@pytest.mark.slow
def test_onnxruntime_latency_rows_on_host(accel_models: dict, tmp_path: Path) -> None:
    suite = make_suite(accel_models["keras"])
    ctx = make_ctx(tmp_path, {"kind": "cpu", "runtimes": ["onnxruntime"]}, suite, name="host")
    artifact = artifact_for(accel_models, "convert_only")
    rows, series = KINDS["cpu"].execute(ctx, ORT_JOB, artifact)
    failed = [r for r in rows if r["status"] != "ok"]
    assert not failed, failed
    median = [r for r in rows if r["metric"] == "median_ms"]
    assert len(median) == 1
    assert median[0]["runtime"] == "onnxruntime" and median[0]["value"] > 0
    assert median[0]["n"] >= 20 and median[0]["method"] == "runner"
    assert median[0]["delegate"] == "CPUExecutionProvider"
    assert median[0]["artifact_sha256"] != artifact.sha256  # the ONNX model, not the .tflite
    diff = [r for r in rows if r["metric"] == "onnx_max_abs_diff"][0]
    assert diff["measurement"] == "build" and diff["value"] < 1e-5
    assert [r["metric"] for r in rows if r["measurement"] == "memory"]
    assert series and series[0]["runtime"] == "onnxruntime"
    assert ctx.environment["runtimes"]["onnxruntime"]

    # a convert_only artifact without its Keras model is a skip row for this runtime
    no_source = artifact_for(accel_models, "convert_only")
    no_source.source = None
    skipped, _ = runner_exec.execute(ctx, ORT_JOB, no_source)
    assert [r["status"] for r in skipped] == ["skipped"]
    assert skipped[0]["error_kind"] == "unsupported" and skipped[0]["runtime"] == "onnxruntime"


@pytest.mark.slow
def test_tflite_and_onnxruntime_side_by_side(accel_models: dict, tmp_path: Path) -> None:
    """The same model through the standard TFLite runner and through ONNX Runtime."""
    suite = make_suite(accel_models["keras"])
    ctx = make_ctx(tmp_path, {"kind": "cpu", "runtimes": ["onnxruntime"]}, suite, name="host")
    artifact = artifact_for(accel_models, "convert_only")
    tflite_rows, _ = KINDS["cpu"].execute(ctx, Job("host", "cnn", "convert_only", "auto"), artifact)
    ort_rows, _ = KINDS["cpu"].execute(ctx, ORT_JOB, artifact)
    runtimes = {r["runtime"] for r in tflite_rows + ort_rows if r["metric"] == "median_ms"}
    assert runtimes == {"ai_edge_litert", "onnxruntime"}


@pytest.mark.slow
def test_missing_onnxruntime_on_the_device_is_not_fatal_to_tflite_jobs(tmp_path: Path) -> None:
    """A device without onnxruntime: the runner says how to install it, with a kind the
    orchestrator does not treat as fatal for the target (its TFLite jobs still run)."""
    import json
    import subprocess
    import sys

    from harness.errors import is_fatal
    from testutil import ROOT

    work = tmp_path / "work"
    (work / "jobs").mkdir(parents=True)
    (work / "artifacts").mkdir()
    (work / "artifacts" / "m.onnx").write_bytes(b"not used")
    job = {"schema_version": 1, "job_id": "m.convert_only.onnxruntime",
           "model": "artifacts/m.onnx", "runtime": "onnxruntime", "measure": {},
           "result": "results/m.json"}
    (work / "jobs" / "job.json").write_text(json.dumps(job))
    # onnxruntime made unimportable in the runner's process (as on a device without it)
    code = ("import runpy, sys; sys.modules['onnxruntime'] = None; "
            f"sys.argv = ['runner.py', {str(work / 'jobs' / 'job.json')!r}]; "
            f"runpy.run_path({str(ROOT / 'targets' / 'runner.py')!r}, run_name='__main__')")
    subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                   cwd=ROOT / "targets")
    result = json.loads((work / "results" / "m.json").read_text())
    assert result["status"] == "error"
    assert result["error"]["kind"] == "onnxruntime_missing"
    assert "pip install onnxruntime" in result["error"]["message"]
    assert not is_fatal(result["error"]["kind"])
