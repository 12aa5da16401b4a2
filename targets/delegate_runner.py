"""Device-side: run a job whose model needs an external delegate (the Coral Edge TPU).

Imported by runner.py only when the job has a `delegate` entry:
    {"delegate": {"name": "edgetpu", "library": "libedgetpu.so.1", "options": {}}, "loop_rate": true}
The delegate is loaded with the TFLite runtime's own `load_delegate`; a library or device that is
missing is a `device_missing` error with the fix. Latency is the `invoke()` time of the model (the
same shuffled-rounds measurement as every other job); the Python loop rate (quantize input +
invoke + dequantize output, as an application loop does) is reported separately as `loop_rate`.
Standard library + numpy + a TFLite runtime only.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

DEVICE_FIX = {
    "edgetpu": "install the Edge TPU runtime (`sudo apt-get install libedgetpu1-std` from the "
               "Coral apt repository), plug in the Coral USB Accelerator or use the Dev Board, and "
               "check the device node (/dev/apex_0 for PCIe/M.2, lsusb shows 18d1:9302 or "
               "1a6e:089a for USB)",
}


def _load_delegate(module: Any, library: str, options: dict | None) -> Any:
    load = getattr(module, "load_delegate", None)
    if load is None:  # tensorflow.lite keeps it under experimental
        load = getattr(getattr(module, "experimental", None), "load_delegate", None)
    if load is None:
        raise AttributeError("this TFLite runtime has no load_delegate")
    return load(library, options or {})


def run_job(job: dict, base: Path, runner: Any) -> dict[str, Any]:
    """Execute one delegate job with the runner module's helpers; errors are RunnerError."""
    import numpy as np

    spec = job["delegate"]
    name, library = spec.get("name", "delegate"), spec["library"]
    result: dict[str, Any] = {"schema_version": runner.SCHEMA_VERSION, "job_id": job["job_id"],
                              "status": "ok", "error": None, "latency": [], "outputs": None,
                              "memory": None, "profile": None}
    rss_after_import = runner.peak_rss_kb()
    result["environment"] = runner.environment()
    rt_name, version, module = runner.import_runtime(job.get("runtime", "auto"))
    result["runtime"] = {"name": rt_name, "version": version}
    rss_after_runtime = runner.peak_rss_kb()
    model_path = str(base / job["model"])
    try:
        delegate = _load_delegate(module, library, spec.get("options"))
    except (ValueError, OSError, RuntimeError, AttributeError) as exc:
        raise runner.RunnerError("device_missing", f"{name} delegate {library} cannot be loaded "
                                 f"with {rt_name} {version}: {exc}; fix: "
                                 f"{DEVICE_FIX.get(name, 'install the delegate library')}") from exc

    class DelegateModel(runner.Model):
        """runner.Model with the delegate applied (threads do not matter to the accelerator)."""

        def __init__(self) -> None:  # noqa: D107 - same attributes as runner.Model
            started = time.perf_counter()
            try:
                self.interp = module.Interpreter(model_path=model_path,
                                                 experimental_delegates=[delegate])
                self.interp.allocate_tensors()
            except (ValueError, RuntimeError) as exc:
                raise runner.RunnerError("model_load", f"{model_path} with {library}: {exc}") \
                    from exc
            self.init_ms = (time.perf_counter() - started) * 1e3
            self.threads = 1
            self.input = self.interp.get_input_details()[0]
            self.output = self.interp.get_output_details()[0]
            try:
                ops = self.interp._get_ops_details()
            except AttributeError:
                ops = []
            on_device = [op for op in ops if op["op_name"] in ("DELEGATE",)
                         or "edgetpu" in op["op_name"].lower()]
            cpu_ops = sorted(op["op_name"] for op in ops if op not in on_device)
            self.coverage = {"delegate": name, "delegated_nodes": len(on_device),
                             "undelegated_ops": cpu_ops}

    model = DelegateModel()
    rng = np.random.default_rng(0)
    model.set_input(rng.standard_normal(model.input["shape"]))
    model.interp.invoke()
    measure = job.get("measure", {})
    latency = measure.get("latency") or {}
    if measure.get("memory"):
        result["memory"] = {"rss_baseline_kb": rss_after_runtime,
                            "rss_before_runtime_kb": rss_after_import,
                            "peak_rss_kb": runner.peak_rss_kb(), "init_ms": round(model.init_ms, 3),
                            "model_bytes": os.path.getsize(model_path)}
    if measure.get("outputs"):
        out_rel = f"results/{job['job_id']}.outputs.npy"
        np.save(base / out_rel, runner.run_outputs(model, base / measure["outputs"]["inputs"]))
        result["outputs"] = out_rel
    if latency:
        result["latency"] = runner.measure_latency([model], latency)
    if job.get("loop_rate"):
        result["loop_rate"] = loop_rate(model, latency, rng)
    return result


def loop_rate(model: Any, spec: dict, rng: Any) -> dict[str, Any]:
    """Iterations per second of quantize input + invoke + dequantize output (an app's loop)."""
    windows = rng.standard_normal((16, *model.input["shape"][1:])).astype("float32")
    runs, seconds = int(spec.get("runs", 50)), float(spec.get("min_seconds", 1.0))
    count, started = 0, time.perf_counter()
    while count < runs or time.perf_counter() - started < seconds:
        model.set_input(windows[count % len(windows)][None])
        model.interp.invoke()
        model.output_value()
        count += 1
    elapsed = time.perf_counter() - started
    return {"threads": model.threads, "iterations": count, "seconds": round(elapsed, 6),
            "rate_hz": round(count / elapsed, 3) if elapsed else None}
