"""The tidy result schema: one row per measured value.

Every measurement, parser and importer produces rows with these columns (missing ones are empty).
Reports are pivots of this table; they never recompute statistics.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

KEY_COLUMNS = ["target", "model", "variant", "runtime", "threads", "measurement", "metric", "key"]

COLUMNS = [
    "run_id", "suite", "target", "device_kind", "model", "variant", "artifact_sha256",
    "runtime", "runtime_version", "delegate", "delegated_nodes", "undelegated_ops", "threads",
    "measurement", "metric", "key", "node_type", "method", "value", "unit", "n",
    "valid", "hint", "status", "error_kind", "phase", "message",
]

MEASUREMENTS = ("latency", "profile", "memory", "accuracy", "size", "quant_error", "build", "device")


def make_row(**fields: Any) -> dict[str, Any]:
    """A row with every column present; unknown column names are a programming error."""
    unknown = set(fields) - set(COLUMNS)
    if unknown:
        raise KeyError(f"unknown result columns: {sorted(unknown)}")
    row: dict[str, Any] = {column: None for column in COLUMNS}
    row["status"] = "ok"
    row.update(fields)
    return row


def failure_row(*, measurement: str, error_kind: str, message: str, phase: str | None = None,
                **fields: Any) -> dict[str, Any]:
    """A row recording that something could not be measured, and why."""
    return make_row(measurement=measurement, metric="status", status="failed",
                    error_kind=error_kind, phase=phase, message=message, **fields)


def to_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows to a DataFrame with the canonical column order."""
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["threads"] = frame["threads"].astype("Int64")
    frame["n"] = frame["n"].astype("Int64")
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce")
    return frame
