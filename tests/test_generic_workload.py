"""The generic workload: a user's own .keras / .tflite model scored on the user's .npz, through the
workload seam (no NILM code): scorer, data checks, suite schema, and `harness run` end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.config.suite import load_suite
from harness.errors import UserError
from harness.workloads.generic import Generic, GenericScorer, class_ids
from testutil import ROOT, run_cli

CLASSES, FEATURES, SAMPLES = 3, 8, 300


# --------------------------------------------------------------------------- scorer

def test_accuracy_from_class_ids_one_hot_and_a_probability_column():
    outputs = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    ids = np.array([1, 0, 1, 2])                       # right, right, wrong, wrong
    (score,) = GenericScorer("accuracy").score(outputs, ids)
    assert (score.metric, score.value, score.n, score.unit) == ("accuracy", 0.5, 4, "")
    one_hot = np.eye(CLASSES)[ids]
    assert GenericScorer("accuracy").score(outputs, one_hot)[0].value == 0.5
    assert list(class_ids(ids[:, None])) == list(ids)
    binary = np.array([[0.9], [0.2], [0.6], [0.4]])   # probability of class 1
    assert GenericScorer("accuracy").score(binary, np.array([1, 0, 0, 0]))[0].value == 0.75


def test_top_k():
    outputs = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    labels = np.array([2, 1, 0, 2])                    # 2nd, 2nd, 3rd, 3rd highest
    (score,) = GenericScorer("top_k", k=2).score(outputs, labels)
    assert (score.metric, score.value) == ("accuracy_top2", 0.5)
    assert GenericScorer("top_k", k=5).score(outputs, labels)[0].value == 1.0   # k > classes


def test_mae_rmse_and_shape_checks():
    outputs = np.array([[1.0], [2.0], [4.0]])
    targets = np.array([1.0, 3.0, 2.0])
    (mae,) = GenericScorer("mae", unit="W").score(outputs, targets)
    assert (mae.metric, mae.value, mae.unit) == ("mae", 1.0, "W")
    (rmse,) = GenericScorer("rmse").score(outputs, targets)
    assert rmse.value == pytest.approx(np.sqrt(5 / 3))
    with pytest.raises(ValueError, match="outputs of shape"):
        GenericScorer("mae").score(np.ones((3, 2)), targets)
    with pytest.raises(ValueError, match="2 outputs for 3"):
        GenericScorer("accuracy").score(np.ones((2, 3)), targets)


# --------------------------------------------------------------------------- suite and data

def _suite(folder: Path, text: str) -> Path:
    path = folder / "suite.yaml"
    path.write_text(text)
    return path


GENERIC_SUITE = """\
name: generic
workload:
  kind: generic
  models:
    - {name: clf, path: clf.keras}
    - {name: clf_tflite, path: clf.tflite}
  data: data.npz
  metric: accuracy
variants: [convert_only, w8, w8_a8]
measurements:
  latency: {threads: [1], warmup_runs: 1, warmup_seconds: 0, runs: 5, min_seconds: 0, rounds: 1}
  accuracy: true
