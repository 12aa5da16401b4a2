"""Workloads: the models a suite measures, their calibration data and how their outputs are scored.

`open_workload` picks the implementation of a suite's `workload.kind` (nilm, generic; see
harness/workloads/base.py for the seam); `model_specs` lists every model a suite names.
"""

from __future__ import annotations

from pathlib import Path

from harness.config.suite import Suite
from harness.errors import UserError
from harness.workloads.base import ModelSpec, Step, Workload, model_file

__all__ = ["ModelSpec", "Workload", "model_specs", "open_workload"]


def open_workload(suite: Suite, suite_path: Path, step: Step | None = None) -> Workload | None:
    """The workload of a suite's `workload:` section (None when it has none). Cheap: nothing is
    loaded, trained or imported until the builder asks for it."""
    config = suite.workload
    if config is None:
        return None
    if config.kind == "nilm":
        from harness.workloads.nilm.workload import Nilm

        return Nilm(config, step)
    if config.kind == "generic":
        from harness.workloads.generic import Generic

        return Generic(config, suite_path, step)
    raise ValueError(f"unknown workload kind {config.kind!r}")


def model_specs(suite: Suite, suite_path: Path) -> list[ModelSpec]:
    """The models a suite names, in order: its workload's, then the bare files of `models:`."""
    workload = open_workload(suite, suite_path)
    specs = workload.models() if workload is not None else []
    specs += [ModelSpec(entry.name, file=model_file(entry.path, suite_path,
                                                    f"models.{entry.name}.path"))
              for entry in suite.models]
    names = [spec.name for spec in specs]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise UserError(f"{suite_path}: model name {twice[0]!r} is used twice",
                        hint="give every model of the suite its own name")
    return specs
