"""The device-side runner on real models: job JSON in, result JSON out, failures as documents,
fresh results only (job_id + attempt, atomic writes, no result on SIGTERM/SIGINT), the test-only
stretch knob."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "targets"))
import backends  # noqa: E402
from runner_error import RunnerError  # noqa: E402


def _job(workdir: Path, model: Path, fields: dict | None = None, **measure) -> Path:
    """A job document for `model` in `workdir` (extra top-level `fields`, e.g. attempt, stretch)."""
    (workdir / "artifacts").mkdir(parents=True, exist_ok=True)
    (workdir / "jobs").mkdir(exist_ok=True)
    shutil.copyfile(model, workdir / "artifacts" / model.name)
    job = {"schema_version": 1, "job_id": "j", "model": f"artifacts/{model.name}", "runtime": "auto",
           "result": "results/j.json", "measure": measure, **(fields or {})}
    path = workdir / "jobs" / "j.json"
    path.write_text(json.dumps(job))
    return path


def _run(job: Path, entry: str = "runner.py") -> tuple[int, dict]:
    proc = subprocess.run([sys.executable, str(ROOT / "targets" / entry), str(job)],
                          capture_output=True, text=True, timeout=300)
    return proc.returncode, json.loads((job.parent.parent / "results" / "j.json").read_text())


LATENCY = {"threads": [1, 2], "warmup_runs": 3, "warmup_seconds": 0.0, "runs": 25,
           "min_seconds": 0.0, "rounds": 5}


@pytest.mark.parametrize("variant", ["convert_only", "w8_a8"])
def test_latency_samples_and_full_xnnpack_coverage(tiny_models: dict, tmp_path: Path,
                                                   variant: str) -> None:
    code, result = _run(_job(tmp_path, tiny_models[variant], latency=LATENCY, memory=True))
    assert code == 0 and result["status"] == "ok", result
    assert result["runtime"]["name"] == "ai_edge_litert"
    assert [entry["threads"] for entry in result["latency"]] == [1, 2]
    for entry in result["latency"]:
        assert len(entry["samples_us"]) >= 25 and min(entry["samples_us"]) > 0
        assert entry["n"] == len(entry["samples_us"])
        assert entry["p10_us"] <= entry["median_us"] <= entry["p90_us"]
        assert entry["delegate"] == "XNNPACK" and entry["delegated_nodes"] == 1
        assert entry["undelegated_ops"] == []
    memory = result["memory"]
    assert memory["peak_rss_kb"] >= memory["rss_baseline_kb"] > 0
    assert memory["model_bytes"] == tiny_models[variant].stat().st_size
    assert result["environment"]["arch"] and result["environment"]["cores"]


def test_outputs_match_the_runtime_run_directly(tiny_models: dict, tmp_path: Path) -> None:
    windows = np.random.default_rng(1).standard_normal((5, 64, 1)).astype(np.float32)
    (tmp_path / "artifacts").mkdir()
    np.save(tmp_path / "artifacts" / "x.npy", windows)
    code, result = _run(_job(tmp_path, tiny_models["w8_a8"], outputs={"inputs": "artifacts/x.npy"}))
    assert code == 0, result
    outputs = np.load(tmp_path / result["outputs"])
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(tiny_models["w8_a8"]))
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    for window, got in zip(windows, outputs):
        interp.set_tensor(inp["index"], window[np.newaxis])
        interp.invoke()
        assert got == pytest.approx(interp.get_tensor(out["index"])[0], abs=1e-6)


def test_corrupt_model_is_an_error_document(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"TFL3" + b"\x00" * 100)
    code, result = _run(_job(tmp_path / "wd", bad, {"attempt": "3"}, latency=LATENCY))
    assert code == 1 and result["status"] == "error"
    assert result["job_id"] == "j" and result["attempt"] == "3"  # errors answer their attempt too
    assert result["error"]["kind"] in ("model_load", "runner_crash")
    assert "bad.tflite" in result["error"]["message"] or result["error"]["kind"] == "runner_crash"


def test_missing_runtime_names_the_fix() -> None:
    with pytest.raises(RunnerError) as err:
        backends.import_runtime("no_such_runtime")
    assert err.value.kind == "runtime_missing" and "pip install ai-edge-litert" in str(err.value)


def test_delegate_coverage_finds_undelegated_nodes() -> None:
    def op(index, name, inputs, outputs):
        return {"index": index, "op_name": name, "inputs": inputs, "outputs": outputs}

    # 0 -CONV-> 2 -RELU-> 3 -CUSTOM-> 4; a delegate took CONV and RELU (inputs 0,1 → output 3)
    ops = [op(0, "CONV_2D", [0, 1], [2]), op(1, "RELU", [2], [3]), op(2, "CUSTOM", [3], [4]),
           op(3, "DELEGATE", [0, 1], [3])]
    assert backends.delegate_coverage(ops) == {"delegate": "XNNPACK", "delegated_nodes": 1,
                                             "undelegated_ops": ["CUSTOM"]}
    assert backends.delegate_coverage(ops[:3])["undelegated_ops"] == ["CONV_2D", "CUSTOM", "RELU"]


# --------------------------------------------------------------------------- A/B mode, fresh results

AB = {"threads": [1], "warmup_runs": 3, "warmup_seconds": 0.0, "runs": 20, "min_seconds": 0.2,
      "rounds": 1}
# measures until killed (the test stops it once the runner says it is timing)
ENDLESS = {"threads": [1], "warmup_runs": 1, "warmup_seconds": 0.0, "runs": 1,
           "min_seconds": 3600.0, "rounds": 1}


def test_ab_job_echoes_job_id_and_attempt_with_summaries(tiny_models: dict, tmp_path: Path) -> None:
    """One thread count and a short minimum time, as A/B re-measurement asks for."""
    code, result = _run(_job(tmp_path, tiny_models["w8_a8"], {"attempt": "night-7/2"}, latency=AB))
    assert code == 0 and result["status"] == "ok", result
    assert result["job_id"] == "j" and result["attempt"] == "night-7/2"
    assert "stretch" not in result
    [entry] = result["latency"]
    samples = np.asarray(entry["samples_us"])
    assert entry["threads"] == 1 and entry["n"] == len(samples) >= AB["runs"]
    assert entry["median_us"] == pytest.approx(np.median(samples), abs=1e-2)
    assert entry["p10_us"] == pytest.approx(np.quantile(samples, 0.1), abs=1e-2)
    assert entry["p90_us"] == pytest.approx(np.quantile(samples, 0.9), abs=1e-2)


def test_a_job_without_attempt_answers_null(tiny_models: dict, tmp_path: Path) -> None:
    code, result = _run(_job(tmp_path, tiny_models["w8_a8"], latency=AB))
    assert code == 0 and result["attempt"] is None


@pytest.fixture(scope="module")
def cnn_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seq2point-sized float CNN (~10² µs per invoke on a PC: the invoke, not the Python call
    around it, dominates a sample)."""
    import keras

    from harness.artifacts.convert import convert, converter_factory, export_batch1

    keras.utils.set_random_seed(0)
    inputs = keras.Input((599, 1))
    x = inputs
    for filters in (16, 16, 32, 32):
        x = keras.layers.Conv1D(filters, 9, padding="same", activation="relu")(x)
        x = keras.layers.MaxPooling1D(2)(x)
    x = keras.layers.Dense(64, activation="relu")(keras.layers.Flatten()(x))
    folder = tmp_path_factory.mktemp("cnn")
    keras.Model(inputs, keras.layers.Dense(1)(x)).save(folder / "cnn.keras")
    factory = converter_factory(export_batch1(folder / "cnn.keras", folder / "saved", None))
    path = folder / "cnn_convert_only.tflite"
    path.write_bytes(convert(factory, "convert_only", None))
    return path


