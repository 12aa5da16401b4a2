"""Fault case 8: `--resume` works per job, for the pair of jobs one model has on a host with
`runtimes: [auto, onnxruntime]` (TFLite and ONNX Runtime), in both orders:

- TFLite succeeded, ONNX Runtime failed (onnxruntime missing on the device): the resume runs the
  ONNX Runtime job only and keeps the TFLite rows as they were;
- ONNX Runtime succeeded, TFLite crashed (its runtime segfaults on import): the resume runs the
  TFLite job only (it is not "done" because ONNX Runtime rows of the same model exist).

The device's Python is a wrapper that shadows a module; the resume runs with the real one.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from storage_util import (assert_consistent, assert_kept, by_job, harness, host_inventory,
                          only_run, python_wrapper, smoke_suite)

pytestmark = pytest.mark.slow

TFLITE_JOB = "host/kettle_cnn.convert_only.auto"
ORT_JOB = "host/kettle_cnn.convert_only.onnxruntime"
# one variant, one thread count, no per-op profile or quantization statistics: two short jobs
PAIR = {"variants": ["convert_only"],
        "measurements": {"latency": {"threads": [1], "warmup_runs": 5, "warmup_seconds": 0.05,
                                     "runs": 30, "min_seconds": 0.2, "rounds": 3},
                         "profile": None, "quant_error": None}}
BROKEN = {
    "onnxruntime": "raise ImportError('onnxruntime is not installed on this device')\n",
    "ai_edge_litert": "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n",
}


def run_pair(tmp: Path, cache: Path, broken: str) -> tuple[Path, Path, dict]:
    """A run whose `broken` module is broken on the device: (run dir, inventory, its rows)."""
    suite = smoke_suite(tmp / "pair.yaml", "pair", **PAIR)
    wrapper = python_wrapper(tmp / "device", {broken: BROKEN[broken]})
    inventory = host_inventory(tmp / "inventory.yaml", runtimes=["onnxruntime"],
                               python=str(wrapper), workdir=str(tmp / "work"))
    first = harness("run", str(suite), "--targets", "host", "--inventory", str(inventory),
                    "--out", str(tmp / "out"), cache=cache)
    assert first.returncode == 3, first.stdout[-2000:] + first.stderr[-3000:]
    run_dir = only_run(tmp / "out")
    assert set(by_job(run_dir)) >= {TFLITE_JOB, ORT_JOB}
    return run_dir, inventory, by_job(run_dir)


def resume(run_dir: Path, inventory: Path, cache: Path) -> pd.DataFrame:
    """`--resume` with the device's real Python; the run's table afterwards."""
    host_inventory(inventory, runtimes=["onnxruntime"], workdir=str(inventory.parent / "work"))
    resumed = harness("run", "--resume", str(run_dir), cache=cache)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-3000:]
    assert_consistent(run_dir)
    frame = pd.read_csv(run_dir / "results.csv")
    assert (frame.status == "ok").all(), frame[frame.status != "ok"]
    medians = frame[frame.metric == "median_ms"]
    assert sorted(medians.runtime) == ["ai_edge_litert", "onnxruntime"]
    return frame


def test_tflite_done_onnxruntime_failed(tmp_path: Path, harness_cache: Path) -> None:
    run_dir, inventory, before = run_pair(tmp_path, harness_cache, "onnxruntime")
    assert all(r["status"] == "ok" for r in before[TFLITE_JOB])
    assert [r["error_kind"] for r in before[ORT_JOB] if r["status"] == "failed"] == [
        "onnxruntime_missing"]
    resume(run_dir, inventory, harness_cache)
    after = by_job(run_dir)
    assert_kept(before, after, {TFLITE_JOB})                      # kept, not measured again
    assert after[ORT_JOB] != before[ORT_JOB]


def test_onnxruntime_done_tflite_crashed(tmp_path: Path, harness_cache: Path) -> None:
    run_dir, inventory, before = run_pair(tmp_path, harness_cache, "ai_edge_litert")
    assert all(r["status"] == "ok" for r in before[ORT_JOB])
    crashed = [r for r in before[TFLITE_JOB] if r["status"] == "failed"]
    assert [r["error_kind"] for r in crashed] == ["runner_crash"], crashed
    resume(run_dir, inventory, harness_cache)
    after = by_job(run_dir)
    assert_kept(before, after, {ORT_JOB})
    assert any(r["metric"] == "median_ms" and r["runtime"] == "ai_edge_litert"
               for r in after[TFLITE_JOB])
