"""Expand suite × targets into jobs; drop what a target cannot run, with the reason.

Each job has a runtime (the target's `runtime` and extra `runtimes`) and the runner backend that
runtime means (`harness.runtimes`): a variant the backend cannot run is dropped like one the
device kind cannot run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.artifacts.build import variants_for
from harness.config import Inventory, Suite
from harness.devices import KINDS
from harness.runtimes import TFLITE, backend_for, backend_unsupported
from harness.workloads import ModelSpec, model_specs


@dataclass(frozen=True)
class Job:
    """One model variant on one target with one runtime (all thread counts run in one process)."""

    target: str
    model: str
    variant: str
    runtime: str
    backend: str = TFLITE  # what the runner runs (harness.runtimes)

    @property
    def job_id(self) -> str:
        return f"{self.model}.{self.variant}.{self.runtime}"


@dataclass(frozen=True)
class Dropped:
    """A combination the plan left out, and why."""

    target: str
    model: str
    variant: str
    reason: str
    runtime: str | None = None  # set when only this runtime cannot run the variant


@dataclass
class Plan:
    """What a run will do."""

    suite: Suite
    suite_path: Path
    targets: list[str]
    models: list[ModelSpec]
    jobs: list[Job]
    dropped: list[Dropped]

    def jobs_for(self, target: str) -> list[Job]:
        return [job for job in self.jobs if job.target == target]


def make_plan(suite: Suite, suite_path: Path, inventory: Inventory, targets: list[str]) -> Plan:
    """The run matrix: every model × variant × runtime on every selected target it can run on."""
    specs = model_specs(suite, suite_path)
    jobs: list[Job] = []
    dropped: list[Dropped] = []
    for name in targets:
        target = inventory.targets[name]
        kind = KINDS[target.kind]
        runtimes = [target.runtime] + [r for r in target.runtimes if r != target.runtime]
        for spec in specs:
            for variant in variants_for(spec, suite):
                reason = kind.unsupported(target, variant)
                if reason:
                    dropped.append(Dropped(name, spec.name, variant, reason))
                    continue
                for runtime in runtimes:
                    backend = backend_for(runtime)
                    reason = backend_unsupported(backend, variant)
                    if reason:
                        dropped.append(Dropped(name, spec.name, variant, reason, runtime))
                    else:
                        jobs.append(Job(name, spec.name, variant, runtime, backend))
    return Plan(suite, suite_path, targets, specs, jobs, dropped)
