"""The controller's own heavy work (TFLM arena search, ONNX export) happens before any target
measures, cached on disk, and the rows stay what they were."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.artifacts import Artifact, tflm_arena
from harness.artifacts.cache import sha256_file
from harness.config.inventory import Inventory
from harness.orchestrate import run_plan
from harness.plan import Job, Plan
from harness.results import profile_rows
from harness.transport import LocalTransport
from harness.transport.base import CommandResult

FIELDS = {"suite": "s", "target": "t", "model": "m", "variant": "w8_a8"}


def test_cached_tflm_rows_are_the_rows_and_skip_the_search(tiny_models: dict, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    model = tiny_models["w8_a8"]
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"not a model" * 10)
    direct = {p: profile_rows.tflm_rows(p, "w8_a8", FIELDS, 256, 1024) for p in (model, broken)}
    assert direct[model][0]["metric"] == "tflm_arena_bytes"
    assert direct[broken][0]["status"] == "failed"
    for path in (model, broken):                        # computed once, into the cache ...
        assert profile_rows.tflm_rows(path, "w8_a8", FIELDS, 256, 1024,
                                      cache=tmp_path) == direct[path]
    assert len(list((tmp_path / "tflm").glob("*.json"))) == 2

    def no_search(path: object) -> int:
        raise AssertionError("the TFLM arena search ran again")

    monkeypatch.setattr(tflm_arena, "tflm_arena_bytes", no_search)
    for path in (model, broken):                        # ... then only read
        assert profile_rows.tflm_rows(path, "w8_a8", FIELDS, 256, 1024,
                                      cache=tmp_path) == direct[path]


class RecordingTransport(LocalTransport):
    """The local host, noting when the runner starts."""

    def __init__(self, events: list[str], *args: object) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.events = events

    def run(self, argv: list[str], timeout: float | None = None) -> CommandResult:
        if any(str(a).endswith("runner.py") for a in argv):
            self.events.append("runner")
        return super().run(argv, timeout)


@pytest.mark.slow
def test_the_tflm_arena_is_computed_before_any_target_measures(
        tiny_models: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from accel_util import make_suite

    events: list[str] = []
    search = tflm_arena.tflm_arena_bytes

    def recorded(path: object) -> int:
        events.append("tflm")
        return search(path)

    monkeypatch.setattr(tflm_arena, "tflm_arena_bytes", recorded)
    suite = make_suite(tiny_models["w8_a8"])
    assert suite.measurements.memory
    inventory = Inventory.model_validate({"targets": {"host": {"kind": "cpu"}}})
    jobs = [Job("host", "tiny", variant, "auto") for variant in ("convert_only", "w8_a8")]
    plan = Plan(suite, tmp_path / "suite.yaml", ["host"], [], jobs, [])
    artifacts = {(job.model, job.variant): Artifact(
        job.model, job.variant, path=tiny_models[job.variant],
        sha256=sha256_file(tiny_models[job.variant]),
        size_bytes=tiny_models[job.variant].stat().st_size) for job in jobs}
    outcomes = run_plan(plan, inventory, artifacts, tmp_path / "run", tmp_path / "cache",
                        lambda outcome: None, lambda target: None,
                        connect=lambda name, target: RecordingTransport(events, name,
                                                                        tmp_path / "device"))
    assert events == ["tflm", "tflm", "runner", "runner"]
    rows = [r for r in outcomes[0].rows if r["metric"] == "tflm_arena_bytes"]
    assert {r["variant"]: r["value"] for r in rows} == {
        v: search(tiny_models[v]) for v in ("convert_only", "w8_a8")}
