"""Records: what a parser extracts, shaped like a subset of the tidy row (no run or target columns).

A parser never makes rows: the code that knows the run, target and artifact merges its columns
into each record (`harness.results.rows.rows_from_records`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

RECORD_FIELDS = ("measurement", "metric", "key", "node_type", "method", "value", "unit", "n",
                 "valid", "hint", "message")


def record(**fields: Any) -> dict[str, Any]:
    """A record with every field present (None when not given); unknown names are a bug."""
    unknown = set(fields) - set(RECORD_FIELDS)
    if unknown:
        raise KeyError(f"unknown record fields: {sorted(unknown)}")
    return {name: fields.get(name) for name in RECORD_FIELDS}


@dataclass
class ToolRecords:
    """One tool output file parsed into records, and which of the tool's layouts it was."""

    layout: str
    records: list[dict[str, Any]] = field(default_factory=list)
