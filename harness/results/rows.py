"""Turn one runner result document into tidy rows (and raw sample series)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from harness import stats
from harness.artifacts import Artifact
from harness.results.schema import failure_row, make_row

LATENCY_METRICS = (("median_ms", "median"), ("p90_ms", "p90"), ("p99_ms", "p99"),
                   ("iqr_ms", "iqr"), ("mean_ms", "mean"), ("min_ms", "min"))


def base_fields(ctx_fields: dict[str, Any], artifact: Artifact, result: dict | None) -> dict[str, Any]:
    """Columns shared by every row of one job."""
    fields = dict(ctx_fields, model=artifact.model, variant=artifact.variant,
                  artifact_sha256=artifact.sha256)
    if result and result.get("runtime"):
        fields.update(runtime=result["runtime"]["name"], runtime_version=result["runtime"]["version"])
    return fields


def rows_from_records(records: list[dict[str, Any]], fields: dict[str, Any]) -> list[dict]:
    """Rows from parser records (`harness.parsers`): the job's columns fill what a record leaves
    empty."""
    return [make_row(**dict(fields, **{k: v for k, v in r.items() if v is not None}))
            for r in records]


def latency_rows(result: dict, fields: dict[str, Any]) -> tuple[list[dict], list[dict]]:
    """Summary rows per thread count plus the raw sample series (µs → ms).

    The rows are LATENCY_METRICS, `p10_ms` (the lower end of the report's p10-p90 band, the same
    linear-interpolation quantile as p90) and `outliers`, all computed here from the raw samples.
    """
    rows, series = [], []
    governor = (result.get("environment") or {}).get("governor")
    for entry in result.get("latency") or []:
        samples_ms = np.asarray(entry["samples_us"], dtype=float) / 1e3
        summary = stats.summarize(samples_ms)
        valid, hint = stats.validity(summary, governor)
        common = dict(fields, threads=entry["threads"], measurement="latency",
                      delegate=entry.get("delegate"), delegated_nodes=entry.get("delegated_nodes"),
                      undelegated_ops=len(entry.get("undelegated_ops") or []),
                      method="runner", n=summary.n, valid=valid, hint=hint)
        for metric, attribute in LATENCY_METRICS:
            rows.append(make_row(**common, metric=metric, value=getattr(summary, attribute),
                                 unit="ms"))
        rows.append(make_row(**common, metric="p10_ms", value=stats.quantile(samples_ms, 0.10),
                             unit="ms"))
        rows.append(make_row(**common, metric="outliers", value=summary.outliers, unit="count"))
        if entry.get("undelegated_ops"):
            rows.append(make_row(**common, metric="undelegated_ops", key=",".join(
                entry["undelegated_ops"]), value=len(entry["undelegated_ops"]), unit="count"))
        series.append({k: common.get(k) for k in ("target", "model", "variant", "runtime",
                                                  "threads", "artifact_sha256")}
                      | {"measurement": "latency", "metric": "median_ms", "unit": "ms",
                         "samples": [round(s, 5) for s in samples_ms.tolist()]})
    return rows, series


def accuracy_rows(outputs: Path, artifact: Artifact, fields: dict[str, Any]) -> list[dict]:
    """Accuracy of the device's outputs, scored by the artifact's workload (its EvalData)."""
    assert artifact.eval is not None
    return [make_row(**fields, measurement="accuracy", metric=score.metric, value=score.value,
                     unit=score.unit, n=score.n, key=score.key)
            for score in artifact.eval.score(np.load(outputs))]


def error_row(result: dict, fields: dict[str, Any]) -> dict:
    """A failed runner result as one row."""
    error = result.get("error") or {}
    return failure_row(measurement="latency", error_kind=error.get("kind", "runner_crash"),
                       message=error.get("message", "runner failed"), phase="run", **fields)


def quant_error_rows(artifact: Artifact, suite: str, threshold: float) -> list[dict]:
    """QuantizationDebugger per-layer RMSE/scale of a full-integer artifact (controller-side)."""
    import pandas as pd

    stats = artifact.extra.get("quant_debug")
    if stats is None:
        return []
    frame = pd.read_csv(stats)
    common = dict(suite=suite, model=artifact.model, variant=artifact.variant,
                  artifact_sha256=artifact.sha256, measurement="quant_error",
                  method="quantization_debugger")
    rows = [make_row(**common, metric="rmse_scale", key=str(r.tensor_name), node_type=str(r.op_name),
                     value=float(r.rmse_scale), unit="steps", n=int(r.num_elements),
                     valid=not bool(r.suspected),
                     hint=f"RMSE/scale > {threshold}: try this layer in float "
                          "(quant_error.denylist_variant)" if r.suspected else None)
            for r in frame.itertuples()]
    rows.append(make_row(**common, metric="suspected_layers", value=int(frame["suspected"].sum()),
                         unit="count", n=len(frame)))
    return rows