def test_stretch_scales_the_timed_samples() -> None:
    """The test-only knob multiplies each timed sample by exactly its factor."""
    import measure

    durations = iter([1000, 3000, 2000] * 10)            # ns per invoke, fed by a fake clock
    clock = {"now": 0}

    def fake_clock() -> int:
        return clock["now"]

    def invoke() -> None:
        clock["now"] += next(durations)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(measure.time, "perf_counter_ns", fake_clock)
        plain = measure.run_until(invoke, runs=3, seconds=0.0)
        stretched = measure.run_until(invoke, runs=3, seconds=0.0, stretch=1.1)
    assert plain == [1.0, 3.0, 2.0]
    assert stretched == pytest.approx([1.1, 3.3, 2.2])


def test_stretch_is_recorded_in_the_result(tiny_models: dict, tmp_path: Path) -> None:
    code, result = _run(_job(tmp_path, tiny_models["w8_a8"], {"stretch": 1.5}, latency=AB))
    assert code == 0 and result["stretch"] == 1.5


@pytest.mark.parametrize("stretch", [0.5, "2"])
def test_a_bad_stretch_is_a_bad_job(tiny_models: dict, tmp_path: Path, stretch: object) -> None:
    code, result = _run(_job(tmp_path, tiny_models["w8_a8"], {"stretch": stretch}, latency=AB))
    assert code == 1 and result["error"]["kind"] == "bad_job"
    assert "stretch" in result["error"]["message"]


