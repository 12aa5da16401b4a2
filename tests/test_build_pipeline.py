"""`build_artifacts` trains model k+1 while model k converts: `prepare` (training, export) runs
in the calling thread in suite order, each model's `build` (conversion in the converter process)
in one second thread, never before its own `prepare` has finished. Ctrl-C stops the training of
further models; a suite with optimisation variants builds in sequence. (A recording stand-in
for the Builder: the real one is exercised by every suite run in the end-to-end tests.)"""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness import api
from harness.artifacts import Artifact
from harness.workloads import ModelSpec

MODELS = ["a", "b", "c"]


class RecordingBuilder:
    """Stands in for `Builder`: records which thread did what, in which order."""

    converts_apart = True
    expect_overlap = True  # a model's build waits (≤ 5 s) for the next model's training to start
    cancel_after: tuple[str, threading.Event] | None = None  # (model, event set after its prepare)

    def __init__(self, suite, suite_path, cache) -> None:
        self.events: list[tuple[str, str, str]] = []  # (what, model, thread)
        self.lock = threading.Lock()
        self.prepared = {name: threading.Event() for name in MODELS}
        self.closed = False

    def _note(self, what: str, spec: ModelSpec) -> None:
        with self.lock:
            self.events.append((what, spec.name, threading.current_thread().name))

    def prepare(self, spec: ModelSpec) -> None:
        self._note("prepare", spec)
        self.prepared[spec.name].set()
        if self.cancel_after is not None and self.cancel_after[0] == spec.name:
            self.cancel_after[1].set()

    def build(self, spec: ModelSpec) -> list[Artifact]:
        self._note("build", spec)
        following = MODELS.index(spec.name) + 1
        if self.expect_overlap and following < len(MODELS):
            assert self.prepared[MODELS[following]].wait(5), "no overlap"
        return [Artifact(spec.name, "convert_only")]

    def close(self) -> None:
        self.closed = True


def _plan() -> SimpleNamespace:
    suite = SimpleNamespace(variants=["convert_only"],
                            measurements=SimpleNamespace(quant_error=None))
    return SimpleNamespace(suite=suite, suite_path=Path("suite.yaml"),
                           models=[ModelSpec(name, workload="nilm") for name in MODELS])


@pytest.fixture
def builders(monkeypatch: pytest.MonkeyPatch) -> list[RecordingBuilder]:
    made: list[RecordingBuilder] = []

    def make(*args) -> RecordingBuilder:
        made.append(RecordingBuilder(*args))
        return made[-1]
    monkeypatch.setattr(api, "Builder", make)
    return made


def test_conversion_overlaps_the_next_models_training(builders, tmp_path):
    artifacts, _ = api.build_artifacts(_plan(), tmp_path)
    builder = builders[0]
    assert sorted(artifacts) == [(name, "convert_only") for name in MODELS]
    main = threading.current_thread().name
    prepares = [(model, thread) for what, model, thread in builder.events if what == "prepare"]
    assert prepares == [(name, main) for name in MODELS]
    builds = [e for e in builder.events if e[0] == "build"]
    assert [model for _, model, _ in builds] == MODELS
    assert all(thread != main for _, _, thread in builds)
    for name in MODELS:  # a model converts only after its own training
        assert builder.events.index(("prepare", name, main)) < \
            next(i for i, e in enumerate(builder.events) if e[:2] == ("build", name))
    assert builder.closed


def test_cancel_stops_training_and_keeps_what_was_converted(builders, tmp_path, monkeypatch):
    cancel = threading.Event()
    monkeypatch.setattr(RecordingBuilder, "expect_overlap", False)
    monkeypatch.setattr(RecordingBuilder, "cancel_after", ("a", cancel))  # Ctrl-C while a trains
    artifacts, builder = api.build_artifacts(_plan(), tmp_path, cancel=cancel)
    assert [e[:2] for e in builder.events if e[0] == "prepare"] == [("prepare", "a")]
    assert set(artifacts) <= {("a", "convert_only")} and builder.closed


def test_optimisation_suites_build_in_sequence(builders, tmp_path, monkeypatch):
    monkeypatch.setattr(RecordingBuilder, "converts_apart", False)
    monkeypatch.setattr(RecordingBuilder, "expect_overlap", False)
    api.build_artifacts(_plan(), tmp_path)
    main = threading.current_thread().name
    assert builders[0].events == [(what, name, main) for name in MODELS
                                  for what in ("prepare", "build")]
