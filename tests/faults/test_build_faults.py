"""Fault case 7: build steps that fail are the failure of what they were building, never of the
run, and only a converter's refusal of the model is cached.

- The converter process is killed (SIGKILL, through the documented test-only hook) while it
  converts w8_a8: that variant's jobs are `build_failed` rows, convert_only is measured, nothing
  is cached for w8_a8, and `--resume` (a clean rerun) rebuilds it and completes the run.
- The QuantizationDebugger crashes on a real model (XNNPACK cannot prepare it: a user's
  seq2point CNN untrained, calibrated on random inputs, through the generic workload): one quant_error row says
  so, the model's other measurements are taken; the crash is not cached, so `--resume` runs the
  debugger again and the run stays consistent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from harness.artifacts.convert import KILL_ENV
from storage_util import assert_consistent, assert_kept, by_job, harness, only_run, smoke_suite

pytestmark = pytest.mark.slow

# the smoke suite's quant_error settings changed slightly: its trained model is reused from the
# session cache, but every variant's .tflite has a new cache key, so it is converted here
NEW_KEYS = {"measurements": {"quant_error": {"threshold": 0.71, "denylist_variant": True}}}
# a user's model whose full-integer version the QuantizationDebugger cannot run (XNNPACK fails to
# prepare): a seq2point CNN untrained, calibrated on random inputs
CRASH_SUITE = """\
name: debugger
workload:
  kind: generic
  models: [{name: untrained_cnn, path: untrained_cnn.keras}]
  data: data.npz
  metric: mae
variants: [convert_only, w8_a8]
measurements:
  latency: {threads: [1], warmup_runs: 2, warmup_seconds: 0, runs: 10, min_seconds: 0.05, rounds: 1}
  accuracy: true
  memory: true
  profile: {threads: 1, runs: 5, warmup_runs: 1, min_seconds: 0.02}
  quant_error: {threshold: 0.7, denylist_variant: true}
"""


def untrained_user_cnn():
    """A seq2point CNN as a user would write it (conv stack, the window's centre samples beside
    the features, power gated by a status probability), untrained: a fixed graph, independent of
    how harness's own NILM models evolve."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(599, 1), batch_size=1, name="aggregate")
    x = inputs
    for i in range(2):
        x = layers.Conv1D(32, 9, padding="same", activation="relu", name=f"conv{i}")(x)
        x = layers.MaxPooling1D(2, name=f"pool{i}")(x)
    centre = layers.Flatten()(layers.Cropping1D((283, 283))(inputs))
    features = layers.Concatenate()([layers.Flatten()(x), centre])
    hidden = layers.Dense(64, activation="relu", name="head")(features)
    power = layers.Dense(1, activation="relu", name="power")(hidden)
    status = layers.Dense(1, name="status")(hidden)
    gated = layers.Multiply()([power, layers.Activation("sigmoid")(status)])
    both = layers.Concatenate()([gated, status])
    return keras.Model(inputs, both[:, 0:1])


def crash_suite(folder: Path) -> Path:
    """The suite above, its untrained model and random data."""
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    untrained_user_cnn().save(folder / "untrained_cnn.keras")
    rng = np.random.default_rng(0)
    np.savez(folder / "data.npz", x=rng.standard_normal((64, 599, 1)).astype(np.float32),
             y=rng.standard_normal((64, 1)).astype(np.float32))
    (folder / "debugger.yaml").write_text(CRASH_SUITE)
    return folder / "debugger.yaml"


def frame(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "results.csv")


def only_refusals_cached(cache: Path) -> bool:
    """Every failure in the artifact cache is a refusal of the converter (e.g. the smoke model's
    denylist variant: no suspected layers), none a crash, a kill or missing statistics."""
    failures = [json.loads(p.read_text()) for p in (cache / "tflite").glob("*.failed.json")]
    return all(f["kind"] in ("conversion_failed", "not_applicable")
               and "killed" not in f["reason"] and "statistics" not in f["reason"]
               for f in failures)


