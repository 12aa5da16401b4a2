"""Device-side measurements on loaded models (any backend): latency, outputs, loop rate, peak RSS.

Latency protocol: warm every model up (a count and a minimum time), then time the models
interleaved in shuffled rounds until each has both `runs` samples and `min_seconds` of them; raw
samples in µs plus a summary. Standard library + numpy only.
"""

from __future__ import annotations

import os
import random
import resource
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from environment import read_text

SUMMARY_QUANTILES = (0.10, 0.25, 0.50, 0.75, 0.90)


def run_until(invoke: Callable[[], None], runs: int, seconds: float,
              stretch: float = 1.0) -> List[float]:
    """Invoke until both `runs` calls and `seconds` have passed; samples in µs.

    `stretch` > 1 (test-only) multiplies each timed sample by exactly that factor: a known,
    injected slowdown. It scales the record rather than spinning after the invoke, because a spin
    perturbs the next invoke (measured: a 1.10 spin gave a 1.22 effective ratio), so the injected
    change would not be the stated one.
    """
    samples: List[float] = []
    clock = time.perf_counter_ns
    deadline = clock() + int(seconds * 1e9)
    scale = stretch / 1e3
    while len(samples) < runs or clock() < deadline:
        t0 = clock()
        invoke()
        samples.append((clock() - t0) * scale)
    return samples


def sample_stats(samples: List[float]) -> Dict[str, Any]:
    """median, p10, p90, IQR (µs) and n of raw samples (linear interpolation)."""
    import numpy as np

    if not samples:
        return {"median_us": None, "p10_us": None, "p90_us": None, "iqr_us": None, "n": 0}
    q10, q25, q50, q75, q90 = np.quantile(np.asarray(samples, dtype=float), SUMMARY_QUANTILES)
    return {"median_us": round(float(q50), 3), "p10_us": round(float(q10), 3),
            "p90_us": round(float(q90), 3), "iqr_us": round(float(q75 - q25), 3),
            "n": len(samples)}