"""


def test_specs_variants_and_data_errors(tmp_path):
    from harness.artifacts.build import variants_for
    from harness.workloads import model_specs

    (tmp_path / "clf.keras").write_bytes(b"not read here")
    (tmp_path / "clf.tflite").write_bytes(b"not read here")
    np.savez(tmp_path / "data.npz", x=np.zeros((4, FEATURES)), labels=np.zeros(4))
    path = _suite(tmp_path, GENERIC_SUITE)
    suite = load_suite(path)
    specs = model_specs(suite, path)
    assert [(s.name, s.file, s.workload) for s in specs] == [
        ("clf", tmp_path / "clf.keras", "generic"),
        ("clf_tflite", tmp_path / "clf.tflite", "generic")]
    assert variants_for(specs[0], suite) == ["convert_only", "w8", "w8_a8"]
    assert variants_for(specs[1], suite) == ["as_is"]
    workload = Generic(suite.workload, path)
    with pytest.raises(UserError, match="data.npz: no array 'y'"):
        workload.arrays()
    np.savez(tmp_path / "data.npz", x=np.zeros((4, FEATURES)), y=np.zeros(3))
    with pytest.raises(UserError, match="same, non-zero number of samples"):
        Generic(suite.workload, path).arrays()
    (tmp_path / "data.npz").unlink()
    with pytest.raises(UserError, match="workload.data: .* is not an .npz file"):
        model_specs(suite, path)
    missing = _suite(tmp_path, GENERIC_SUITE.replace("clf.keras", "nope.keras"))
    np.savez(tmp_path / "data.npz", x=np.zeros((4, FEATURES)), y=np.zeros(4))
    with pytest.raises(UserError, match="workload.models.clf.path: .*nope.keras does not exist"):
        model_specs(load_suite(missing), missing)


def test_duplicate_model_names_are_refused(tmp_path):
    from harness.workloads import model_specs

    (tmp_path / "clf.keras").write_bytes(b"")
    (tmp_path / "clf.tflite").write_bytes(b"")
    np.savez(tmp_path / "data.npz", x=np.zeros((4, FEATURES)), y=np.zeros(4))
    path = _suite(tmp_path, GENERIC_SUITE + "models:\n  - {name: clf, path: clf.tflite}\n")
    with pytest.raises(UserError, match="model name 'clf' is used twice"):
        model_specs(load_suite(path), path)


# --------------------------------------------------------------------------- end to end

@pytest.fixture(scope="module")
def generic_run(tmp_path_factory: pytest.TempPathFactory, harness_cache: Path) -> dict:
    """A tiny Keras classifier trained on three overlapping Gaussian blobs, its own .tflite
    converted with plain TensorFlow (a "foreign" model), the data as an .npz, and one
    `harness run` on host."""
    import keras
    import tensorflow as tf

    folder = tmp_path_factory.mktemp("generic")
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 1.2, (CLASSES, FEATURES))   # overlapping: some samples are borderline
    y = rng.integers(0, CLASSES, SAMPLES)
    x = (centers[y] + rng.normal(0, 2, (SAMPLES, FEATURES))).astype(np.float32)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(CLASSES, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=30, batch_size=32, verbose=0)
    keras_accuracy = float(np.mean(np.argmax(model.predict(x, verbose=0), axis=1) == y))
    model.save(folder / "clf.keras")
    (folder / "clf.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    np.savez(folder / "data.npz", x=x, y=y)
    suite = _suite(folder, GENERIC_SUITE)
    env = {"HARNESS_CACHE": str(harness_cache)}
    result = run_cli("run", str(suite), "--targets", "host", "--out", str(folder / "out"), env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run_dir = next((folder / "out" / "generic").iterdir())
    return {"run_dir": run_dir, "suite": suite, "env": env, "keras_accuracy": keras_accuracy}


@pytest.mark.slow
def test_accuracy_rows_per_variant(generic_run: dict) -> None:
    frame = pd.read_csv(generic_run["run_dir"] / "results.csv")
    accuracy = frame[frame.measurement == "accuracy"]
    assert set(zip(accuracy.model, accuracy.variant)) == {
        ("clf", "convert_only"), ("clf", "w8"), ("clf", "w8_a8"), ("clf_tflite", "as_is")}
    assert set(accuracy.metric) == {"accuracy"} and (accuracy.n == SAMPLES).all()
    value = dict(zip(zip(accuracy.model, accuracy.variant), accuracy.value))
    # the float model on the device scores what Keras scores on the controller
    assert 0.6 < generic_run["keras_accuracy"] < 1     # learnt, and not trivially perfect
    assert value[("clf", "convert_only")] == pytest.approx(generic_run["keras_accuracy"],
                                                           abs=1.5 / SAMPLES)
    assert value[("clf_tflite", "as_is")] == pytest.approx(value[("clf", "convert_only")],
                                                          abs=1.5 / SAMPLES)
    assert value[("clf", "w8_a8")] > 0.5                 # calibrated on the npz inputs
    latency = frame[(frame.measurement == "latency") & (frame.metric == "median_ms")]
    assert set(zip(latency.model, latency.variant)) == set(value)


@pytest.mark.slow
def test_report_shows_deltas_against_float(generic_run: dict) -> None:
    frame = pd.read_csv(generic_run["run_dir"] / "results.csv")
    accuracy = frame[(frame.measurement == "accuracy") & (frame.model == "clf")]
    value = dict(zip(accuracy.variant, accuracy.value))
    report = (generic_run["run_dir"] / "report.md").read_text()
    table = report[report.index("## Accuracy on held-out data"):].split("\n\n")[1]
    for variant in ("w8", "w8_a8"):
        line = next(row for row in table.splitlines() if f"| clf | {variant} |" in row)
        assert f"({value[variant] - value['convert_only']:+.3g})" in line
    float_line = next(row for row in table.splitlines() if "| clf | convert_only |" in row)
    assert "(" not in float_line


@pytest.mark.slow
def test_builder_and_scoring_use_no_nilm_code(generic_run: dict) -> None:
    """In a fresh process: build (from the cache) and re-score the device's stored outputs."""
    code = """
import json, sys
from pathlib import Path
import numpy as np
from harness.artifacts.build import Builder
from harness.config import load_suite
from harness.results.rows import accuracy_rows
from harness.workloads import model_specs

suite_path, cache, run_dir = map(Path, sys.argv[1:4])
suite = load_suite(suite_path)
builder = Builder(suite, suite_path, cache)
artifacts = {(a.model, a.variant): a for spec in model_specs(suite, suite_path)
             for a in builder.build(spec)}
outputs = next((run_dir / "targets" / "host").rglob("clf.w8_a8.*outputs.npy"))
rows = accuracy_rows(outputs, artifacts[("clf", "w8_a8")], {"model": "clf"})
print(json.dumps({"built": builder.built, "value": rows[0]["value"],
                  "nilm": sorted(m for m in sys.modules if "nilm" in m)}))
"""
    result = subprocess.run([sys.executable, "-c", code, str(generic_run["suite"]),
                             generic_run["env"]["HARNESS_CACHE"], str(generic_run["run_dir"])],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.splitlines()[-1])
    assert out["built"] == 0 and out["nilm"] == []
    frame = pd.read_csv(generic_run["run_dir"] / "results.csv")
    stored = frame[(frame.model == "clf") & (frame.variant == "w8_a8")
                   & (frame.measurement == "accuracy")].value.iloc[0]
    assert out["value"] == pytest.approx(stored)
