"""Fault case 5: the harness is killed while appending to rows.jsonl, leaving its last line cut
short. Reading the run drops that line with one warning; `--resume` measures the job it belonged
to again, keeps every other row as it was, and ends with a consistent run (exit 0)."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

from harness.results.rundir import JOB, ROWS_FILE
from storage_util import (assert_consistent, assert_kept, by_job, harness, only_run, records,
                          smoke_suite)

pytestmark = pytest.mark.slow


def test_a_cut_short_rows_file_is_resumed(tmp_path: Path, harness_cache: Path) -> None:
    suite = smoke_suite(tmp_path / "smoke.yaml", "smoke")
    first = harness("run", str(suite), "--targets", "host", "--out", str(tmp_path / "out"),
                    cache=harness_cache)
    assert first.returncode == 0, first.stderr[-3000:]
    run_dir = only_run(tmp_path / "out")
    before = by_job(run_dir)
    last = records(run_dir)[-1][JOB]
    assert last is not None and len(before) >= 4          # three TFLite jobs and the build rows

    # killed while writing: the last line is cut in the middle, results.csv never written
    text = (run_dir / ROWS_FILE).read_text()
    (run_dir / ROWS_FILE).write_text(text[:len(text) - len(text.splitlines()[-1]) // 2 - 1])
    (run_dir / "results.csv").unlink()

    report = harness("report", str(run_dir), "--format", "csv", cache=harness_cache)
    assert report.returncode == 0, report.stderr[-3000:]
    assert report.stderr.count("cut short") == 1, report.stderr    # shown once
    assert len(pd.read_csv(io.StringIO(report.stdout))) == len(text.splitlines()) - 1

    resumed = harness("run", "--resume", str(run_dir), cache=harness_cache)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "0 built" in resumed.stdout
    assert resumed.stderr.count("cut short") == 1, resumed.stderr
    after = by_job(run_dir)
    assert_consistent(run_dir)
    assert_kept(before, after, set(before) - {None, last})   # nothing lost, nothing re-measured
    assert len(after[last]) == len(before[last])              # the cut job measured again, whole
    assert after[last] != before[last]                        # (new latency samples)
    assert all(row["status"] == "ok" for row in after[last])
    assert sorted(map(str, after[None])) == sorted(map(str, before[None]))  # the build's rows
