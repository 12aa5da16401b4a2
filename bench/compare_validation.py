#!/usr/bin/env python3
"""Validate the regression verdict on THIS machine with real latency samples.

1. Builds a small seq2point-style CNN .tflite once (tensorflow; cached in bench/.cache/).
2. Collects N real, independent runs: each run is a fresh `targets/runner.py` process with the
   harness measurement protocol (warm-up, shuffled rounds), ~100 samples per run.
3. For every pair of runs (baseline = the earlier, current = the later; 20 runs -> 190 pairs) turns
   both result documents into tidy rows with the harness's own code (harness.results.rows) and
   calls harness.compare.compare_runs:
     - unscaled:             fraction of pairs flagged as a regression   (target <= 2 %)
     - current x 1.10:       fraction of pairs flagged as a regression   (target >= 95 %)
   and prints the run-to-run noise that decides whether the targets are reachable here.

    .venv/bin/python bench/compare_validation.py [--runs 20] [--pool DIR] [--reuse]

`--pool DIR` keeps the raw result documents; `--reuse` re-analyses a kept pool without measuring.
Takes about 1-2 minutes (model build ~10 s, 20 runs ~1.5 s each, analysis ~20 s).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from harness.compare import (DECISION_FRACTION, NOISE_MIN_RUNS, compare_runs,  # noqa: E402
                             series_noise)
from harness.results.rows import latency_rows  # noqa: E402
from harness.results.schema import to_frame  # noqa: E402

CACHE = ROOT / "bench" / ".cache"
THRESHOLD = 0.10
SCALE = 1.10
JOB = {"schema_version": 1, "job_id": "cv", "model": "artifacts/cv.tflite", "runtime": "auto",
       "measure": {"latency": {"threads": [1], "warmup_runs": 10, "warmup_seconds": 0.5,
                               "runs": 100, "min_seconds": 0.3, "rounds": 5},
                   "outputs": None, "memory": False, "profile": None},
       "result": "results/cv.json"}


def build_model(path: Path) -> None:
    """A seq2point-style 1-D CNN (window 599), float32, ~3 ms per invoke on a laptop core."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    from tensorflow import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((599, 1))
    x = inp
    for filters, kernel in zip([64, 64, 96, 128, 128], [10, 8, 6, 5, 5]):
        x = keras.layers.Conv1D(filters, kernel, padding="same", activation="relu")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(64, activation="relu")(x)
    out = keras.layers.Dense(1)(x)
    model = keras.Model(inp, out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())


