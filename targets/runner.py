#!/usr/bin/env python3
"""Device-side runner: read one job JSON, measure one model, write one result JSON.

Runs on every target (the local host in a fresh process, remote devices over SSH), so a number means
the same thing everywhere. Standard library + numpy + a TFLite runtime only.

    python3 runner.py JOB.json
"""

from __future__ import annotations

import json
import os
import platform
import random
import resource
import socket
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

SCHEMA_VERSION = 1
RUNTIME_ORDER = ("ai_edge_litert", "tflite_runtime", "tensorflow")


class RunnerError(Exception):
    """A failure with a machine-readable kind (runtime_missing, model_load, unsupported_op, ...)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


# --------------------------------------------------------------------------- environment

def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (x86 'model name', Arm 'Model'/'Hardware'), else platform."""
    info = _read("/proc/cpuinfo") or ""
    for key in ("model name", "Model", "Hardware", "cpu model"):
        for line in info.splitlines():
            if line.split(":")[0].strip() == key:
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def environment() -> dict[str, Any]:
    """What a number depends on: device, CPU, OS, Python, governor, temperature."""
    temp = _read("/sys/class/thermal/thermal_zone0/temp")
    try:
        import numpy
        numpy_version = numpy.__version__
    except ImportError:
        numpy_version = None
    return {
        "hostname": socket.gethostname(),
        "arch": platform.machine(),
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "temperature_c": round(int(temp) / 1000, 1) if temp and temp.lstrip("-").isdigit() else None,
        "os": platform.platform(),
        "python": platform.python_version(),
        "numpy": numpy_version,
    }


# --------------------------------------------------------------------------- runtime

def import_runtime(preferred: str = "auto") -> tuple[str, str, Any]:
    """Import a TFLite runtime: ai_edge_litert, else tflite_runtime, else tensorflow.lite."""
    order = RUNTIME_ORDER if preferred in ("auto", None) else (preferred,)
    errors = []
    for name in order:
        try:
            if name == "ai_edge_litert":
                import ai_edge_litert
                from ai_edge_litert import interpreter as module
                version = getattr(ai_edge_litert, "__version__", "?")
            elif name == "tflite_runtime":
                import tflite_runtime
                from tflite_runtime import interpreter as module
                version = getattr(tflite_runtime, "__version__", "?")
            elif name == "tensorflow":
                import tensorflow as tf
                module, version = tf.lite, tf.__version__
            else:
                raise ImportError(f"unknown TFLite runtime {name!r}")
            return name, version, module
        except ImportError as exc:  # try the next one
            errors.append(f"{name}: {exc}")
    raise RunnerError("runtime_missing", f"no TFLite runtime for {sys.executable} (tried "
                      f"{', '.join(order)}); fix: {sys.executable} -m pip install ai-edge-litert")


def delegate_coverage(ops: list[dict]) -> dict[str, Any]:
    """Which nodes a delegate took, from the interpreter's node list.

    The node list keeps the original nodes after delegation and appends one DELEGATE node per
    delegated partition. Walking back from the graph's consumers, a tensor produced by a DELEGATE
    node needs no original node; every original node still needed is executed undelegated.
    """
    delegates = [op for op in ops if op["op_name"] == "DELEGATE"]
    originals = [op for op in ops if op["op_name"] != "DELEGATE"]
    producer = {}
    for op in originals:
        for t in op["outputs"]:
            producer[int(t)] = op
    delegated_out = {int(t): op for op in delegates for t in op["outputs"]}
    consumed = {int(t) for op in ops for t in op["inputs"]}
    # graph outputs: tensors produced but never consumed
    needed = [t for t in list(producer) + list(delegated_out) if t not in consumed]
    seen, executed = set(), {}
    while needed:
        t = needed.pop()
        if t in seen:
            continue
        seen.add(t)
        op = delegated_out.get(t) or producer.get(t)
        if op is None:
            continue
        if op["op_name"] != "DELEGATE":
            executed[op["index"]] = op["op_name"]
        needed.extend(int(i) for i in op["inputs"] if int(i) >= 0)
    return {"delegate": "XNNPACK" if delegates else "none", "delegated_nodes": len(delegates),
            "undelegated_ops": sorted(executed.values())}


class Model:
    """One interpreter instance at a fixed thread count."""

    def __init__(self, module: Any, path: str, threads: int, runtime: str) -> None:
        kwargs: dict[str, Any] = {"model_path": path, "num_threads": threads}
        started = time.perf_counter()
        try:
            self.interp = module.Interpreter(**kwargs)
            self.interp.allocate_tensors()
        except ValueError as exc:
            kind = "unsupported_op" if "op" in str(exc).lower() else "model_load"
            raise RunnerError(kind, f"{path}: {exc}") from exc
        except RuntimeError as exc:
            raise RunnerError("model_load", f"{path}: {exc}") from exc
        self.init_ms = (time.perf_counter() - started) * 1e3
        self.threads = threads
        self.input = self.interp.get_input_details()[0]
        self.output = self.interp.get_output_details()[0]
        try:
            ops = self.interp._get_ops_details()
        except AttributeError:  # very old runtimes
            ops = []
        self.coverage = delegate_coverage(ops)

    def set_input(self, x: Any) -> None:
        """Set the (float) input, quantizing it when the model has integer input."""
        import numpy as np

        dtype = self.input["dtype"]
        x = np.asarray(x, dtype=np.float32).reshape(self.input["shape"])
        if dtype in (np.int8, np.uint8, np.int16):
            scale, zero = self.input["quantization"]
            info = np.iinfo(dtype)
            x = np.clip(np.round(x / scale + zero), info.min, info.max)
        self.interp.set_tensor(self.input["index"], x.astype(dtype))

    def output_value(self) -> Any:
        """The output as float (dequantized when integer)."""
        import numpy as np

        y = self.interp.get_tensor(self.output["index"]).astype(np.float32)
        if self.output["dtype"] in (np.int8, np.uint8, np.int16):
            scale, zero = self.output["quantization"]
            y = (y - zero) * scale
        return y


