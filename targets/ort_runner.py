"""Device-side: run a job with ONNX Runtime instead of a TFLite runtime (`"runtime": "onnxruntime"`).

Imported by runner.py only for such jobs; uses the runner's own measurement helpers (warm-up,
shuffled rounds over thread counts, raw samples in µs, outputs, peak RSS), so an ONNX Runtime
number means the same thing as a TFLite one. Standard library + numpy + onnxruntime only.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any


def import_onnxruntime(runner: Any) -> tuple[str, Any]:
    """(version, module) of onnxruntime, or a RunnerError with the fix.

    The kind is `onnxruntime_missing`, not `runtime_missing`: the orchestrator stops a target after
    `runtime_missing`, and the target's TFLite jobs must still run without onnxruntime.
    """
    try:
        import onnxruntime
    except ImportError as exc:
        raise runner.RunnerError("onnxruntime_missing", f"onnxruntime is not installed for "
                                 f"{sys.executable} ({exc}); fix: {sys.executable} -m pip install "
                                 "onnxruntime") from exc
    return onnxruntime.__version__, onnxruntime


class OrtModel:
    """One ONNX Runtime session at a fixed thread count, shaped like runner.Model."""

    def __init__(self, ort: Any, path: str, threads: int, runner: Any) -> None:
        import numpy as np

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        started = time.perf_counter()
        try:
            self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
            raise runner.RunnerError("model_load", f"{path}: {exc}") from exc
        self.init_ms = (time.perf_counter() - started) * 1e3
        self.threads = threads
        first_in, first_out = self.session.get_inputs()[0], self.session.get_outputs()[0]
        self.input_name = first_in.name
        self.input = {"shape": [d if isinstance(d, int) else 1 for d in first_in.shape],
                      "dtype": np.float32}
        self.output = {"shape": [d if isinstance(d, int) else 1 for d in first_out.shape],
                       "dtype": np.float32}
        self.feed = {self.input_name: np.zeros(self.input["shape"], dtype=np.float32)}
        self.result: Any = None
        self.interp = self  # runner.measure_latency times `model.interp.invoke`
        provider = self.session.get_providers()[0]
        self.coverage = {"delegate": provider, "delegated_nodes": None, "undelegated_ops": []}

    def invoke(self) -> None:
        self.result = self.session.run(None, self.feed)

    def set_input(self, x: Any) -> None:
        import numpy as np

        self.feed = {self.input_name: np.asarray(x, dtype=np.float32).reshape(self.input["shape"])}

    def output_value(self) -> Any:
        import numpy as np

        return np.asarray(self.result[0], dtype=np.float32)


def run_job(job: dict, base: Path, runner: Any) -> dict[str, Any]:
    """Execute one onnxruntime job; failures are the runner's RunnerError."""
    import numpy as np

    result: dict[str, Any] = {"schema_version": runner.SCHEMA_VERSION, "job_id": job["job_id"],
                              "status": "ok", "error": None, "latency": [], "outputs": None,
                              "memory": None, "profile": None}
    rss_after_import = runner.peak_rss_kb()
    result["environment"] = runner.environment()
    version, ort = import_onnxruntime(runner)
    result["runtime"] = {"name": "onnxruntime", "version": version}
    rss_after_runtime = runner.peak_rss_kb()
    model_path = str(base / job["model"])
    if not model_path.endswith(".onnx"):
        raise runner.RunnerError("model_load", f"{job['model']}: onnxruntime runs .onnx models")
    measure = job.get("measure", {})
    latency = measure.get("latency") or {}
    threads = list(latency.get("threads") or [1])
    rng = np.random.default_rng(0)
    first = OrtModel(ort, model_path, threads[0], runner)
    first.set_input(rng.standard_normal(first.input["shape"]))
    first.invoke()
    if measure.get("memory"):
        result["memory"] = {"rss_baseline_kb": rss_after_runtime,
                            "rss_before_runtime_kb": rss_after_import,
                            "peak_rss_kb": runner.peak_rss_kb(), "init_ms": round(first.init_ms, 3),
                            "model_bytes": os.path.getsize(model_path)}
    models = [first]
    for t in threads[1:]:
        m = OrtModel(ort, model_path, t, runner)
        m.set_input(rng.standard_normal(m.input["shape"]))
        models.append(m)
    if measure.get("outputs"):
        out_rel = f"results/{job['job_id']}.outputs.npy"
        np.save(base / out_rel, runner.run_outputs(first, base / measure["outputs"]["inputs"]))
        result["outputs"] = out_rel
    if latency:
        result["latency"] = runner.measure_latency(models, latency)
    return result
