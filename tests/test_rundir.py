"""The run directory model: run.json with a format version, rows, samples, results, reports, and the
recorder `harness run` writes through from several target threads."""

from __future__ import annotations

import json
import threading

import pytest

from _cmp_fixtures import ENV, latency, real_samples_us, size_row, write_run
from harness.errors import UserError
from harness.results.rundir import (FORMAT_VERSION, RESULTS_FILE, ROWS_FILE, RUN_FILE, RunDir,
                                    RunMeta, suite_name)
from harness.results.schema import to_frame

X = real_samples_us(0)


def test_meta_round_trip_keeps_unknown_keys(tmp_path):
    run = RunDir.create(tmp_path, "smoke", "20261122-010000-aaaa")
    meta = RunMeta(run_id=run.run_id, suite={"name": "smoke", "thresholds": {"median_ms": 0.1}},
                   targets=["host"], harness_version="0.1.0", environment={"host": ENV})
    run.write_meta(meta)
    doc = json.loads(run.file(RUN_FILE).read_text())
    assert doc["format_version"] == FORMAT_VERSION and doc["suite"]["name"] == "smoke"
    assert run.meta() == meta and run.meta().thresholds == {"median_ms": 0.1}
    doc["started"] = "2026-11-22T01:00:00+00:00"           # a key this version does not model
    run.file(RUN_FILE).write_text(json.dumps(doc))
    again = run.meta()
    assert again.extra == {"started": "2026-11-22T01:00:00+00:00"}
    assert again.to_json()["started"] == doc["started"]
    assert not list(tmp_path.rglob("*.tmp"))                # the atomic write left no temp file


def test_newer_format_version_is_refused_naming_the_file(tmp_path):
    run = RunDir.create(tmp_path, "smoke")
    run.file(RUN_FILE).write_text(json.dumps({"run_id": run.run_id,
                                              "format_version": FORMAT_VERSION + 1}))
    with pytest.raises(UserError, match=f"{run.file(RUN_FILE)}: run format_version"):
        run.meta()


def test_run_json_written_before_versioning_reads_as_version_one(tmp_path):
    run = RunDir.create(tmp_path, "smoke", "20261122-010000-bbbb")
    run.file(RUN_FILE).write_text(json.dumps({"suite": "smoke", "environment": {"host": ENV}}))
    meta = run.meta()
    assert meta.format_version == 1 and meta.run_id == run.run_id
    assert meta.suite == {"name": "smoke"} and meta.environment["host"] == ENV


def test_rows_samples_results_and_resume_drop(tmp_path):
    rows, series = latency(X)
    run_dir = write_run(tmp_path, "20261122-010000-cccc", rows + [size_row(1000)], series)
    run = RunDir.open(run_dir)
    assert len(run.rows()) == 9 and run.samples()[0]["samples"] == series[0]["samples"]
    assert (run_dir / RESULTS_FILE).is_file() and len(run.frame()) == 9
    (run_dir / RESULTS_FILE).unlink()                        # an unfinished run: the row log
    assert len(run.frame()) == 9 and (run.frame()["run_id"] == run.run_id).all()
    run.drop_rows(lambda r: r["measurement"] != "size")
    assert len(run.rows()) == 8 and len(run.finish()) == 8
    assert run.suite_name() == "smoke"


def test_suite_name_from_meta_or_rows(tmp_path):
    rows, _ = latency(X)
    assert suite_name(RunMeta(run_id="r", suite={"name": "a"}), to_frame(rows)) == "a"
    assert suite_name(RunMeta(run_id="r"), to_frame(rows)) == "smoke"     # the rows' suite column
    for row in rows:
        row["suite"] = None
    assert suite_name(RunMeta(run_id="r"), to_frame(rows), required=False) is None
    with pytest.raises(UserError, match="cannot tell which suite"):
        suite_name(RunMeta(run_id="r"), to_frame(rows))


def test_open_needs_rows(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / ROWS_FILE).write_text("")
    assert RunDir.open(tmp_path / "r").rows() == []
    with pytest.raises(UserError, match="not a run directory"):
        RunDir.open(tmp_path)


def test_recorder_from_several_threads(tmp_path):
    from harness.api import RunRecorder
    from harness.orchestrate import TargetOutcome

    run = RunDir.create(tmp_path, "smoke")
    recorder = RunRecorder(run, RunMeta(run_id=run.run_id, suite={"name": "smoke"}))
    targets = [f"t{i}" for i in range(8)]

    def report(target: str) -> None:
        for threads in (1, 2, 3):
            rows, series = latency(X[:20], threads=threads, target=target)
            recorder.record(TargetOutcome(target, rows, series, dict(ENV, hostname=target), False))

    workers = [threading.Thread(target=report, args=(t,)) for t in targets]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    frame, report_ = recorder.finish(1.25)
    assert len(run.samples()) == 3 * len(targets) and len(frame) == 8 * 3 * len(targets)
    meta = run.meta()
    assert sorted(meta.environment) == targets and meta.seconds == 1.2
    assert {env["hostname"] for env in meta.environment.values()} == set(targets)
    assert run.file("report.md").read_text().startswith("# harness report: smoke")
    assert report_.title == "harness report: smoke"
