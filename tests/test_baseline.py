"""baselines/<suite>.json: round trip, size cap, diff-friendly layout, compare on a fresh clone."""

from __future__ import annotations

import json
import shutil
import subprocess

import pandas as pd
import pytest

from _cmp_fixtures import (ENV, SHA, SHA_B, accuracy_row, failure, frame, latency,
                           real_samples_us, size_row, store_artifacts, suite_dict, write_run)
from harness.compare import compare_runs, measurement_protocol
from harness.errors import UserError
from harness.results.artifact_store import ArtifactStore
from harness.results.baseline import (MAX_SAMPLES, baseline_path, read_baseline, render_baseline,
                                      set_baseline, write_baseline)
from harness.results.schema import KEY_COLUMNS

X = real_samples_us(0)
LONG = X * 7          # 700 real samples: more than the cap


def _run():
    rows, series = latency(LONG)
    rows2, series2 = latency(X, threads=2)
    extra = [size_row(123_456), accuracy_row("f1", 0.8125), failure(variant="f16")]
    return rows + rows2 + extra, series + series2


def test_round_trip(tmp_path):
    rows, series = _run()
    f = frame(rows)
    path = write_baseline(tmp_path / "smoke.json", f, series, suite="smoke",
                          environment={"host": dict(ENV, temperature_c=51.2)}, source_run="r1")
    b = read_baseline(path)
    assert (b.suite, b.source_run) == ("smoke", "r1")
    # every row back with its key and value
    key = KEY_COLUMNS + ["value", "unit", "status", "error_kind", "artifact_sha256"]
    got = b.frame[key].astype(str).sort_values(KEY_COLUMNS).reset_index(drop=True)
    want = f[key].astype(str).sort_values(KEY_COLUMNS).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want)
    assert b.frame["threads"].dtype == "Int64"
    # samples: capped, evenly spaced in time order, original count kept
    by_threads = {s["threads"]: s for s in b.samples}
    assert by_threads[1]["n"] == 700 and len(by_threads[1]["samples"]) == MAX_SAMPLES
    assert by_threads[1]["samples"][0] == pytest.approx(LONG[0] / 1e3, abs=1e-3)
    assert by_threads[2]["n"] == 100 and len(by_threads[2]["samples"]) == 100
    # the environment without volatile readings
    assert b.environment["host"]["cpu_model"] == "AMD EPYC"
    assert "temperature_c" not in b.environment["host"]


def _median(c):
    rows = c.rows[(c.rows["metric"] == "median_ms") & (c.rows["threads"] == 1)]
    assert len(rows) == 1
    return rows.iloc[0]


def _compare(rows, b, **kw):
    return compare_runs(frame(rows), b.frame, current_env={"host": ENV},
                        baseline_env=b.environment, **kw)


def test_compare_with_read_back_baseline_is_unchanged(tmp_path):
    rows, series = _run()
    path = write_baseline(tmp_path / "smoke.json", frame(rows), series, suite="smoke",
                          environment={"host": ENV})
    b = read_baseline(path)
    c = _compare(rows, b)
    assert set(c.rows["mark"]) == {"~"}, c.rows[["mark", "metric", "reason"]]
    assert not c.regressed
    # the same artifact 20 % slower: nothing under test changed, the machine moved
    slow_rows, _ = latency(LONG, 1.2)
    c = _compare(slow_rows, b)
    median = _median(c)
    assert median["mark"] == "~" and "nothing under test changed" in median["reason"]
    assert not c.regressed
    # a new artifact 20 % slower: suspect, to re-measure A/B - never `+` from stored runs
    new_rows, _ = latency(LONG, 1.2, sha=SHA_B)
    c = _compare(new_rows + [size_row(123_456, sha=SHA_B)], b)
    median = _median(c)
    assert median["mark"] == "?" and median["state"] == "remeasure"
    assert median["baseline_artifact_sha256"] == SHA and median["artifact_sha256"] == SHA_B
    assert not c.regressed and c.remeasure_series() == [("host", "cnn", "w8", "ai_edge_litert",
                                                         "1")]
    # and a bigger new artifact is a regression, read against the file's rows
    c = _compare(new_rows + [size_row(130_000, sha=SHA_B)], b)
    assert c.rows[c.rows["metric"] == "size_bytes"].iloc[0]["mark"] == "+" and c.regressed


