"""Artifacts: models built once per run (converted, quantized, compiled), cached by content hash."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.workloads.base import EvalData


@dataclass
class Artifact:
    """One model file in one variant, or the reason it could not be built."""

    model: str
    variant: str
    path: Path | None = None
    sha256: str | None = None
    size_bytes: int | None = None
    error: str | None = None
    error_kind: str = "conversion_failed"
    cached: bool = False
    source: Path | None = None  # the Keras model / SavedModel it came from, for device compilers
    eval: EvalData | None = None  # held-out inputs, ground truth and scorer (from the workload)
    extra: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None and self.path is not None
