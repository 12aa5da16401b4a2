"""Helpers for the compare / baseline / history tests: real latency samples through the harness's
own row code (harness.results.rows) and run directories written by the real RunDir."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pandas as pd

from harness.config.suite import load_suite
from harness.results.rows import error_row, latency_rows
from harness.results.schema import failure_row, make_row, to_frame
from harness.results.rundir import RunDir, RunMeta

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data" / "compare_real_latency.json"
ARTIFACT_A = b"baseline model bytes\n"
ARTIFACT_B = b"tonight's model bytes\n"
SHA = hashlib.sha256(ARTIFACT_A).hexdigest()
SHA_B = hashlib.sha256(ARTIFACT_B).hexdigest()          # tonight's build: a new artifact
ENV = {"hostname": "dev", "arch": "x86_64", "cpu_model": "AMD EPYC", "cores": 2,
       "governor": "performance", "os": "Linux-6.1-x86_64", "python": "3.11.2",
       "runtimes": {"ai_edge_litert": "2.3.0"}}


def real_samples_us(i: int = 0) -> list[float]:
    """Raw samples (µs) of real run i (0..2) from this machine."""
    return json.loads(DATA.read_text())["runs"][i]["samples_us"]


def fields(target: str = "host", model: str = "cnn", variant: str = "w8", sha: str = SHA,
           runtime: str = "ai_edge_litert", runtime_version: str = "2.3.0",
           **extra: Any) -> dict[str, Any]:
    return dict(suite="smoke", target=target, device_kind="cpu", model=model, variant=variant,
                artifact_sha256=sha, runtime=runtime, runtime_version=runtime_version, **extra)


def latency(samples_us: list[float], scale: float = 1.0, threads: int = 1,
            delegated_nodes: int = 1, undelegated_ops: list[str] = (),
            **kw: Any) -> tuple[list[dict], list[dict]]:
    """Tidy latency rows + the sample series, made by harness.results.rows.latency_rows."""
    doc = {"environment": {"governor": "performance"},
           "latency": [{"threads": threads, "samples_us": [s * scale for s in samples_us],
                        "delegate": "XNNPACK", "delegated_nodes": delegated_nodes,
                        "undelegated_ops": list(undelegated_ops)}]}
    return latency_rows(doc, fields(**kw))


def size_row(value: float, **kw: Any) -> dict:
    return make_row(**fields(**kw), measurement="size", metric="size_bytes", value=value, unit="B",
                    n=1)


def accuracy_row(metric: str, value: float, **kw: Any) -> dict:
    return make_row(**fields(**kw), measurement="accuracy", metric=metric, value=value,
                    key="kettle", n=1000)


def failure(kind: str = "runner_crash", runtime: str = "auto", **kw: Any) -> dict:
    """A failed job as the CPU device kind records it: the runner's error result made into a row
    by harness.results.rows.error_row. A result without a `runtime` section (the runner died
    before it resolved one) leaves the job's runtime, `auto` for a target with `runtime: auto`;
    no runtime version, no thread count."""
    f = {k: v for k, v in fields(**kw).items() if k not in ("runtime", "runtime_version")}
    f["runtime"] = runtime                    # devices/cpu.py: fields.setdefault("runtime", ...)
    result = {"status": "error", "error": {"kind": kind, "message": "boom"}}
    return error_row(result, f)


def suite_dict(**latency: Any) -> dict[str, Any]:
    """suites/smoke.yaml as run.json keeps it (`Suite.model_dump(mode="json")`), with latency
    settings changed by keyword."""
    suite = load_suite(ROOT / "suites" / "smoke.yaml").model_dump(mode="json")
    suite["measurements"]["latency"].update(latency)
    return suite


def frame(rows: list[dict]) -> pd.DataFrame:
    return to_frame(rows)


def write_run(root: Path, run_id: str, rows: list[dict], series: list[dict],
              environment: dict[str, dict] | None = None, suite: str = "smoke",
              thresholds: dict[str, float] | None = None,
              suite_doc: dict[str, Any] | None = None) -> Path:
    """A run directory written by the harness's RunDir (rows.jsonl, samples.jsonl, run.json,
    results.csv). `suite_doc`: the whole suite as run.json keeps it (`suite_dict()`), else only
    its name and thresholds."""
    run = RunDir.create(root, suite, run_id)
    for row in rows:
        row["run_id"] = run_id
    run.append(rows, series)
    doc = suite_doc if suite_doc is not None else {"name": suite, "thresholds": thresholds or {}}
    run.write_meta(RunMeta(run_id=run_id, suite=doc,
                           harness_version="0.1.0",
                           environment=environment if environment is not None else {"host": ENV}))
    run.finish()
    return run.path


def store_artifacts(root: Path) -> list[Path]:
    """The fixture artifacts (SHA, SHA_B) put into an artifact store at `root` by the production
    ArtifactStore, each file holding the bytes its sha256 names."""
    from harness.results.artifact_store import ArtifactStore

    store = ArtifactStore(root)
    paths = []
    for name, content, sha in (("a.tflite", ARTIFACT_A, SHA), ("b.tflite", ARTIFACT_B, SHA_B)):
        source = root.parent / f"fixture-{name}"
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_bytes(content)
        paths.append(store.put(source, sha))
    return paths
