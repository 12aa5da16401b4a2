"""Op-split profiling with the real runtime (ai_edge_litert), runner integration, and its rows."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "targets"))

import opsplit  # noqa: E402
from harness.results.profile_rows import (memory_rows, op_split_rows, parameter_count,  # noqa: E402
                                         size_rows)

interpreter = pytest.importorskip("ai_edge_litert.interpreter")
from ai_edge_litert.tools import flatbuffer_utils as fbu  # noqa: E402

FAST = {"threads": 1, "warmup_runs": 2, "warmup_seconds": 0.0, "runs": 5, "min_seconds": 0.0,
        "rounds": 1}


@pytest.fixture(scope="module", params=["convert_only", "w8_a8"])
def profiled(request: pytest.FixtureRequest, tiny_models: dict) -> tuple[Path, dict]:
    path = tiny_models[request.param]
    return path, opsplit.profile_model(interpreter, str(path), FAST)


def builtin_ops(path: Path) -> list[str]:
    """Operator names of the primary subgraph as the runtime reports them (no delegate)."""
    interp = interpreter.Interpreter(
        model_path=str(path),
        experimental_op_resolver_type=interpreter.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interp.allocate_tensors()
    return [op["op_name"] for op in interp._get_ops_details()]


def test_section_covers_every_operator(profiled: tuple[Path, dict]) -> None:
    path, section = profiled
    assert section["status"] == "ok" and section["error"] is None
    assert section["method"] == "op_split" and section["threads"] == 1
    assert [op["op"] for op in section["ops"]] == builtin_ops(path)
    assert section["ops_failed"] == 0
    for op in section["ops"]:
        assert op["status"] == "ok", op
        assert op["n"] >= FAST["runs"] and op["median_us"] > 0
        assert op["name"] == f"[{op['output']}]:{op['index']}"
        assert op["delegate"] in ("XNNPACK", "none")
        assert 0 <= op["net_us"] <= op["median_us"]
    whole = section["whole"]
    assert whole["n"] == len(whole["samples_us"]) >= FAST["runs"]
    assert whole["delegate"] == "XNNPACK"  # the runtime's default delegate, as for latency


def test_ratio_is_consistent_with_the_medians(profiled: tuple[Path, dict]) -> None:
    _, section = profiled
    medians = [op["median_us"] for op in section["ops"]]
    assert section["sum_op_median_raw_us"] == pytest.approx(sum(medians), abs=1e-2)
    net = sum(op["net_us"] for op in section["ops"])
    assert section["sum_op_median_us"] == pytest.approx(net + section["overhead_us"], abs=1e-2)
    assert section["ratio"] == pytest.approx(
        section["sum_op_median_us"] / section["whole_median_us"], rel=1e-3)
    assert section["ratio_raw"] >= section["ratio"] > 0


def test_single_op_models_reproduce_the_full_invoke(tiny_models: dict) -> None:
    """Each cut-out operator, fed the captured intermediates, yields the captured outputs."""
    for variant in ("convert_only", "w8_a8"):
        path = str(tiny_models[variant])
        model = fbu.read_model(path)
        graph = model.subgraphs[0]
        values = opsplit.capture_tensors(interpreter, path, graph, model)
        for index, op in enumerate(graph.operators):
            content, feeds = opsplit.single_op_model(fbu, model, index)
            interp = interpreter.Interpreter(model_content=content, num_threads=1)
            interp.allocate_tensors()
            for detail, t in zip(interp.get_input_details(), feeds):
                interp.set_tensor(detail["index"], values[t])
            interp.invoke()
            for detail, t in zip(interp.get_output_details(), op.outputs):
                got, want = interp.get_tensor(detail["index"]), values[t]
                if np.issubdtype(want.dtype, np.integer):
                    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1, (variant, index)
                else:
                    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_missing_flatbuffer_tools_is_an_error_section(tiny_models: dict) -> None:
    """tflite_runtime ships no flatbuffer utilities: the section says so instead of crashing."""
    code = f"""
import sys, json, types
sys.modules["ai_edge_litert"] = None          # as on a device with only tflite_runtime
sys.path.insert(0, {str(ROOT / "targets")!r})
import opsplit
module = types.ModuleType("tflite_runtime.interpreter")
print(json.dumps(opsplit.profile_model(module, {str(tiny_models["w8_a8"])!r}, {{"threads": 1}})))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    section = json.loads(out.stdout.strip().splitlines()[-1])
    assert section["status"] == "error"
    assert section["error"]["kind"] == "flatbuffer_tools_missing"
    assert "pip install ai-edge-litert" in section["error"]["message"]
    assert "benchmark_model" in section["error"]["message"]
    rows = op_split_rows(section, {"target": "rpi4", "model": "m", "variant": "w8_a8"})
    assert len(rows) == 1 and rows[0]["status"] == "failed"
    assert rows[0]["error_kind"] == "flatbuffer_tools_missing" and rows[0]["method"] == "op_split"


