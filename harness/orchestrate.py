"""Run a plan: targets concurrently, jobs on one target serially; a failure is a result row."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from harness.artifacts import Artifact
from harness.config import Inventory, Suite, Target
from harness.devices import device_kind
from harness.errors import HarnessError, InfraError
from harness.plan import Job, Plan
from harness.results.schema import failure_row, make_row
from harness.transport import Transport

log = logging.getLogger("harness.orchestrate")
TARGETS_SRC = Path(__file__).resolve().parent.parent / "targets"
# errors after which the rest of a target's jobs cannot run either
FATAL_KINDS = {"unreachable", "auth", "hostkey", "timeout", "runtime_missing", "tool_missing"}


@dataclass
class TargetContext:
    """Everything a device kind needs to run jobs on one target."""

    name: str
    target: Target
    transport: Transport
    suite: Suite
    local_dir: Path
    cache: Path
    profile_spec: dict | None = None
    runner_dir: str = ""
    environment: dict[str, Any] = field(default_factory=dict)

    @property
    def fields(self) -> dict[str, Any]:
        return {"suite": self.suite.name, "target": self.name, "device_kind": self.target.kind}

    def push(self, local: Path, sha256: str, ext: str) -> str:
        """Content-addressed push; returns the path relative to the work dir."""
        from harness.transport.push import push

        remote, _sent = push(self.transport, local, sha256, ext, self.target.python_exe)
        return remote

    def ensure_runner(self) -> None:
        """Push the device-side code (content-addressed by the bundle's hash)."""
        files = sorted(TARGETS_SRC.glob("*.py"))
        digest = hashlib.sha256()
        for path in files:
            digest.update(path.name.encode() + path.read_bytes())
        self.runner_dir = f"runner/{digest.hexdigest()[:16]}"
        for path in files:
            self.transport.put(path, f"{self.runner_dir}/{path.name}")

    def record_environment(self, result: dict) -> None:
        """Keep the device environment (and runtime) reported by the runner."""
        if result.get("environment"):
            self.environment.update(result["environment"])
        if result.get("runtime"):
            self.environment.setdefault("runtimes", {})[result["runtime"]["name"]] = \
                result["runtime"]["version"]


@dataclass
class TargetOutcome:
    """What one target produced."""

    name: str
    rows: list[dict] = field(default_factory=list)
    series: list[dict] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    failed: bool = False


Sink = Callable[[TargetOutcome], None]
Advance = Callable[[str], None]


def run_plan(plan: Plan, inventory: Inventory, artifacts: dict[tuple[str, str], Artifact],
             local_root: Path, cache: Path, sink: Sink, advance: Advance,
             connect: Callable[[str, Target], Transport] | None = None) -> list[TargetOutcome]:
    """Run every target concurrently; `sink` receives partial outcomes as jobs finish."""
    from harness.transport import connect as default_connect

    connect = connect or default_connect
    lock = threading.Lock()

    def locked_sink(outcome: TargetOutcome) -> None:
        with lock:
            sink(outcome)

    def one(name: str) -> TargetOutcome:
        return run_target(name, inventory.targets[name], plan, artifacts, local_root / name, cache,
                          locked_sink, advance, connect)

    with ThreadPoolExecutor(max_workers=max(1, len(plan.targets))) as pool:
        return list(pool.map(one, plan.targets))


def run_target(name: str, target: Target, plan: Plan, artifacts: dict[tuple[str, str], Artifact],
               local_dir: Path, cache: Path, sink: Sink, advance: Advance,
               connect: Callable[[str, Target], Transport]) -> TargetOutcome:
    """All jobs of one target, one at a time; failures become rows and the rest goes on."""
    outcome = TargetOutcome(name)
    jobs = plan.jobs_for(name)
    kind = device_kind(target.kind)
    fields = {"suite": plan.suite.name, "target": name, "device_kind": target.kind}
    try:
        transport = connect(name, target)
    except InfraError as exc:
        outcome.rows += [_job_failure(job, artifacts, fields, exc, "connect") for job in jobs]
        for job in jobs:
            advance(name)
        outcome.failed = True
        sink(outcome)
        return outcome
    ctx = TargetContext(name, target, transport, plan.suite, local_dir, cache,
                        profile_spec=_profile_spec(plan.suite))
    fatal: InfraError | None = None
    try:
        for job in jobs:
            artifact = artifacts[(job.model, job.variant)]
            job_rows, job_series = _run_job(kind, ctx, job, artifact, fatal)
            if job_rows and job_rows[-1].get("status") == "failed":
                outcome.failed = outcome.failed or job_rows[-1].get("error_kind") not in (
                    "conversion_failed",)
                if job_rows[-1].get("error_kind") in FATAL_KINDS and fatal is None:
                    fatal = InfraError(job_rows[-1]["message"], kind=job_rows[-1]["error_kind"],
                                       phase=job_rows[-1].get("phase"))
            outcome.rows += job_rows
            outcome.series += job_series
            outcome.environment = dict(ctx.environment)
            sink(TargetOutcome(name, job_rows, job_series, outcome.environment, outcome.failed))
            advance(name)
    finally:
        transport.close()
    return outcome


def _run_job(kind: Any, ctx: TargetContext, job: Job, artifact: Artifact,
             fatal: InfraError | None) -> tuple[list[dict], list[dict]]:
    fields = dict(ctx.fields, runtime=job.runtime)
    if not artifact.ok:
        return [failure_row(measurement="build", error_kind=artifact.error_kind,
                            message=artifact.error or "not built", phase="build",
                            model=job.model, variant=job.variant, **fields)], []
    if fatal is not None:
        return [_job_failure(job, {(job.model, job.variant): artifact}, fields, fatal,
                             fatal.phase)], []
    try:
        if not ctx.runner_dir:
            ctx.ensure_runner()
        prepared = kind.prepare(ctx.target, artifact, ctx.cache)
        return kind.execute(ctx, job, prepared)
    except HarnessError as exc:
        kind_name = getattr(exc, "kind", "user_error")
        log.warning("%s: %s %s failed: %s", ctx.name, job.model, job.variant, exc)
        return [_job_failure(job, {(job.model, job.variant): artifact}, fields, exc,
                             getattr(exc, "phase", None) or "run", kind_name)], []


def _job_failure(job: Job, artifacts: dict, fields: dict, exc: HarnessError, phase: str | None,
                 kind: str | None = None) -> dict:
    artifact = artifacts.get((job.model, job.variant))
    return failure_row(measurement="latency", error_kind=kind or getattr(exc, "kind", "infra"),
                       message=str(exc), phase=phase, model=job.model, variant=job.variant,
                       artifact_sha256=artifact.sha256 if artifact else None,
                       **dict(fields, runtime=job.runtime))


def _profile_spec(suite: Suite) -> dict | None:
    profile = getattr(suite.measurements, "profile", None)
    return profile.model_dump() if profile is not None else None


def dropped_rows(plan: Plan) -> list[dict]:
    """Rows that say what the plan left out and why."""
    return [make_row(suite=plan.suite.name, target=d.target, model=d.model, variant=d.variant, measurement="build",
                     metric="status", status="skipped", error_kind="unsupported",
                     message=d.reason) for d in plan.dropped]


def write_json(path: Path, value: Any) -> None:
    """Small helper for run-directory JSON files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=1, default=str))