def collect(n: int, work: Path, pool: Path) -> list[dict]:
    """n real runs of targets/runner.py, each in a fresh process; result documents."""
    (work / "jobs").mkdir(parents=True, exist_ok=True)
    (work / "jobs" / "cv.json").write_text(json.dumps(JOB))
    pool.mkdir(parents=True, exist_ok=True)
    docs = []
    for i in range(n):
        subprocess.run([sys.executable, str(ROOT / "targets" / "runner.py"),
                        str(work / "jobs" / "cv.json")], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        doc = json.loads((work / "results" / "cv.json").read_text())
        if doc["status"] != "ok":
            raise SystemExit(f"runner failed: {doc['error']}")
        doc["collected_at"] = time.time()
        doc["loadavg"] = os.getloadavg()
        (pool / f"{i:03d}.json").write_text(json.dumps(doc))
        docs.append(doc)
        print(f"\r  run {i + 1}/{n}", end="", flush=True)
    print()
    return docs


def tidy(doc: dict, sha: str, scale: float = 1.0) -> tuple:
    """The harness's own rows + sample series for one result document (optionally scaled)."""
    if scale != 1.0:
        doc = dict(doc, latency=[dict(e, samples_us=[s * scale for s in e["samples_us"]])
                                 for e in doc["latency"]])
    fields = {"suite": "validation", "target": "host", "device_kind": "cpu", "model": "cnn",
              "variant": "f32", "artifact_sha256": sha, "runtime": doc["runtime"]["name"],
              "runtime_version": doc["runtime"]["version"]}
    rows, series = latency_rows(doc, fields)
    return to_frame(rows), series


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--pool", type=Path, default=CACHE / "pool")
    parser.add_argument("--reuse", action="store_true", help="analyse the kept pool only")
    args = parser.parse_args()
    started = time.time()
    model = CACHE / "cv.tflite"
    work = CACHE / "work"
    if args.reuse:
        docs = [json.loads(p.read_text()) for p in sorted(args.pool.glob("*.json"))]
        if len(docs) < 3:
            raise SystemExit(f"--reuse: fewer than 3 runs in {args.pool}")
    else:
        if not model.is_file():
            print("building the model (once) ...")
            build_model(model)
        (work / "artifacts").mkdir(parents=True, exist_ok=True)
        (work / "artifacts" / "cv.tflite").write_bytes(model.read_bytes())
        for old in args.pool.glob("*.json"):
            old.unlink()
        print(f"collecting {args.runs} real runs (fresh runner process each) ...")
        docs = collect(args.runs, work, args.pool)
    sha = hashlib.sha256(model.read_bytes()).hexdigest() if model.is_file() else "0" * 64
    env = {"host": {"cpu_model": docs[0]["environment"]["cpu_model"],
                    "os": docs[0]["environment"]["os"],
                    "runtimes": {docs[0]["runtime"]["name"]: docs[0]["runtime"]["version"]}}}

    medians = [statistics.median(d["latency"][0]["samples_us"]) / 1e3 for d in docs]
    counts = [len(d["latency"][0]["samples_us"]) for d in docs]
    cv = statistics.pstdev(medians) / statistics.mean(medians)
    tidied = [tidy(d, sha) for d in docs]
    scaled = [tidy(d, sha, SCALE) for d in docs]
    pairs = list(itertools.combinations(range(len(docs)), 2))
    flagged_null = flagged_scaled = changed_rows = latency_rows_total = 0
    # with history: the noise of each key from the runs before the current one (as in a nightly)
    hist_pairs = hist_null = hist_scaled = 0
    noise_before = {j: series_noise(pd.concat([tidied[k][0] for k in range(j)]))
                    for j in range(NOISE_MIN_RUNS, len(docs))}
    for i, j in pairs:
        base_frame, base_series = tidied[i]
        for which, (cur_frame, cur_series) in (("null", tidied[j]), ("scaled", scaled[j])):
            result = compare_runs(cur_frame, cur_series, base_frame, base_series, {}, env, env)
            median = result.rows[result.rows["metric"] == "median_ms"]
            hit = bool((median["mark"] == "+").any())
            if which == "null":
                flagged_null += hit
                lat = result.rows[result.rows["measurement"] == "latency"]
                latency_rows_total += len(lat)
                changed_rows += int(lat["mark"].isin(["+", "-"]).sum())
            else:
                flagged_scaled += hit
            if j in noise_before:
                result = compare_runs(cur_frame, cur_series, base_frame, base_series, {}, env, env,
                                      noise=noise_before[j])
                median = result.rows[result.rows["metric"] == "median_ms"]
                hit = bool((median["mark"] == "+").any())
                hist_pairs += which == "null"
                if which == "null":
                    hist_null += hit
                else:
                    hist_scaled += hit
    n_pairs = len(pairs)
    ratio = [math.log(medians[j] / medians[i]) for i, j in pairs]
    pair_sd = statistics.pstdev(ratio)
    loads = [d.get("loadavg", [math.nan])[0] for d in docs]
    env0 = docs[0]["environment"]
    print(f"machine: {env0['cpu_model']}, {env0['cores']} cores, "
          f"governor {docs[0]['environment']['governor']}, load average during runs "
          f"{min(loads):.2f}..{max(loads):.2f}")
    print(f"runs: {len(docs)} (samples per run {min(counts)}..{max(counts)}), pairs: {n_pairs}")
    print(f"run medians: {min(medians):.3f}..{max(medians):.3f} ms, run-to-run CV {cv:.1%}, "
          f"sd of the log ratio of two runs' medians {pair_sd:.1%}")
    print(f"rule: Mann-Whitney p < 0.01 and Hodges-Lehmann shift > {DECISION_FRACTION:g} x "
          f"{THRESHOLD:.0%} = {DECISION_FRACTION * THRESHOLD:.1%}; reachable targets need a pair "
          f"sd below {THRESHOLD / 3.7:.1%}")
    print(f"unscaled  -> flagged as regression: {flagged_null}/{n_pairs} = "
          f"{flagged_null / n_pairs:.1%}   (target <= 2 %)")
    print(f"x {SCALE:.2f}    -> flagged as regression: {flagged_scaled}/{n_pairs} = "
          f"{flagged_scaled / n_pairs:.1%}   (target >= 95 %)")
    print(f"unscaled, all latency rows marked + or -: {changed_rows}/{latency_rows_total} = "
          f"{changed_rows / max(latency_rows_total, 1):.1%}")
    if hist_pairs:
        print(f"with run-to-run noise from the history (runs before the current one, "
              f"{hist_pairs} pairs): unscaled flagged {hist_null / hist_pairs:.1%}, "
              f"x {SCALE:.2f} flagged {hist_scaled / hist_pairs:.1%}")
    print(f"({time.time() - started:.0f} s)")
    ok = flagged_null / n_pairs <= 0.02 and flagged_scaled / n_pairs >= 0.95
    print("targets met" if ok else "targets NOT met on this machine at this noise level")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