def test_baseline_keeps_the_protocol_and_the_artifacts(tmp_path):
    rows, series = _run()
    run_dir = write_run(tmp_path / "reports", "20261122-010000-aaaa", rows, series,
                        suite_doc=suite_dict())
    # pinning: the baseline's artifacts must be in the store, else nothing is written
    store = ArtifactStore(tmp_path / "reports" / "artifacts")
    with pytest.raises(UserError, match=f"{SHA[:12]} \\(cnn/w8 on host\\)") as error:
        set_baseline(run_dir, tmp_path / "baselines", store=store)
    assert f"copy the files into {store.root}" in str(error.value)
    assert not (tmp_path / "baselines" / "smoke.json").exists()
    store_artifacts(store.root)
    path = set_baseline(run_dir, tmp_path / "baselines", store=store)
    b = read_baseline(path)
    assert b.protocol == measurement_protocol(suite_dict())
    assert json.loads(path.read_text())["protocol"]["latency"]["runs"] == 30
    assert set(b.frame["artifact_sha256"].dropna()) == {SHA}      # per row
    # the protocol check works against the file: other latency settings are not comparable
    new_rows, _ = latency(LONG, sha=SHA_B)
    c = _compare(new_rows, b, baseline_protocol=b.protocol,
                 current_protocol=measurement_protocol(suite_dict(runs=60)))
    median = _median(c)
    assert median["mark"] == "x" and "runs 30 -> 60" in median["reason"]
    c = _compare(new_rows, b, baseline_protocol=b.protocol,
                 current_protocol=measurement_protocol(suite_dict()))
    assert _median(c)["mark"] == "?"


def test_layout_is_diff_friendly(tmp_path):
    rows, series = _run()
    text = render_baseline(frame(rows), series, suite="smoke", environment={"host": ENV},
                           source_run="r1", created="2026-11-22T00:00:00+00:00")
    again = render_baseline(frame(list(reversed(rows))), list(reversed(series)), suite="smoke",
                            environment={"host": ENV}, source_run="r1",
                            created="2026-11-22T00:00:00+00:00")
    assert text == again                      # order of input does not matter
    doc = json.loads(text)
    lines = text.splitlines()
    # one line per row and per sample series, each a JSON object with sorted keys
    row_lines = [line for line in lines if '"metric"' in line and '"samples"' not in line]
    assert len(row_lines) == len(doc["rows"])
    for line in row_lines:
        obj = json.loads(line.strip().rstrip(","))
        assert list(obj) == sorted(obj)
    assert sum('"samples": [' in line and '"n"' in line for line in lines) == len(doc["samples"])
    # small: 2 series (200 + 100 samples) and ~20 rows
    assert len(text) < 12_000


def test_read_errors_name_the_file(tmp_path):
    with pytest.raises(UserError, match="no baseline at"):
        read_baseline(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(UserError, match="bad.json: not a valid baseline"):
        read_baseline(bad)
    bad.write_text('{"schema_version": 99}')
    with pytest.raises(UserError, match="schema_version"):
        read_baseline(bad)


def test_set_from_run_dir_commit_and_compare_on_a_fresh_clone(tmp_path):
    rows, series = _run()
    run_dir = write_run(tmp_path / "reports", "20261122-010000-aaaa", rows, series)
    repo = tmp_path / "repo"
    path = set_baseline(run_dir, repo / "baselines")
    assert path == baseline_path("smoke", repo / "baselines")
    b = read_baseline(path)
    assert b.source_run == "20261122-010000-aaaa"
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"]
    subprocess.run(git + ["init", "-q", str(repo)], check=True)
    subprocess.run(git + ["-C", str(repo), "add", "baselines/smoke.json"], check=True)
    subprocess.run(git + ["-C", str(repo), "commit", "-q", "-m", "baseline"], check=True)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
    cloned = read_baseline(clone / "baselines" / "smoke.json")
    assert (clone / "baselines" / "smoke.json").read_text() == path.read_text()
    c = _compare(rows, cloned)
    assert set(c.rows["mark"]) == {"~"} and c.exit_code() == 0


def test_baseline_from_several_runs_carries_their_noise(tmp_path):
    dirs = []
    for i, scale in enumerate((0.99, 1.0, 1.01, 1.0)):
        rows, series = latency(X, scale)
        rows.append(size_row(1000))
        dirs.append(write_run(tmp_path / "reports", f"2026112{i}-020000-aaaa", rows, series))
    with pytest.raises(UserError, match="no noise estimate"):
        set_baseline(dirs[:2], tmp_path / "baselines")
    path = set_baseline(dirs, tmp_path / "baselines")
    b = read_baseline(path)
    assert b.source_run == "20261123-020000-aaaa"                 # the last run is the baseline
    assert b.meta["noise_runs"] == [d.name for d in dirs]
    median_noise = [v for k, v in b.noise.items() if k[6] == "median_ms"]
    # sd of log(0.99, 1, 1.01, 1) = 0.00816, x 2.27 for its 90 % upper bound from 4 runs
    assert median_noise and median_noise[0] == pytest.approx(0.00816 * 2.27, abs=0.0004)
    assert any(k[6] == "size_bytes" and v == 0 for k, v in b.noise.items())
    assert '"noise": ' in path.read_text()
    # a new artifact: +1 % is ruled out as a +10 % change by that noise, +8 % is not, and +100 %
    # is suspect - the stored runs never call it `+`, the A/B re-measurement decides
    for scale, expected, says in ((1.01, "~", "rules out +10.0 %"),
                                  (1.08, "?", "cannot rule out"), (2.0, "?", "cannot rule out")):
        rows, _ = latency(X, scale, sha=SHA_B)
        c = _compare(rows, b, noise=b.noise)
        row = _median(c)
        assert row["mark"] == expected and says in row["reason"], row["reason"]
        assert not c.regressed
