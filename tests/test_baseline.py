"""baselines/<suite>.json: round trip, size cap, diff-friendly layout, compare on a fresh clone."""

from __future__ import annotations

import json
import shutil
import subprocess

import pandas as pd
import pytest

from _cmp_fixtures import (ENV, accuracy_row, failure, frame, latency, real_samples_us, size_row,
                           write_run)
from harness.compare import compare_runs
from harness.errors import UserError
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


def test_compare_with_read_back_baseline_is_unchanged(tmp_path):
    rows, series = _run()
    path = write_baseline(tmp_path / "smoke.json", frame(rows), series, suite="smoke",
                          environment={"host": ENV})
    b = read_baseline(path)
    c = compare_runs(frame(rows), series, b.frame, b.samples, {}, {"host": ENV}, b.environment)
    assert set(c.rows["mark"]) == {"~"}, c.rows[["mark", "metric", "reason"]]
    assert not c.regressed
    # and a 20 % slowdown against the capped samples is still caught
    slow_rows, slow_series = latency(LONG, 1.2)
    c = compare_runs(frame(slow_rows), slow_series, b.frame, b.samples, {}, {"host": ENV},
                     b.environment)
    assert c.regressed


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
    c = compare_runs(frame(rows), series, cloned.frame, cloned.samples, {}, {"host": ENV},
                     cloned.environment)
    assert set(c.rows["mark"]) == {"~"} and c.exit_code() == 0


def test_baseline_from_several_runs_carries_their_noise(tmp_path):
    dirs = []
    for i, scale in enumerate((0.9, 1.0, 1.1, 1.0)):
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
    # sd of log(0.9, 1, 1.1, 1) = 0.0816, x 2.27 for its 90 % upper bound from 4 runs
    assert median_noise and median_noise[0] == pytest.approx(0.0816 * 2.27, abs=0.004)
    assert any(k[6] == "size_bytes" and v == 0 for k, v in b.noise.items())
    assert '"noise": ' in path.read_text()
    # +8 % is within that noise: not a regression; +100 % still is
    for scale, expected in ((1.08, "~"), (2.0, "+")):
        rows, series = latency(X, scale)
        c = compare_runs(frame(rows), series, b.frame, b.samples, {}, {"host": ENV},
                         b.environment, noise=b.noise)
        row = c.rows[c.rows["metric"] == "median_ms"].iloc[0]
        assert row["mark"] == expected, row["reason"]
        if expected == "~":
            assert "cannot resolve" in row["reason"]
