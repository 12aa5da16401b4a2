"""harness.remeasure: the A/B re-measurement driver on the host target with a small real model,
real runner processes and the real sequential decision; job documents and stale results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.config.inventory import Target
from harness.devices import runner_exec
from harness.devices.base import TargetContext
from harness.errors import InfraError, UserError
from harness.remeasure import (BUDGET, PROTOCOL, ABSeries, RemeasuredAB, job_document,
                               process_median, remeasure)
from harness.sequential_ab import ABResult, Decision
from harness.transport import LocalTransport
from harness.transport.base import CommandResult

LOOKS = (3, 5)


def inventory(tmp: Path) -> Path:
    path = tmp / "inventory.yaml"
    path.write_text(f"targets:\n  host:\n    kind: cpu\n    workdir: {tmp / 'host'}\n"
                    f"  board:\n    kind: arduino\n    via: host\n")
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small float Conv1D model (~0.1-0.3 ms per invoke here): long enough an invoke that one
    process's median is stable under a loaded machine (a few-µs model's medians spread by 2x
    there), converted through the production path."""
    import keras

    from harness.artifacts.convert import convert, converter_factory, export_batch1

    keras.utils.set_random_seed(0)
    inputs = keras.Input((256, 1))
    x = keras.layers.Conv1D(32, 9, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv1D(32, 9, padding="same", activation="relu")(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(1)(keras.layers.Dense(32, activation="relu")(x))
    folder = tmp_path_factory.mktemp("ab_model")
    keras.Model(inputs, outputs).save(folder / "cnn.keras")
    factory = converter_factory(export_batch1(folder / "cnn.keras", folder / "saved", None))
    path = folder / "cnn.tflite"
    path.write_bytes(convert(factory, "convert_only", None))
    return path


def series(a: Path, b: Path, name: str = "cnn", threads: int = 1) -> ABSeries:
    return ABSeries("host", name, "convert_only", "auto", threads, a, b)


# --------------------------------------------------------------------------- documents

def test_job_document_is_one_short_latency_process() -> None:
    doc = job_document("ab-x-s00-r001-A1", "x/0/1/A/1", "artifacts/m.tflite", "auto", 2)
    assert doc["measure"] == {"latency": dict(PROTOCOL, threads=[2]), "memory": False}
    assert doc["result"] == "results/ab-x-s00-r001-A1.json"
    assert "stretch" not in doc and "delegate" not in doc
    assert job_document("j", "a", "m", "auto", 1, stretch=1.1)["stretch"] == 1.1


def test_process_median_reads_the_series_threads() -> None:
    result = {"status": "ok", "latency": [{"threads": 1, "median_us": 10.0},
                                          {"threads": 2, "median_us": 7.5}]}
    assert process_median(result, 2) == 7.5
    with pytest.raises(ValueError, match="model_load"):
        process_median({"status": "error", "error": {"kind": "model_load", "message": "bad"}}, 1)
    with pytest.raises(ValueError, match="no positive median"):
        process_median({"status": "ok", "latency": [{"threads": 1, "median_us": None}]}, 1)


class SilentTransport(LocalTransport):
    """A local target whose commands do nothing (the runner never runs)."""

    def run(self, argv: list[str], timeout: float | None = None) -> CommandResult:
        return CommandResult(0, "", "")


def test_a_stale_result_is_never_read(tmp_path: Path) -> None:
    transport = SilentTransport("host", tmp_path / "device")
    ctx = TargetContext("host", Target(kind="cpu"), transport, None,  # type: ignore[arg-type]
                        tmp_path / "local", tmp_path / "cache", runner_dir="runner")
    doc = job_document("ab-t-s00-r001-B1", "t/0/1/B/1", "artifacts/m.tflite", "auto", 1)
    with pytest.raises(InfraError, match="produced no result") as info:
        runner_exec.run_document(ctx, doc)
    assert info.value.kind == "runner_crash"
    # an earlier process left a result at the same path: another attempt, never accepted
    stale = tmp_path / "device" / doc["result"]
    stale.parent.mkdir(parents=True)
    stale.write_text(json.dumps({"job_id": doc["job_id"], "attempt": "t/0/1/B/0",
                                 "status": "ok", "latency": [{"threads": 1, "median_us": 1.0}]}))
    with pytest.raises(InfraError, match="another job or attempt"):
        runner_exec.run_document(ctx, doc)
    stale.write_text(json.dumps({"job_id": doc["job_id"], "attempt": doc["attempt"],
                                 "status": "ok"}))
    assert runner_exec.run_document(ctx, doc)["attempt"] == doc["attempt"]


# --------------------------------------------------------------------------- errors

def test_a_missing_artifact_is_a_clear_error(tmp_path: Path) -> None:
    model = tmp_path / "m.tflite"
    model.write_bytes(b"x")
    missing = tmp_path / "gone.tflite"
    with pytest.raises(UserError, match=r"the baseline artifact .*gone\.tflite does not exist"):
        remeasure([series(missing, model)], inventory_path=inventory(tmp_path))
    with pytest.raises(UserError, match=r"the candidate artifact .*gone\.tflite"):
        remeasure([series(model, missing)], inventory_path=inventory(tmp_path))
    with pytest.raises(UserError, match="target 'nowhere' is not in the inventory"):
        remeasure([ABSeries("nowhere", "m", "v", "auto", 1, model, model)],
                  inventory_path=inventory(tmp_path))
    with pytest.raises(UserError, match="more than once"):
        remeasure([series(model, model)] * 2, inventory_path=inventory(tmp_path))
    with pytest.raises(UserError, match="threshold"):
        remeasure([series(model, model)], inventory_path=inventory(tmp_path), threshold=2.0)
    assert not (tmp_path / "host").exists()            # nothing ran


def test_a_kind_without_the_runner_is_unknown_with_the_reason(tmp_path: Path) -> None:
    model = tmp_path / "m.tflite"
    model.write_bytes(b"x")
    key = ("board", "m", "convert_only", "tflm", 1)
    result = remeasure([ABSeries(*key, model, model)], inventory_path=inventory(tmp_path))[key]
    assert result.decision is Decision.UNKNOWN and result.pairs == 0
    assert "not measured by the runner" in result.reason


# --------------------------------------------------------------------------- real processes

@pytest.mark.slow
def test_a_2x_slower_candidate_is_regressed(model: Path, tmp_path: Path) -> None:
    lines: list[str] = []
    results = remeasure([series(model, model)], inventory_path=inventory(tmp_path), looks=LOOKS,
                        stretch=2.0, progress=lines.append)
    result = results[series(model, model).key]
    assert isinstance(result, ABResult) and isinstance(result, RemeasuredAB)
    assert result.decision is Decision.REGRESSED, result.describe()
    assert result.ratio > 1.5 and result.ci_low > 1
    assert result.pairs in LOOKS and result.reason is None and result.seconds > 0
    assert any("REGRESSED" in line for line in lines)
    # every process had its own job; the target keeps none of them
    assert not list((tmp_path / "host" / "jobs").glob("ab-*"))
    assert not list((tmp_path / "host" / "results").glob("ab-*"))


@pytest.mark.slow
def test_identical_artifacts_are_not_regressed(model: Path, tmp_path: Path) -> None:
    # alpha 0.001: the chance that this test fails although the driver is right is below 0.1 %
    result = remeasure([series(model, model)], inventory_path=inventory(tmp_path), looks=LOOKS,
                       alpha=0.001, threshold=lambda s: 0.2 if s.model == "cnn" else 0.1,
                       )[series(model, model).key]
    assert result.decision in (Decision.SAME, Decision.UNKNOWN), result.describe()
    assert result.pairs in LOOKS and result.reason is None and result.threshold == 0.2


@pytest.mark.slow
def test_the_budget_is_respected(model: Path, tmp_path: Path) -> None:
    two = [series(model, model, "first"), series(model, model, "second")]
    spent = remeasure(two, inventory_path=inventory(tmp_path), budget_seconds=0)
    assert [(r.decision, r.reason, r.pairs) for r in spent.values()] == \
        [(Decision.UNKNOWN, BUDGET, 0)] * 2
    # 2 s cannot hold the 6 pairs of the first look (a pair takes >= 2 x 0.3 s of protocol)
    results = remeasure(two, inventory_path=inventory(tmp_path), budget_seconds=2.0)
    first, second = (results[s.key] for s in two)
    assert first.decision is Decision.UNKNOWN and first.reason == BUDGET and first.pairs < 6
    assert (second.decision, second.reason, second.pairs) == (Decision.UNKNOWN, BUDGET, 0)
    assert "budget" in first.describe()


@pytest.mark.slow
def test_a_failing_process_is_retried_once_then_the_series_is_unknown(model: Path,
                                                                      tmp_path: Path) -> None:
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"not a flatbuffer" * 8)
    result = remeasure([series(model, broken)], inventory_path=inventory(tmp_path),
                       looks=LOOKS)[series(model, broken).key]
    assert result.decision is Decision.UNKNOWN and result.pairs == 0
    assert result.reason.startswith("side B (candidate) failed twice: runner error")
