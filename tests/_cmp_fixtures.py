"""Helpers for the compare / baseline / history tests: real latency samples through the harness's
own row code (harness.results.rows) and run directories written by the real RunDir."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from harness.results.rows import latency_rows
from harness.results.schema import failure_row, make_row, to_frame
from harness.results.rundir import RunDir, RunMeta

DATA = Path(__file__).resolve().parent / "data" / "compare_real_latency.json"
SHA = "a" * 64
ENV = {"hostname": "dev", "arch": "x86_64", "cpu_model": "AMD EPYC", "cores": 2,
       "governor": "performance", "os": "Linux-6.1-x86_64", "python": "3.11.2",
       "runtimes": {"ai_edge_litert": "2.3.0"}}


def real_samples_us(i: int = 0) -> list[float]:
    """Raw samples (µs) of real run i (0..2) from this machine."""
    return json.loads(DATA.read_text())["runs"][i]["samples_us"]


def fields(target: str = "host", model: str = "cnn", variant: str = "w8", sha: str = SHA,
           **extra: Any) -> dict[str, Any]:
    return dict(suite="smoke", target=target, device_kind="cpu", model=model, variant=variant,
                artifact_sha256=sha, runtime="ai_edge_litert", runtime_version="2.3.0", **extra)


def latency(samples_us: list[float], scale: float = 1.0, threads: int = 1,
            **kw: Any) -> tuple[list[dict], list[dict]]:
    """Tidy latency rows + the sample series, made by harness.results.rows.latency_rows."""
    doc = {"environment": {"governor": "performance"},
           "latency": [{"threads": threads, "samples_us": [s * scale for s in samples_us],
                        "delegate": "XNNPACK", "delegated_nodes": 1, "undelegated_ops": []}]}
    return latency_rows(doc, fields(**kw))


def size_row(value: float, **kw: Any) -> dict:
    return make_row(**fields(**kw), measurement="size", metric="size_bytes", value=value, unit="B",
                    n=1)


def accuracy_row(metric: str, value: float, **kw: Any) -> dict:
    return make_row(**fields(**kw), measurement="accuracy", metric=metric, value=value,
                    key="kettle", n=1000)


def failure(kind: str = "runner_crash", **kw: Any) -> dict:
    f = fields(**kw)
    f.pop("runtime")
    f.pop("runtime_version")
    return failure_row(measurement="latency", error_kind=kind, message="boom", phase="run", **f)


def frame(rows: list[dict]) -> pd.DataFrame:
    return to_frame(rows)


def write_run(root: Path, run_id: str, rows: list[dict], series: list[dict],
              environment: dict[str, dict] | None = None, suite: str = "smoke",
              thresholds: dict[str, float] | None = None) -> Path:
    """A run directory written by the harness's RunDir (rows.jsonl, samples.jsonl, run.json,
    results.csv)."""
    run = RunDir.create(root, suite, run_id)
    for row in rows:
        row["run_id"] = run_id
    run.append(rows, series)
    run.write_meta(RunMeta(run_id=run_id, suite={"name": suite, "thresholds": thresholds or {}},
                           harness_version="0.1.0",
                           environment=environment if environment is not None else {"host": ENV}))
    run.finish()
    return run.path
