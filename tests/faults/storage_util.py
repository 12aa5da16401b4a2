"""Helpers of the storage and build fault cases: suites derived from suites/smoke.yaml, the real
`harness` command, and the checks every case makes on a run directory (no row lost, no stale row).
"""

from __future__ import annotations

import copy
import json
import stat
import sys
from pathlib import Path
from typing import Any

import yaml

from harness.results.rundir import JOB, JOBS_FILE, ROWS_FILE, SAMPLES_FILE
from testutil import ROOT, run_cli

SMOKE = ROOT / "suites" / "smoke.yaml"


def smoke_suite(path: Path, name: str, **changes: Any) -> Path:
    """suites/smoke.yaml with top-level keys replaced or, for dicts, merged one level deep."""
    suite = yaml.safe_load(SMOKE.read_text())
    suite["name"] = name
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(suite.get(key), dict):
            merged = copy.deepcopy(suite[key])
            for sub, item in value.items():
                if item is None:
                    merged.pop(sub, None)
                else:
                    merged[sub] = item
            suite[key] = merged
        else:
            suite[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(suite))
    return path


def host_inventory(path: Path, **entry: Any) -> Path:
    """An inventory with one local target, `host`."""
    path.write_text(yaml.safe_dump({"targets": {"host": {"kind": "cpu", **entry}}}))
    return path


def python_wrapper(folder: Path, modules: dict[str, str]) -> Path:
    """An executable that runs this Python with `modules` (name -> source of its __init__.py)
    shadowing the installed ones: a device whose runtime is missing or crashes on import."""
    shadow = folder / "shadow"
    for name, source in modules.items():
        (shadow / name).mkdir(parents=True, exist_ok=True)
        (shadow / name / "__init__.py").write_text(source)
    wrapper = folder / "python"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH="{shadow}${{PYTHONPATH:+:$PYTHONPATH}}" '
                       f'exec "{sys.executable}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return wrapper


def harness(*args: str, cache: Path, **env: str) -> Any:
    """The real `harness` command with an artifact cache (and extra environment)."""
    return run_cli(*args, env={"HARNESS_CACHE": str(cache), **env})


def only_run(out: Path) -> Path:
    runs = [p for suite in out.iterdir() if suite.is_dir() for p in suite.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def records(run_dir: Path, name: str = ROWS_FILE) -> list[dict]:
    """The lines of a run's JSON-lines file as written (with their `job` key)."""
    path = run_dir / name
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def by_job(run_dir: Path) -> dict[str | None, list[dict]]:
    """The rows of a run by job key (None: the build's rows)."""
    out: dict[str | None, list[dict]] = {}
    for row in records(run_dir):
        out.setdefault(row.get(JOB), []).append(row)
    return out


def row_key(row: dict) -> tuple:
    return tuple(row.get(c) for c in ("target", "model", "variant", "runtime", "threads",
                                      "measurement", "metric", "key", "status"))


def assert_consistent(run_dir: Path) -> None:
    """Nothing stale, nothing twice: every job has exactly one jobs.jsonl line whose counts match
    its rows and series, no row is there twice, results.csv has exactly the rows of rows.jsonl."""
    import pandas as pd

    ledger = records(run_dir, JOBS_FILE)
    jobs = [entry[JOB] for entry in ledger]
    assert len(jobs) == len(set(jobs)), jobs
    rows = by_job(run_dir)
    series: dict[str | None, int] = {}
    for item in records(run_dir, SAMPLES_FILE):
        series[item.get(JOB)] = series.get(item.get(JOB), 0) + 1
    for entry in ledger:
        assert len(rows.get(entry[JOB], [])) == entry["rows"], entry
        assert series.get(entry[JOB], 0) == entry["samples"], entry
    assert set(rows) - {None} == set(jobs), "rows of a job that has no jobs.jsonl line"
    keys = [row_key(r) for r in records(run_dir)]
    twice = {k for k in keys if keys.count(k) > 1}
    assert not twice, twice
    assert len(pd.read_csv(run_dir / "results.csv")) == len(keys)


def assert_kept(before: dict[str | None, list[dict]], after: dict[str | None, list[dict]],
                jobs: set[str]) -> None:
    """The rows of these jobs are exactly as they were (values included): nothing lost."""
    for job in jobs:
        assert after.get(job) == before[job], job