# --------------------------------------------------------------------------- measurements

def _run_until(invoke: Callable[[], None], runs: int, seconds: float) -> list[float]:
    """Invoke until both `runs` calls and `seconds` have passed; samples in µs."""
    samples: list[float] = []
    clock = time.perf_counter_ns
    deadline = clock() + int(seconds * 1e9)
    while len(samples) < runs or clock() < deadline:
        t0 = clock()
        invoke()
        samples.append((clock() - t0) / 1e3)
    return samples


def measure_latency(models: list[Model], spec: dict) -> list[dict[str, Any]]:
    """Warm up every configuration, then time them interleaved in shuffled rounds."""
    for m in models:
        _run_until(m.interp.invoke, spec.get("warmup_runs", 10), spec.get("warmup_seconds", 0.5))
    rounds = max(1, int(spec.get("rounds", 5)))
    per_round_runs = -(-int(spec.get("runs", 50)) // rounds)
    per_round_seconds = float(spec.get("min_seconds", 1.0)) / rounds
    samples: dict[int, list[float]] = {id(m): [] for m in models}
    rng = random.Random(0)
    for _ in range(rounds):
        order = list(models)
        rng.shuffle(order)
        for m in order:
            samples[id(m)] += _run_until(m.interp.invoke, per_round_runs, per_round_seconds)
    return [{"threads": m.threads, "samples_us": [round(s, 3) for s in samples[id(m)]],
             "init_ms": round(m.init_ms, 3), **m.coverage} for m in models]


def peak_rss_kb() -> int:
    """Peak resident set size of this process (VmHWM), in KiB."""
    status = _read("/proc/self/status") or ""
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def run_outputs(model: Model, inputs_path: Path) -> Any:
    """Run every window of an .npy input file; return the float outputs, one row per window."""
    import numpy as np

    windows = np.load(inputs_path)
    out = np.empty((len(windows),) + tuple(model.output["shape"][1:]), dtype=np.float32)
    for i, window in enumerate(windows):
        model.set_input(window)
        model.interp.invoke()
        out[i] = model.output_value()[0]
    return out


# --------------------------------------------------------------------------- job

def run_job(job: dict, base: Path) -> dict[str, Any]:
    """Execute one job; every failure becomes an error document, never a traceback on stdout."""
    import numpy as np

    if job.get("runtime") == "onnxruntime":  # shipped beside this file: ONNX Runtime jobs
        from ort_runner import run_job as run_ort_job
        return run_ort_job(job, base, sys.modules[__name__])
    if job.get("delegate"):  # shipped beside this file: external delegates (Edge TPU)
        from delegate_runner import run_job as run_delegate_job
        return run_delegate_job(job, base, sys.modules[__name__])
    result: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "job_id": job["job_id"],
                              "status": "ok", "error": None, "latency": [], "outputs": None,
                              "memory": None, "profile": None}
    rss_after_import = peak_rss_kb()
    result["environment"] = environment()
    name, version, module = import_runtime(job.get("runtime", "auto"))
    result["runtime"] = {"name": name, "version": version}
    rss_after_runtime = peak_rss_kb()
    model_path = str(base / job["model"])
    measure = job.get("measure", {})
    latency = measure.get("latency") or {}
    threads = list(latency.get("threads") or [1])

    first = Model(module, model_path, threads[0], name)
    first.set_input(np.random.default_rng(0).standard_normal(first.input["shape"]))
    first.interp.invoke()
    if measure.get("memory"):
        result["memory"] = {"rss_baseline_kb": rss_after_runtime,
                            "rss_before_runtime_kb": rss_after_import,
                            "peak_rss_kb": peak_rss_kb(), "init_ms": round(first.init_ms, 3),
                            "model_bytes": os.path.getsize(model_path)}
    models = [first]
    for t in threads[1:]:
        m = Model(module, model_path, t, name)
        m.set_input(np.random.default_rng(0).standard_normal(m.input["shape"]))
        models.append(m)
    if measure.get("outputs"):
        out_rel = f"results/{job['job_id']}.outputs.npy"
        np.save(base / out_rel, run_outputs(first, base / measure["outputs"]["inputs"]))
        result["outputs"] = out_rel
    if latency:
        result["latency"] = measure_latency(models, latency)
    if measure.get("profile"):
        from opsplit import profile_model  # shipped beside this file

        result["profile"] = profile_model(module, model_path, measure["profile"])
    return result


def main(argv: list[str]) -> int:
    """Entry point: `runner.py JOB.json` (paths in the job are relative to the job's work dir)."""
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    job_path = Path(argv[1]).resolve()
    job = json.loads(job_path.read_text())
    base = Path(job.get("base", job_path.parent.parent)).resolve()
    out = base / job["result"]
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        result = run_job(job, base)
    except RunnerError as exc:
        result = {"schema_version": SCHEMA_VERSION, "job_id": job["job_id"], "status": "error",
                  "error": {"kind": exc.kind, "message": str(exc)}, "environment": environment()}
    except Exception as exc:  # noqa: BLE001 - any crash must become a result document
        result = {"schema_version": SCHEMA_VERSION, "job_id": job["job_id"], "status": "error",
                  "error": {"kind": "runner_crash", "message": f"{type(exc).__name__}: {exc}",
                            "traceback": traceback.format_exc()}, "environment": environment()}
    tmp = out.with_suffix(".part")
    tmp.write_text(json.dumps(result))
    os.replace(tmp, out)
    return 0 if result["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
