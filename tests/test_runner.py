"""The device-side runner on real models: job JSON in, result JSON out, failures as documents."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "targets"))
import runner  # noqa: E402


def _job(workdir: Path, model: Path, **measure) -> Path:
    (workdir / "artifacts").mkdir(parents=True, exist_ok=True)
    (workdir / "jobs").mkdir(exist_ok=True)
    shutil.copyfile(model, workdir / "artifacts" / model.name)
    job = {"schema_version": 1, "job_id": "j", "model": f"artifacts/{model.name}", "runtime": "auto",
           "result": "results/j.json", "measure": measure}
    path = workdir / "jobs" / "j.json"
    path.write_text(json.dumps(job))
    return path


def _run(job: Path) -> tuple[int, dict]:
    proc = subprocess.run([sys.executable, str(ROOT / "targets" / "runner.py"), str(job)],
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
    code, result = _run(_job(tmp_path / "wd", bad, latency=LATENCY))
    assert code == 1 and result["status"] == "error"
    assert result["error"]["kind"] in ("model_load", "runner_crash")
    assert "bad.tflite" in result["error"]["message"] or result["error"]["kind"] == "runner_crash"


def test_missing_runtime_names_the_fix() -> None:
    with pytest.raises(runner.RunnerError) as err:
        runner.import_runtime("no_such_runtime")
    assert err.value.kind == "runtime_missing" and "pip install ai-edge-litert" in str(err.value)


def test_delegate_coverage_finds_undelegated_nodes() -> None:
    def op(index, name, inputs, outputs):
        return {"index": index, "op_name": name, "inputs": inputs, "outputs": outputs}

    # 0 -CONV-> 2 -RELU-> 3 -CUSTOM-> 4; a delegate took CONV and RELU (inputs 0,1 → output 3)
    ops = [op(0, "CONV_2D", [0, 1], [2]), op(1, "RELU", [2], [3]), op(2, "CUSTOM", [3], [4]),
           op(3, "DELEGATE", [0, 1], [3])]
    assert runner.delegate_coverage(ops) == {"delegate": "XNNPACK", "delegated_nodes": 1,
                                             "undelegated_ops": ["CUSTOM"]}
    assert runner.delegate_coverage(ops[:3])["undelegated_ops"] == ["CONV_2D", "CUSTOM", "RELU"]
