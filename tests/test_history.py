"""History (SQLite): append real run directories, query trends; the compare, baseline and history
commands; the after-run pipeline of harness.regress."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from _cmp_fixtures import (ENV, SHA, SHA_B, failure, latency, real_samples_us, size_row,
                           store_artifacts, write_run)
from harness.errors import UserError
from harness.results.history import History, run_started
from harness.results.rundir import RunDir, RunMeta

X = real_samples_us(0)
IDS = ["20261120-020000-aaaa", "20261121-020000-bbbb", "20261122-020000-cccc"]


def _runs(tmp_path, scales=(1.0, 1.0, 1.2)):
    """Three nights: the baseline's build, the same build again, and a new build (SHA_B) that is
    10 % bigger and whose stored latency is `scales[2]` times the first."""
    dirs = []
    for i, (run_id, scale) in enumerate(zip(IDS, scales)):
        sha, size = (SHA_B, 1100) if i == 2 else (SHA, 1000)
        rows, series = latency(X, scale, sha=sha)
        rows.append(size_row(size, sha=sha))
        dirs.append(write_run(tmp_path / "reports", run_id, rows, series))
    return dirs


def test_run_dir_reads_the_contract_files(tmp_path):
    run = RunDir.open(_runs(tmp_path)[0])
    frame, samples, meta = run.frame(), run.samples(), run.meta()
    assert (frame["run_id"] == IDS[0]).all() and len(frame) == 9
    assert samples[0]["metric"] == "median_ms" and len(samples[0]["samples"]) == 100
    assert meta.environment["host"]["cpu_model"] == "AMD EPYC"
    with pytest.raises(UserError, match="no such run directory"):
        RunDir.open(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="not a run directory"):
        RunDir.open(tmp_path / "empty")


def test_append_and_trend(tmp_path):
    db = History(tmp_path / "history.sqlite")
    for run_dir in _runs(tmp_path):
        db.append(run_dir)
    runs = db.runs()
    assert list(runs["run_id"]) == IDS and runs["started"].iloc[0].startswith("2026-11-20T02:00")
    trend = db.trend(suite="smoke", metric="median_ms")
    assert list(trend["run_id"]) == IDS                           # oldest first
    assert trend["value"].iloc[2] == pytest.approx(trend["value"].iloc[0] * 1.2)
    assert list(db.trend(metric="median_ms", last=2)["run_id"]) == IDS[1:]
    assert db.trend(target="rpi4").empty
    assert set(db.trend(metric="size")["metric"]) == {"size_bytes"}   # a measurement name
    assert db.trend(suite="other").empty
    # raw samples and the environment fingerprint are kept
    with sqlite3.connect(db.path) as con:
        (n, samples), = con.execute("SELECT n, samples FROM samples WHERE run_id = ?", (IDS[0],))
        assert n == 100 and len(json.loads(samples)) == 100
    env = db.environments(IDS[0])
    assert env.iloc[0]["governor"] == "performance" and env.iloc[0]["runtime"] == "ai_edge_litert"
    assert env.iloc[0]["harness_version"] == "0.1.0"


def test_append_again_replaces(tmp_path):
    db = History(tmp_path / "h.sqlite")
    run_dir = _runs(tmp_path)[0]
    db.append(run_dir)
    db.append(run_dir)
    assert len(db.runs()) == 1 and len(db.trend()) == 9


def test_append_frames_and_failures(tmp_path):
    from harness.results.schema import to_frame

    rows, series = latency(X)
    rows.append(failure(variant="f16"))
    db = History(tmp_path / "h.sqlite")
    db.append(frame=to_frame(rows), samples=series,
              meta=RunMeta(run_id="20261122-030000-dddd", suite={"name": "smoke"},
                           environment={"host": ENV}))
    trend = db.trend()
    failed = trend[trend["status"] == "failed"]
    assert len(failed) == 1 and failed.iloc[0]["error_kind"] == "runner_crash"
    frame, samples, meta = db.run_frame("20261122-030000-dddd")
    assert len(frame) == len(rows) and samples[0]["samples"] == series[0]["samples"]
    assert meta.suite_name == "smoke" and meta.environment["host"]["cpu_model"] == "AMD EPYC"
    with pytest.raises(UserError, match="not in the history"):
        db.run_frame("missing")


def test_noise_from_history(tmp_path):
    db = History(tmp_path / "h.sqlite")
    for i, scale in enumerate((1.0, 1.1, 0.9, 1.05, 0.95)):
        rows, series = latency(X, scale)
        db.append(write_run(tmp_path / "r", f"2026112{i}-020000-aaaa", rows, series))
    noise = db.noise("smoke")
    assert any(k[6] == "median_ms" for k in noise)
    assert all(v > 0.03 for k, v in noise.items() if k[6] == "median_ms")


def test_run_started():
    assert run_started("20261122-014500-abcd") == "2026-11-22T01:45:00+00:00"
    assert run_started("x", {"started": "2026-01-01T00:00:00Z"}) == "2026-01-01T00:00:00Z"


# --------------------------------------------------------------------------- CLI

def test_cli_compare_baseline_history(tmp_path, monkeypatch):
    from harness.cli import app

    monkeypatch.chdir(tmp_path)
    base, same, slow = _runs(tmp_path)
    cli = CliRunner()
    result = cli.invoke(app, ["compare", str(same)])
    assert isinstance(result.exception, UserError) and "no baseline" in str(result.exception)

    # a baseline is pinned: its artifacts must be in the store beside the run
    result = cli.invoke(app, ["baseline", "set", str(base)])
    assert isinstance(result.exception, UserError), result.output
    assert "not in the artifact store" in str(result.exception)
    assert str(tmp_path / "reports" / "artifacts") in str(result.exception)
    store_artifacts(tmp_path / "reports" / "artifacts")
    result = cli.invoke(app, ["baseline", "set", str(base)])
    assert result.exit_code == 0, result.output
    assert "pinned in" in result.output
    assert (tmp_path / "baselines" / "smoke.json").is_file()
    result = cli.invoke(app, ["baseline", "show"])
    assert result.exit_code == 0 and "median_ms" in result.output

    result = cli.invoke(app, ["compare", str(same)])
    assert result.exit_code == 0, result.output
    assert "no regression" in result.output
    # the new build is 10 % bigger: a counted deterministic regression; its latency waits for
    # A/B, which needs the inventory's target (none in this folder): `?`, named, not failing
    result = cli.invoke(app, ["compare", str(slow)])
    assert result.exit_code == 1 and "REGRESSION" in result.output
    assert "size_bytes" in result.output and "not A/B-tested: no inventory at" in result.output
    assert f"changed: artifact cnn/w8 {SHA[:12]} -> {SHA_B[:12]} (host)" in result.output
    result = cli.invoke(app, ["compare", str(slow), "--against", str(same), "--format", "csv"])
    assert result.exit_code == 1 and result.output.startswith("target,")
    result = cli.invoke(app, ["compare", str(slow), "--format", "md", "-o", "c.md"])
    assert result.exit_code == 1 and (tmp_path / "c.md").read_text().startswith("# ")

    for run_dir in (base, same, slow):
        result = cli.invoke(app, ["history", "--append", str(run_dir)])
        assert result.exit_code == 0, result.output
    result = cli.invoke(app, ["history", "--suite", "smoke", "--last", "3"])
    assert result.exit_code == 0 and IDS[2] in result.output and "median_ms" in result.output
    # a run id from the history works as --against
    result = cli.invoke(app, ["compare", str(slow), "--against", IDS[1]])
    assert result.exit_code == 1


def test_after_run_nightly_flow(tmp_path, monkeypatch):
    from harness.regress import after_run
    from harness.results.rundir import COMPARE_CSV, COMPARE_MD

    monkeypatch.chdir(tmp_path)
    base, same, slow = _runs(tmp_path)
    store_artifacts(tmp_path / "reports" / "artifacts")     # what `harness run` stores
    # first night: no baseline yet -> nothing compared, the run becomes the baseline
    first = after_run(base, compare_baseline=True, update_baseline=True)
    assert first.comparison is None and not first.regressed
    assert first.missing_baseline == Path("baselines") / "smoke.json"     # relative to the cwd
    assert first.baseline_written == first.missing_baseline
    assert (tmp_path / "baselines" / "smoke.json").is_file()
    assert first.history_run_id == IDS[0]
    second = after_run(same, compare_baseline=True)
    assert second.comparison is not None and not second.regressed
    assert second.missing_baseline is None and second.baseline_written is None
    third = after_run(slow, compare_baseline=True)
    assert third.regressed and third.comparison.title == f"{IDS[2]} vs {third.comparison.label}"
    assert third.comparison.label.startswith("baseline baselines/smoke.json")
    assert third.comparison_files == (slow / COMPARE_MD, slow / COMPARE_CSV)
    assert (slow / COMPARE_MD).read_text().startswith(f"# {IDS[2]} vs baseline")
    assert (slow / COMPARE_CSV).read_text().startswith("target,")
    assert len(History(tmp_path / "reports" / "history.sqlite").runs()) == 3
    # without the history: nothing appended, the comparison still made
    quiet = after_run(slow, compare_baseline=True, record_history=False,
                      history_path=tmp_path / "elsewhere.sqlite")
    assert quiet.history_run_id is None and quiet.regressed
    assert not (tmp_path / "elsewhere.sqlite").exists()


def test_compare_run_against_a_run_dir_and_a_history_id(tmp_path, monkeypatch):
    from harness.regress import compare_run, load_reference

    monkeypatch.chdir(tmp_path)
    base, same, slow = _runs(tmp_path)
    result = compare_run(slow, same)
    assert result.regressed and result.label == f"run {same}"
    assert not compare_run(same, base).regressed
    History(tmp_path / "h.sqlite").append(same)
    reference = load_reference(IDS[1], "smoke", history_path=tmp_path / "h.sqlite")
    assert reference.label == f"run {IDS[1]} (history)"
    assert reference.environment["host"]["cpu_model"] == "AMD EPYC"
    with pytest.raises(UserError, match="no baseline for suite 'smoke'"):
        load_reference(None, "smoke", baselines=tmp_path / "none")
    with pytest.raises(UserError, match="not a baseline file, a run directory or a run id"):
        load_reference("nope", "smoke", history_path=tmp_path / "missing.sqlite")
