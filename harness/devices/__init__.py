"""Device kinds: what each can run, how to prepare its artifacts, how to execute its jobs.

Each kind is a module exposing:
    unsupported(target, variant) -> str | None      reason the target cannot run the variant, or None
    prepare(target, artifact, cache) -> Artifact      device-specific compile (may raise HarnessError)
    execute(ctx: TargetContext, jobs) -> Iterator[list[row]]   run jobs on the device, one row list per job
"""

from __future__ import annotations

import importlib
from types import ModuleType

KINDS = ("cpu", "edgetpu", "tensorrt", "arduino")


def device_kind(kind: str) -> ModuleType:
    """The module implementing a device kind."""
    if kind not in KINDS:
        raise KeyError(kind)
    return importlib.import_module(f"harness.devices.{kind}")
