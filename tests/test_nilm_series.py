"""Contiguous evaluation on the device: the runner slides the window over a pushed series
(NaN between houses), refuses up front a span over the suite's limit, and the NILM scorer turns
the outputs into the metrics of each house's span."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
WINDOW = 31


@pytest.fixture(scope="module")
def midpoint_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real float .tflite that outputs the midpoint sample of its (1, 31, 1) window."""
    import keras

    from harness.artifacts.convert import convert, converter_factory, export_batch1

    inputs = keras.Input((WINDOW, 1))
    half = WINDOW // 2
    outputs = keras.layers.Flatten()(keras.layers.Cropping1D((half, half))(inputs))
    folder = tmp_path_factory.mktemp("midpoint")
    keras.Model(inputs, outputs).save(folder / "midpoint.keras")
    factory = converter_factory(export_batch1(folder / "midpoint.keras", folder / "saved", None))
    path = folder / "midpoint.tflite"
    path.write_bytes(convert(factory, "convert_only", None))
    return path


def _run(workdir: Path, model: Path, series: np.ndarray, latency: dict | None = None,
         **outputs) -> dict:
    for sub in ("artifacts", "jobs"):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model, workdir / "artifacts" / "m.tflite")
    np.save(workdir / "artifacts" / "s.npy", series.astype(np.float32))
    job = {"schema_version": 1, "job_id": "j", "model": "artifacts/m.tflite", "runtime": "auto",
           "result": "results/j.json",
           "measure": {"outputs": {"series": "artifacts/s.npy", "window": WINDOW, **outputs},
                       **({"latency": latency} if latency else {})}}
    (workdir / "jobs" / "j.json").write_text(json.dumps(job))
    proc = subprocess.run([sys.executable, str(ROOT / "targets" / "runner.py"), "jobs/j.json"],
                          cwd=workdir, capture_output=True, text=True, timeout=300)
    result = json.loads((workdir / "results" / "j.json").read_text())
    assert proc.returncode == 0, (proc.stderr, result)
    return result


def test_window_slides_over_every_sample_and_never_across_a_house(midpoint_model, tmp_path):
    rng = np.random.default_rng(0)
    house_a, house_b = rng.standard_normal(100), rng.standard_normal(80)
    series = np.concatenate([house_a, [np.nan], house_b])
    result = _run(tmp_path, midpoint_model, series)
    outputs = np.load(tmp_path / result["outputs"]).reshape(-1)
    half = WINDOW // 2
    expected = np.concatenate([house_a[half:100 - half], house_b[half:80 - half]])
    assert outputs.shape == (100 - 30 + 80 - 30,)
    np.testing.assert_allclose(outputs, expected, rtol=1e-6)
    stats = result["series_outputs"]
    assert stats["predictions"] == 120 and stats["window"] == WINDOW and stats["refused"] is None
    assert stats["predictions_per_second"] > 0 and stats["seconds"] > 0


def test_parallel_interpreters_keep_every_prediction_in_place(midpoint_model, tmp_path):
    """Three interpreters share a series with a house boundary: the chunks meet without a gap
    or an overlap, and every output is its own window's."""
    rng = np.random.default_rng(1)
    house_a, house_b = rng.standard_normal(2000), rng.standard_normal(1500)
    series = np.concatenate([house_a, [np.nan], house_b])
    result = _run(tmp_path, midpoint_model, series, workers=3)
    outputs = np.load(tmp_path / result["outputs"]).reshape(-1)
    half = WINDOW // 2
    expected = np.concatenate([house_a[half:2000 - half], house_b[half:1500 - half]])
    np.testing.assert_allclose(outputs, expected, rtol=1e-6)
    stats = result["series_outputs"]
    assert stats["workers"] == 3 and stats["predictions"] == len(expected)


def test_a_multithreaded_model_evaluates_in_one_interpreter(midpoint_model, tmp_path):
    latency = {"threads": [2], "warmup_runs": 1, "warmup_seconds": 0, "runs": 5,
               "min_seconds": 0, "rounds": 1}
    result = _run(tmp_path, midpoint_model, np.zeros(500), latency=latency, workers=3)
    assert result["series_outputs"]["workers"] == 1
    assert result["series_outputs"]["threads"] == 2


def test_span_over_the_limit_is_refused_with_a_clear_message(midpoint_model, tmp_path):
    series = np.zeros(5000)
    result = _run(tmp_path, midpoint_model, series, max_seconds=1e-6)
    assert result["status"] == "ok" and result["outputs"] is None
    stats = result["series_outputs"]
    assert stats["estimated_seconds"] > 1e-6 and stats["predictions_per_second"] > 0
    assert "4970 predictions" in stats["refused"] and "evaluation.days" in stats["refused"]
    assert "evaluation.max_seconds" in stats["refused"]


def test_device_outputs_scored_per_house_with_the_minimum_on_time(midpoint_model, tmp_path):
    """Dishwasher (min on 1800 s = 225 samples): a 230-sample run spans many windows and is
    counted; a 200-sample run in the other house is dropped; nothing joins the two houses."""
    from harness.workloads.nilm.appliances import params
    from harness.workloads.nilm.workload import NilmScorer

    max_w = params("dishwasher").max_power_w
    half = WINDOW // 2
    truth_a, truth_b = np.zeros(600), np.zeros(400)
    truth_a[370:600] = 120.0                       # a run reaching the end of house A's span
    truth_b[0:200] = 120.0                         # too short on its own, even next to A's
    # the "aggregate" is the scaled truth, so the midpoint model predicts the truth exactly
    pad = np.zeros(half)
    series = np.concatenate([pad, truth_a / max_w, pad, [np.nan], pad, truth_b / max_w, pad])
    result = _run(tmp_path, midpoint_model, series)
    outputs = np.load(tmp_path / result["outputs"])
    assert outputs.shape == (1000, 1)
    scorer = NilmScorer("dishwasher", max_w, (600, 400), (6, 7), 600)
    scores = {(s.metric, s.key): s.value for s in scorer.score(outputs,
                                                             np.concatenate([truth_a, truth_b]))}
    assert scores[("f1", "dishwasher")] == pytest.approx(1.0)
    assert scores[("mae", "dishwasher")] == pytest.approx(0.0, abs=1e-3)
    assert scores[("span_days", "dishwasher/house7")] == pytest.approx(400 * 8 / 86400)


def test_series_output_rows_report_speed_or_refusal():
    from harness.devices.runner_exec import series_output_rows

    fields = {"target": "host", "model": "m", "variant": "w8"}
    ok = series_output_rows({"series_outputs": {"predictions": 100, "seconds": 0.5,
                                                "predictions_per_second": 200.0, "threads": 1,
                                                "refused": None}}, fields)
    assert {(r["metric"], r["value"]) for r in ok} == {("predictions_per_s", 200.0),
                                                       ("eval_s", 0.5)}
    assert all(r["measurement"] == "accuracy" and r["n"] == 100 for r in ok)
    refused = series_output_rows({"series_outputs": {"predictions": 100, "refused": "too long",
                                                     "threads": 1}}, fields)
    assert [(r["status"], r["error_kind"], r["message"]) for r in refused] == [
        ("skipped", "eval_too_long", "too long")]
    assert series_output_rows({}, fields) == []