def test_a_killed_converter_fails_its_variant_and_a_rerun_rebuilds_it(
        tmp_path: Path, harness_cache: Path) -> None:
    suite = smoke_suite(tmp_path / "killed.yaml", "killed", **NEW_KEYS)
    first = harness("run", str(suite), "--targets", "host", "--out", str(tmp_path / "out"),
                    cache=harness_cache, **{KILL_ENV: "w8_a8"})
    assert first.returncode == 3, first.stdout[-2000:] + first.stderr[-3000:]
    run_dir = only_run(tmp_path / "out")
    rows = frame(run_dir)
    failed = rows[rows.status == "failed"]
    assert set(failed.variant) == {"w8_a8", "w8_a8_denylist"}, failed
    assert set(failed.error_kind) == {"build_failed"} and set(failed.phase) == {"build"}
    killed = failed[failed.variant == "w8_a8"].message.iloc[0]
    assert "killed by SIGKILL" in killed, killed
    measured = rows[(rows.status == "ok") & (rows.variant == "convert_only")]
    assert {"latency", "accuracy", "memory", "profile", "size"} <= set(measured.measurement)
    assert only_refusals_cached(harness_cache)
    before = by_job(run_dir)

    resumed = harness("run", "--resume", str(run_dir), cache=harness_cache)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-3000:]
    assert "0 built" not in resumed.stdout                              # w8_a8 rebuilt
    assert_consistent(run_dir)
    after = by_job(run_dir)
    assert_kept(before, after, {"host/kettle_cnn.convert_only.auto"})
    rows = frame(run_dir)
    # all measured; the denylist variant is whatever the statistics say (this model has no
    # suspected layer: skipped, not_applicable)
    assert rows.status.isin(["ok", "skipped"]).all(), rows[rows.status == "failed"]
    latency = rows[rows.metric == "median_ms"]
    assert {"convert_only", "w8_a8"} <= set(latency.variant)
    assert set(rows[rows.variant == "w8_a8_denylist"].status) <= {"ok", "skipped"}
    assert (rows.measurement == "quant_error").any()                     # the debugger ran


def test_a_quantization_debugger_crash_is_a_quant_error_row_and_the_rest_is_measured(
        tmp_path: Path, harness_cache: Path) -> None:
    suite = crash_suite(tmp_path / "suite")
    first = harness("run", str(suite), "--targets", "host", "--out", str(tmp_path / "out"),
                    cache=harness_cache)
    assert first.returncode == 3, first.stdout[-2000:] + first.stderr[-3000:]  # a tool failed
    assert "Traceback" not in first.stderr
    run_dir = only_run(tmp_path / "out")
    rows = frame(run_dir)
    quant = rows[rows.measurement == "quant_error"]
    assert len(quant) == 1, quant                                        # once, not per use
    row = quant.iloc[0]
    assert (row.status, row.error_kind, row.variant) == ("failed", "build_failed", "w8_a8")
    assert "quantization debugger failed" in row.message and "XNNPACK" in row.message
    # the model's other measurements are taken
    measured = rows[(rows.status == "ok") & (rows.variant == "convert_only")]
    assert {"latency", "accuracy", "memory", "profile", "size"} <= set(measured.measurement)
    w8 = rows[(rows.variant == "w8_a8") & (rows.measurement != "quant_error")]
    assert len(w8) and (w8.phase == "run").all(), w8                   # built and run on host
    deny = rows[rows.variant == "w8_a8_denylist"]
    assert list(deny.error_kind) == ["build_failed"]
    assert "no quantization statistics" in deny.message.iloc[0]
    assert only_refusals_cached(harness_cache)                          # a crash is not cached
    before = by_job(run_dir)

    resumed = harness("run", "--resume", str(run_dir), cache=harness_cache)
    assert resumed.returncode == 3, resumed.stdout[-2000:] + resumed.stderr[-3000:]
    assert "quantization debugger" in resumed.stderr                     # tried again
    assert_consistent(run_dir)
    after = by_job(run_dir)
    assert_kept(before, after, {"host/untrained_cnn.convert_only.auto"})
    again = frame(run_dir)
    assert len(again[again.measurement == "quant_error"]) == 1           # not stale, not twice
    assert len(again) == len(rows)