def measure_latency(models: List[Any], spec: dict, stretch: float = 1.0) -> List[Dict[str, Any]]:
    """Warm up every model, then time them interleaved in shuffled rounds.

    spec: warmup_runs (10), warmup_seconds (0.5), runs (50), min_seconds (1.0), rounds (5).
    One entry per model, in order: {"threads", "samples_us", "median_us", "p10_us", "p90_us",
    "iqr_us", "n", "init_ms", "delegate", "delegated_nodes", "undelegated_ops"}.
    """
    for m in models:
        run_until(m.invoke, spec.get("warmup_runs", 10), spec.get("warmup_seconds", 0.5))
    rounds = max(1, int(spec.get("rounds", 5)))
    per_round_runs = -(-int(spec.get("runs", 50)) // rounds)
    per_round_seconds = float(spec.get("min_seconds", 1.0)) / rounds
    samples: Dict[int, List[float]] = {id(m): [] for m in models}
    rng = random.Random(0)
    for _ in range(rounds):
        order = list(models)
        rng.shuffle(order)
        for m in order:
            samples[id(m)] += run_until(m.invoke, per_round_runs, per_round_seconds, stretch)
    entries = []
    for m in models:
        entry: Dict[str, Any] = {"threads": m.threads,
                                 "samples_us": [round(s, 3) for s in samples[id(m)]]}
        entry.update(sample_stats(samples[id(m)]))
        entry["init_ms"] = round(m.init_ms, 3)
        entry.update(m.coverage)
        entries.append(entry)
    return entries


def run_outputs(model: Any, inputs_path: Path) -> Any:
    """Run every window of an .npy input file; the float outputs, one row per window."""
    import numpy as np

    windows = np.load(str(inputs_path))
    out = np.empty((len(windows),) + tuple(model.output["shape"][1:]), dtype=np.float32)
    for i, window in enumerate(windows):
        model.set_input(window)
        model.invoke()
        out[i] = model.output_value()[0]
    return out


def window_starts(series: Any, window: int) -> Any:
    """Start of every `window`-sample stretch of `series` without a NaN (NaN separates spans)."""
    import numpy as np

    bad = np.concatenate(([0], np.cumsum(np.isnan(series))))
    starts = np.arange(max(0, len(series) - window + 1))
    return starts[bad[starts + window] - bad[starts] == 0]


def run_series_outputs(models: List[Any], series_path: Path, window: int,
                       max_seconds: Optional[float] = None,
                       probe_seconds: float = 0.25) -> Tuple[Any, Dict[str, Any]]:
    """Slide a `window`-sample window over a 1-D .npy series, one prediction per start.

    NaN samples separate spans (one per house): no window crosses one. The first predictions
    (up to `probe_seconds`, at least one, on `models[0]`) time the loop; when the whole series
    would take longer than `max_seconds` at that rate, the rest is not run. The rest is cut into
    one contiguous chunk per model (interpreters of the same file), run in parallel threads: the
    runtime releases the GIL while it invokes. Returns (outputs or None, stats): stats has
    predictions, workers, seconds, predictions_per_second (all workers), estimated_seconds (one
    worker) and `refused` (a message, or None when every prediction ran).
    """
    import numpy as np

    series = np.load(str(series_path)).astype(np.float32).reshape(-1)
    starts = window_starts(series, window)
    first = models[0]
    out = np.empty((len(starts),) + tuple(first.output["shape"][1:]), dtype=np.float32)
    stats = {"predictions": len(starts), "window": window, "threads": first.threads,
             "workers": len(models), "seconds": 0.0, "predictions_per_second": None,
             "estimated_seconds": None, "max_seconds": max_seconds,
             "refused": None}  # type: Dict[str, Any]
    typed = hasattr(first, "typed")  # converted once for every window and every model (one file)
    data = first.typed(series) if typed else series
    started = time.perf_counter()
    probed = 0
    while probed < len(starts):
        _predict(first, data, typed, starts, out, window, probed, probed + 1)
        probed += 1
        if time.perf_counter() - started >= probe_seconds:
            break
    elapsed = time.perf_counter() - started
    stats["estimated_seconds"] = round(elapsed / max(probed, 1) * len(starts), 3)
    if max_seconds is not None and stats["estimated_seconds"] > max_seconds:
        stats["refused"] = (
            "{} predictions at {:.1f}/s would take ~{:.0f} s, over the limit of {:g} s: shorten "
            "the span (evaluation.days) or raise evaluation.max_seconds".format(
                len(starts), probed / elapsed, stats["estimated_seconds"], max_seconds))
        stats["seconds"] = round(elapsed, 6)
        stats["predictions_per_second"] = round(probed / elapsed, 3)
        return None, stats
    bounds = [probed + (len(starts) - probed) * k // len(models) for k in range(len(models) + 1)]
    with ThreadPoolExecutor(max_workers=len(models)) as pool:
        chunks = [pool.submit(_predict, model, data, typed, starts, out, window, low, high)
                  for model, low, high in zip(models, bounds, bounds[1:])]
        for chunk in chunks:
            chunk.result()  # re-raises a worker's error
    elapsed = time.perf_counter() - started
    stats["seconds"] = round(elapsed, 6)
    stats["predictions_per_second"] = round(len(starts) / elapsed, 3) if elapsed > 0 else None
    return out, stats


def _predict(model: Any, data: Any, typed: bool, starts: Any, out: Any, window: int, low: int,
             high: int) -> None:
    """out[i] = the model's output for the window at starts[i], for low <= i < high; `data` is
    the series, already in the input's dtype when `typed` (`model.typed`)."""
    set_input = model.set_typed_input if typed else model.set_input
    invoke, output_value = model.invoke, model.output_value
    for i in range(low, high):
        start = starts[i]
        set_input(data[start:start + window])
        invoke()
        out[i] = output_value()[0]


def series_workers(requested: Optional[int]) -> int:
    """Interpreters for a series: `requested`, else one per CPU this process may use (≤ 4)."""
    if requested:
        return max(1, int(requested))
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 4))


def loop_rate(model: Any, spec: dict, seed: int = 0) -> Dict[str, Any]:
    """Iterations per second of set input + invoke + read output (an application's loop)."""
    import numpy as np

    shape = (16,) + tuple(model.input["shape"][1:])
    windows = np.random.RandomState(seed).standard_normal(shape).astype("float32")
    runs, seconds = int(spec.get("runs", 50)), float(spec.get("min_seconds", 1.0))
    count, started = 0, time.perf_counter()
    while count < runs or time.perf_counter() - started < seconds:
        model.set_input(windows[count % len(windows)][None])
        model.invoke()
        model.output_value()
        count += 1
    elapsed = time.perf_counter() - started
    return {"threads": model.threads, "iterations": count, "seconds": round(elapsed, 6),
            "rate_hz": round(count / elapsed, 3) if elapsed else None}


def peak_rss_kb() -> int:
    """Peak resident set size of this process (VmHWM), in KiB."""
    status = read_text("/proc/self/status") or ""
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
