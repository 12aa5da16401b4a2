"""Artifacts: models built once per run (trained or loaded, converted, quantized), cached by hash."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class EvalData:
    """Held-out data for accuracy: inputs go to the device, ground truth stays on the controller."""

    appliance: str
    inputs: Path
    inputs_sha256: str
    truth_w: Path
    max_power_w: float
    sample_seconds: float  # spacing of consecutive test windows, for energy metrics


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
    eval: EvalData | None = None
    extra: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None and self.path is not None