def _start(job: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ROOT / "targets" / "runner.py"), str(job)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait_until_timing(proc: subprocess.Popen) -> None:
    """Read the runner's progress lines until it starts timing (it never ends by itself)."""
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if ": latency" in line:
            return
    raise AssertionError(f"the runner ended (exit {proc.wait()}) before timing: {seen}")


def test_a_killed_runner_leaves_the_previous_result_untouched(tiny_models: dict,
                                                              tmp_path: Path) -> None:
    job = _job(tmp_path, tiny_models["w8_a8"], {"attempt": "1"}, latency=AB)
    code, first = _run(job)
    assert code == 0 and first["attempt"] == "1"
    results = tmp_path / "results"
    before = (results / "j.json").read_bytes()
    _job(tmp_path, tiny_models["w8_a8"], {"attempt": "2"}, latency=ENDLESS)
    proc = _start(job)
    try:
        _wait_until_timing(proc)
        proc.kill()  # SIGKILL: no handler runs
        assert proc.wait(timeout=60) == -signal.SIGKILL
    finally:
        proc.kill()
        proc.stderr.close()
    assert (results / "j.json").read_bytes() == before
    assert os.listdir(results) == ["j.json"]  # no temp file left behind either


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stopped_runner_writes_no_result(tiny_models: dict, tmp_path: Path, signum: int) -> None:
    job = _job(tmp_path, tiny_models["w8_a8"], {"attempt": "1"}, latency=ENDLESS)
    proc = _start(job)
    try:
        _wait_until_timing(proc)
        proc.send_signal(signum)
        assert proc.wait(timeout=60) == 128 + signum  # the shell's convention
        assert "no result written" in proc.stderr.read()
    finally:
        proc.kill()
        proc.stderr.close()
    results = tmp_path / "results"
    assert not results.exists() or os.listdir(results) == []


def test_an_interrupted_write_keeps_the_previous_file(tmp_path: Path) -> None:
    import job as job_module

    target = tmp_path / "j.json"
    target.write_text('{"attempt": "1"}')

    def half_then_signal(f) -> None:
        f.write('{"attempt": "2", "sta')
        raise job_module.Interrupted(signal.SIGTERM)

    with pytest.raises(job_module.Interrupted):
        job_module.write_atomically(target, half_then_signal)
    assert target.read_text() == '{"attempt": "1"}' and os.listdir(tmp_path) == ["j.json"]
    job_module.write_result(target, {"attempt": "3"})
    assert json.loads(target.read_text()) == {"attempt": "3"}
    assert os.listdir(tmp_path) == ["j.json"] and (target.stat().st_mode & 0o777) == 0o644


# --------------------------------------------------------------------------- entry points

def test_entry_points_use_their_backend(tiny_models: dict, tmp_path: Path) -> None:
    code, result = _run(_job(tmp_path / "ort", tiny_models["w8_a8"], latency=AB), "ort_runner.py")
    assert code == 1 and result["error"]["kind"] == "model_load"
    assert "onnxruntime runs .onnx models" in result["error"]["message"]
    code, result = _run(_job(tmp_path / "tpu", tiny_models["w8_a8"], latency=AB),
                        "delegate_runner.py")
    assert code == 1 and result["error"]["kind"] == "bad_job"


@pytest.mark.parametrize("entry", ["runner.py", "delegate_runner.py"])
def test_a_missing_delegate_library_is_device_missing(tiny_models: dict, tmp_path: Path,
                                                      entry: str) -> None:
    """A delegate job (as the Edge TPU device kind writes it) through either entry point."""
    fields = {"delegate": {"name": "edgetpu", "library": "libno_such_delegate.so.1"},
              "loop_rate": True}
    code, result = _run(_job(tmp_path, tiny_models["w8_a8"], fields, latency=AB), entry)
    assert code == 1 and result["error"]["kind"] == "device_missing"
    assert "libno_such_delegate.so.1" in result["error"]["message"]
    assert "libedgetpu1-std" in result["error"]["message"]


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.float32])
def test_a_series_typed_once_equals_each_window_quantized(dtype) -> None:
    """The contiguous evaluation converts the whole series once (`typed`); every window of it
    must equal that window quantized alone (`quantized`), NaN house separators elsewhere."""
    detail = {"dtype": dtype, "shape": np.array([1, 7, 1]), "quantization": (0.05, -3)}
    rng = np.random.default_rng(0)
    series = rng.normal(0, 4, 60).astype(np.float32)  # also beyond the int8 range
    series[30] = np.nan
    whole = backends.typed(detail, np.nan_to_num(series))
    for start in (0, 5, 22, 31, 53):
        np.testing.assert_array_equal(whole[start:start + 7].reshape(1, 7, 1),
                                      backends.quantized(detail, series[start:start + 7]))
