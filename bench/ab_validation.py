#!/usr/bin/env python3
"""Validate the A/B latency re-measurement (`harness.remeasure`) on THIS machine, end to end.

Every trial is one real `remeasure()` call on the `host` target of an inventory written to a temp
dir: real fresh runner processes, a real model, a fresh SequentialAB (default threshold +10 %,
alpha 0.015, looks 6/10/15/20/30). Modes:

  aa     A/A: the same artifact on both sides; counts false REGRESSED (target <= 2 %)
  ab     the candidate slowed down by 10 % with the runner's test-only `stretch` (1.10);
         counts REGRESSED (target >= 95 %)
  model  a real model change: the base CNN against a wider one (more filters), both built with
         the NILM model code and converted to float .tflite by harness.artifacts.convert; first
         their true ratio from --ratio-pairs pairs of fresh processes, then the detection rate
  cost   where the time of one A/B process goes: interpreter start, numpy + runtime import, and
         a whole runner process (fresh processes, this machine)

The model (--arch) is a seq2point-sized float NILM CNN by default (`seq2point`: the NILM code's
Conv1D + max-pool stack with the layer widths of Zhang et al.'s seq2point, filters
30/30/40/50/50, kernel 5, dense 1024, window 599; 3.8 MB, ~0.2 ms per invoke here), or the smoke
suite's float CNN (`smoke`: suites/smoke.yaml, filters 8/8, kernel 9, dense 16; ~20 us per
invoke, whose per-process medians are bimodal and noisier here). The real model change widens
every layer (seq2point 36/36/48/60/60; smoke 16/16). Models are built once into bench/.cache/ab/.

    .venv/bin/python bench/ab_validation.py --mode aa --trials 100 --out docs/ab_validation.json
    .venv/bin/python bench/ab_validation.py --mode ab --trials 100 --out docs/ab_validation.json
    .venv/bin/python bench/ab_validation.py --mode model --trials 30 --out docs/ab_validation.json
    .venv/bin/python bench/ab_validation.py --mode cost --out docs/ab_validation.json

Each mode's results are merged into --out (one JSON for all modes): trials, decision counts,
rates with 95 % Clopper-Pearson intervals, median pairs used, seconds per row (median, max) and
per pair, the machine and its load average before and after. Run on a quiet machine: other
load inflates the spread between processes, which costs pairs (and UNKNOWNs), not false alarms.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.remeasure import PROTOCOL, ABSeries, remeasure  # noqa: E402
from harness.sequential_ab import DEFAULT_ALPHA, DEFAULT_LOOKS, DEFAULT_THRESHOLD  # noqa: E402

CACHE = ROOT / "bench" / ".cache" / "ab"
WINDOW = 599
ARCHS = {
    "smoke": {"filters": [8, 8], "kernel_size": 9, "dense": 16},
    "seq2point": {"filters": [30, 30, 40, 50, 50], "kernel_size": 5, "dense": 1024},
}
WIDER = {"smoke": [16, 16], "seq2point": [36, 36, 48, 60, 60]}    # the "real model change"
STRETCH = 1.10
TARGETS = {"aa_regressed_max": 0.02, "ab_regressed_min": 0.95, "seconds_per_row_max": 60.0}


# --------------------------------------------------------------------------- models

def build_model(arch: str, filters: list[int]) -> Path:
    """The float .tflite of a NILM CNN (`harness.workloads.nilm.models.build_cnn`, exported
    with batch 1, converted by `harness.artifacts.convert`); cached by its spec."""
    spec = dict(ARCHS[arch], filters=list(filters))
    name = f"cnn_{'-'.join(map(str, filters))}_k{spec['kernel_size']}_d{spec['dense']}"
    path = CACHE / f"{name}.tflite"
    if path.is_file():
        return path
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    from harness.artifacts.convert import convert, converter_factory, export_batch1
    from harness.config.suite import CnnSpec
    from harness.workloads.nilm.models import build_cnn, export_model

    keras.utils.set_random_seed(0)
    model = export_model(build_cnn(WINDOW, CnnSpec(**spec)), WINDOW)
    folder = CACHE / name
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / "model.keras")
    factory = converter_factory(export_batch1(folder / "model.keras", folder / "saved", None))
    tmp = path.with_suffix(".part")
    tmp.write_bytes(convert(factory, "convert_only", None))
    tmp.replace(path)
    return path


# --------------------------------------------------------------------------- the machine

def write_inventory(folder: Path) -> Path:
    """An inventory with one local `host` target working in `folder`."""
    path = folder / "inventory.yaml"
    path.write_text(f"targets:\n  host:\n    kind: cpu\n    workdir: {folder / 'host'}\n")
    return path


def machine() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor())
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "os": platform.platform(), "loadavg": list(os.getloadavg())}


def proportion(k: int, n: int) -> dict[str, Any]:
    """k of n with a 95 % Clopper-Pearson interval."""
    from scipy.stats import binomtest

    if n == 0:
        return {"k": 0, "n": 0, "rate": None, "ci95": None}
    ci = binomtest(k, n).proportion_ci(0.95)
    return {"k": k, "n": n, "rate": round(k / n, 4), "ci95": [round(ci.low, 4), round(ci.high, 4)]}


# --------------------------------------------------------------------------- trials

def trials(base: Path, candidate: Path, n: int, inventory: Path, stretch: float = 1.0,
           label: str = "") -> dict[str, Any]:
    """n independent remeasure() runs of one series; decisions, pairs, seconds."""
    records = []
    for i in range(n):
        series = ABSeries("host", "cnn", "convert_only", "auto", 1, base, candidate)
        started = time.monotonic()
        result = remeasure([series], inventory_path=inventory, stretch=stretch)[series.key]
        seconds = time.monotonic() - started
        decision = result.decision.value if result.decision else "pending"
        records.append({"decision": decision, "pairs": result.pairs,
                        "ratio": round(result.ratio, 4), "log_ratio_sd": log_ratio_sd(result),
                        "seconds": round(seconds, 2), "reason": getattr(result, "reason", None)})
        print(f"{label} trial {i + 1}/{n}: {decision:9s} ratio {result.ratio:.3f} "
              f"[{result.ci_low:.3f}, {result.ci_high:.3f}] {result.pairs} pairs {seconds:.1f} s",
              flush=True)
    return summarize(records)


def log_ratio_sd(result: Any) -> float | None:
    """The sd of the paired log-ratios behind a result, from its interval (the machine's noise)."""
    from scipy import stats

    if result.pairs < 2 or not result.ci_high > result.ci_low > 0:
        return None
    t = stats.t.isf((1 - result.confidence) / 2, result.pairs - 1)
    half = (math.log(result.ci_high) - math.log(result.ci_low)) / 2
    return round(float(half / t * math.sqrt(result.pairs)), 4)


def summarize(records: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(records)
    counts: dict[str, int] = {}
    for r in records:
        counts[r["decision"]] = counts.get(r["decision"], 0) + 1
    seconds = [r["seconds"] for r in records]
    pairs = [r["pairs"] for r in records]
    sds = [r["log_ratio_sd"] for r in records if r["log_ratio_sd"] is not None]
    return {
        "trials": n, "counts": counts,
        "regressed": proportion(counts.get("REGRESSED", 0), n),
        "same": proportion(counts.get("SAME", 0), n),
        "unknown": proportion(counts.get("UNKNOWN", 0), n),
        "median_pairs": statistics.median(pairs) if pairs else None,
        "max_pairs": max(pairs) if pairs else None,
        "seconds_per_row": {"median": round(statistics.median(seconds), 1) if seconds else None,
                            "max": round(max(seconds), 1) if seconds else None},
        "seconds_per_pair": round(sum(seconds) / max(1, sum(pairs)), 3),
        "median_log_ratio_sd": statistics.median(sds) if sds else None,
        "geomean_ratio": round(math.exp(statistics.fmean(math.log(r["ratio"]) for r in records
                                                         if r["ratio"] > 0)), 4)
        if records else None,
        "records": records,
    }


def true_ratio(base: Path, candidate: Path, pairs: int, inventory: Path) -> dict[str, Any]:
    """The candidate's ratio to the base from many fresh-process pairs (random order): geometric
    mean of B/A with a 95 % t-interval, through remeasure() with a budget of exactly `pairs`."""
    from scipy import stats

    series = ABSeries("host", "cnn", "convert_only", "auto", 1, base, candidate)
    # one look at the very end: the series runs all `pairs` pairs, nothing stops it early
    result = remeasure([series], inventory_path=inventory, looks=(pairs,), alpha=0.05,
                       threshold=0.5)[series.key]
    # the interval above is one-sided at 0.05 (two-sided 90 %); recompute a 95 % one
    half = (math.log(result.ci_high) - math.log(result.ci_low)) / 2
    t90, t95 = stats.t.ppf(0.95, result.pairs - 1), stats.t.ppf(0.975, result.pairs - 1)
    centre = math.log(result.ratio)
    return {"pairs": result.pairs, "ratio": round(result.ratio, 4),
            "ci95": [round(math.exp(centre - half * t95 / t90), 4),
                     round(math.exp(centre + half * t95 / t90), 4)],
            "log_ratio_sd": log_ratio_sd(result),
            "seconds": result.seconds}


# --------------------------------------------------------------------------- process cost

def timed(argv: list[str], n: int, cwd: Path | None = None) -> float:
    """Median wall seconds of n fresh processes."""
    times = []
    for _ in range(n):
        started = time.perf_counter()
        subprocess.run(argv, cwd=cwd, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return round(statistics.median(times), 3)


def cost(model: Path, n: int, folder: Path) -> dict[str, Any]:
    """Where the time of one A/B process goes (median of n fresh processes each)."""
    from harness.remeasure import job_document

    python = sys.executable
    work = folder / "cost"
    (work / "jobs").mkdir(parents=True, exist_ok=True)
    document = job_document("cost", "cost", str(model.resolve()), "auto", 1)
    (work / "jobs" / "cost.json").write_text(json.dumps(document))
    runner = str(ROOT / "targets" / "runner.py")
    out = {
        "python_start_s": timed([python, "-c", "pass"], n),
        "numpy_import_s": timed([python, "-c", "import numpy"], n),
        "numpy_and_runtime_import_s": timed(
            [python, "-c", "import numpy; from ai_edge_litert import interpreter"], n),
        "runner_process_s": timed([python, runner, "jobs/cost.json"], n, cwd=work),
        "protocol_minimum_s": round(PROTOCOL["warmup_seconds"] + PROTOCOL["min_seconds"], 3),
        "processes": n,
    }
    out["fixed_cost_per_process_s"] = round(out["runner_process_s"] -
                                            out["protocol_minimum_s"], 3)
    out["driver_process_s"] = driver_process(model, n, folder)
    out["driver_overhead_per_process_s"] = round(out["driver_process_s"] -
                                                 out["runner_process_s"], 3)
    return out


def driver_process(model: Path, n: int, folder: Path) -> float:
    """Median wall seconds of one A/B process as the driver runs it: job document put on the
    target, the runner through the transport, the result fetched and checked
    (`runner_exec.run_document` on a local `host` target)."""
    from harness.artifacts.cache import sha256_file
    from harness.config.inventory import Target
    from harness.devices import runner_exec
    from harness.devices.base import TargetContext
    from harness.remeasure import job_document
    from harness.transport import LocalTransport

    ctx = TargetContext("host", Target(kind="cpu"), LocalTransport("host", folder / "device"),
                        None, folder / "local", folder / "cache")  # type: ignore[arg-type]
    ctx.ensure_runner()
    remote = ctx.push(model, sha256_file(model), "tflite")
    times = []
    for i in range(n):
        document = job_document(f"cost-{i}", f"cost/{i}", remote, "auto", 1)
        started = time.perf_counter()
        runner_exec.run_document(ctx, document)
        times.append(time.perf_counter() - started)
    return round(statistics.median(times), 3)


# --------------------------------------------------------------------------- main

def merge(out: Path, mode: str, section: dict[str, Any], common: dict[str, Any]) -> None:
    """Merge one mode's results into the JSON file (the other modes are kept)."""
    data = json.loads(out.read_text()) if out.is_file() else {}
    data.update({k: v for k, v in common.items() if k != "machine"})
    data.setdefault("modes", {})[mode] = dict(section, machine=common["machine"])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["aa", "ab", "model", "cost"], required=True)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--arch", choices=sorted(ARCHS), default="seq2point")
    parser.add_argument("--ratio-pairs", type=int, default=40,
                        help="model mode: pairs of fresh processes for the true ratio")
    parser.add_argument("--out", type=Path, default=None, help="merge the results into this JSON")
    args = parser.parse_args(argv)

    base = build_model(args.arch, ARCHS[args.arch]["filters"])
    started_load = list(os.getloadavg())
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ab-validation-") as tmp:
        inventory = write_inventory(Path(tmp))
        if args.mode == "aa":
            section = trials(base, base, args.trials, inventory, label="A/A")
        elif args.mode == "ab":
            section = trials(base, base, args.trials, inventory, stretch=STRETCH,
                             label=f"A/B x{STRETCH}")
            section["stretch"] = STRETCH
        elif args.mode == "model":
            wider = build_model(args.arch, WIDER[args.arch])
            ratio = true_ratio(base, wider, args.ratio_pairs, inventory)
            print(f"true ratio {wider.name} / {base.name}: {ratio}", flush=True)
            section = trials(base, wider, args.trials, inventory, label="model")
            section.update(candidate=wider.name, candidate_filters=WIDER[args.arch],
                           true_ratio=ratio)
        else:
            section = cost(base, min(args.trials, 20), Path(tmp))
    section.update(seconds_total=round(time.monotonic() - started, 1), model=base.name,
                   arch=args.arch, architecture=ARCHS[args.arch], window=WINDOW)
    common = {"protocol": PROTOCOL, "threshold": DEFAULT_THRESHOLD,
              "alpha": DEFAULT_ALPHA, "looks": list(DEFAULT_LOOKS), "targets": TARGETS,
              "machine": dict(machine(), loadavg_before=started_load)}
    summary = {k: v for k, v in section.items() if k != "records"}
    print(json.dumps(summary, indent=1))
    if args.out:
        merge(args.out, args.mode, section, common)
    return 0


if __name__ == "__main__":
    sys.exit(main())