def test_runner_job_with_profile_and_memory(tmp_path: Path, tiny_models: dict) -> None:
    """The device-side runner in a fresh process: `measure.profile` and `memory` → rows."""
    work = tmp_path / "work"
    (work / "jobs").mkdir(parents=True)
    (work / "artifacts").mkdir()
    model = work / "artifacts" / "m.tflite"
    model.write_bytes(tiny_models["w8_a8"].read_bytes())
    job = {"schema_version": 1, "job_id": "j1", "model": "artifacts/m.tflite", "runtime": "auto",
           "measure": {"latency": {"threads": [1], "warmup_runs": 2, "warmup_seconds": 0.0,
                                   "runs": 5, "min_seconds": 0.0, "rounds": 1},
                       "memory": True, "profile": FAST},
           "result": "results/j1.json"}
    (work / "jobs" / "j1.json").write_text(json.dumps(job))
    proc = subprocess.run([sys.executable, str(ROOT / "targets" / "runner.py"), "jobs/j1.json"],
                          cwd=work, capture_output=True, text=True, timeout=300)
    result = json.loads((work / "results" / "j1.json").read_text())
    assert proc.returncode == 0, result.get("error")
    assert result["profile"]["status"] == "ok"
    fields = {"target": "host", "model": "tiny", "variant": "w8_a8", "runtime": "ai_edge_litert"}
    memory = result["memory"]
    rows = (op_split_rows(result["profile"], fields) + memory_rows(memory, fields)
            + size_rows(model, fields, size_bytes=memory["model_bytes"]))
    assert all(r["method"] for r in rows)
    by_metric: dict[str, list[dict]] = {}
    for r in rows:
        by_metric.setdefault(r["metric"], []).append(r)
    nodes = by_metric["node_ms"]
    assert len(nodes) == len(result["profile"]["ops"])
    assert {r["method"] for r in nodes} == {"op_split"}
    assert all(r["node_type"] and r["key"].startswith("[") for r in nodes)
    assert sum(r["value"] for r in by_metric["node_pct"]) == pytest.approx(100.0)
    assert sum(r["value"] for r in by_metric["type_pct"]) == pytest.approx(100.0)
    assert {r["key"] for r in by_metric["type_ms"]} == {r["node_type"] for r in nodes}
    ratio = by_metric["sum_vs_whole_ratio"][0]
    assert ratio["value"] == result["profile"]["ratio"] and ratio["measurement"] == "profile"
    memory = result["memory"]
    footprint = by_metric["rss_footprint_mb"][0]
    assert footprint["value"] == pytest.approx(
        (memory["peak_rss_kb"] - memory["rss_baseline_kb"]) / 1024)
    assert footprint["measurement"] == "memory" and footprint["unit"] == "MB"
    assert by_metric["init_ms"][0]["value"] == memory["init_ms"] > 0
    assert by_metric["size_bytes"][0]["value"] == model.stat().st_size
    assert by_metric["parameter_count"][0]["value"] == parameter_count(model)


def test_parameter_count_matches_the_keras_weights(tiny_models: dict) -> None:
    import keras

    net = keras.saving.load_model(tiny_models["keras"])
    # zero-initialised biases are dropped by the converter; kernels stay
    kernels = sum(int(np.prod(w.shape)) for w in net.weights if np.any(np.asarray(w)))
    count = parameter_count(tiny_models["convert_only"])
    assert count == parameter_count(tiny_models["w8_a8"])
    assert kernels <= count <= kernels + 16  # + a few shape constants (RESHAPE, EXPAND_DIMS)


def test_float16_weights_stay_static_for_the_delegate(tiny_models: dict, tmp_path: Path) -> None:
    """DEQUANTIZE of float16 weights is folded into its consumer's single-op model, so the consumer
    still has static weights and XNNPACK takes it, as in the whole model."""
    import keras

    sys.path.insert(0, str(ROOT / "bench"))
    from opsplit_ratio import convert

    path = tmp_path / "tiny_f16.tflite"
    path.write_bytes(convert(keras.saving.load_model(tiny_models["keras"]), "f16"))
    section = opsplit.profile_model(interpreter, str(path), FAST)
    assert section["status"] == "ok" and section["ops_failed"] == 0
    dequantize = [op for op in section["ops"] if op["op"] == "DEQUANTIZE"]
    assert dequantize and all(op["status"] == "skipped" for op in dequantize)
    assert section["ops_skipped"] == len(dequantize)
    heavy = [op for op in section["ops"] if op["op"] in ("CONV_2D", "FULLY_CONNECTED")]
    assert heavy and all(op["status"] == "ok" and op["delegate"] == "XNNPACK" for op in heavy)
    rows = op_split_rows(section, {"target": "host", "model": "tiny", "variant": "f16"})
    skipped = [r for r in rows if r["status"] == "skipped"]
    assert len(skipped) == len(dequantize) and all(r["value"] is None for r in skipped)
