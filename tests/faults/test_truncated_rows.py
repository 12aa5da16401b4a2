"""Fault case 5: the harness is killed while appending to rows.jsonl, leaving its last line cut
short. Reading the run drops that line with one warning; `--resume` measures the job it belonged
to again, keeps every other row as it was, and ends with a consistent run (exit 0)."""

from __future__ import annotations

import io
import json
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
    lines = (run_dir / ROWS_FILE).read_text().splitlines(keepends=True)
    # killed while writing the last row of the last job that measured latency: that line is cut
    # in the middle, nothing after it was written, results.csv never was
    cut = max(i for i, line in enumerate(lines)
              if json.loads(line).get(JOB) in {r.get(JOB) for r in records(run_dir)
                                           if r["metric"] == "median_ms"})
    cut_job = json.loads(lines[cut])[JOB]
    redone = {json.loads(line).get(JOB) for line in lines[cut:]} - {None}
    (run_dir / ROWS_FILE).write_text("".join(lines[:cut]) + lines[cut][:len(lines[cut]) // 2])
    (run_dir / "results.csv").unlink()

    report = harness("report", str(run_dir), "--format", "csv", cache=harness_cache)
    assert report.returncode == 0, report.stderr[-3000:]
    assert report.stderr.count("cut short") == 1, report.stderr    # shown once
    assert len(pd.read_csv(io.StringIO(report.stdout))) == cut       # every whole line

    resumed = harness("run", "--resume", str(run_dir), cache=harness_cache)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "0 built" in resumed.stdout
    assert resumed.stderr.count("cut short") == 1, resumed.stderr
    after = by_job(run_dir)
    assert_consistent(run_dir)
    assert_kept(before, after, set(before) - {None} - redone)  # nothing lost, nothing re-measured
    for job in redone:                                         # measured again, whole
        assert len(after[job]) == len(before[job]), job
        assert all(row["status"] in ("ok", "skipped") for row in after[job]), after[job]
    assert after[cut_job] != before[cut_job]                   # (new latency samples)
    assert sorted(map(str, after[None])) == sorted(map(str, before[None]))  # the build's rows
