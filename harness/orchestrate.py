"""Run a plan: targets concurrently, jobs on one target serially; a failure is a result row."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from harness.artifacts import Artifact
from harness.config import Inventory, Suite, Target
from harness.devices import KINDS
from harness.devices.base import DeviceKind, TargetContext
from harness.errors import ErrorKind, HarnessError, InfraError, exit_code_of, is_fatal
from harness.lab import lease
from harness.plan import Job, Plan
from harness.results.schema import failure_row, make_row
from harness.transport import Transport
from harness.transport import lock as device_lock

log = logging.getLogger("harness.orchestrate")


@dataclass
class TargetOutcome:
    """What one target produced."""

    name: str
    rows: list[dict] = field(default_factory=list)
    series: list[dict] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    failed: bool = False
    job: Job | None = None  # set on the partial outcome of one job


Sink = Callable[[TargetOutcome], None]
Advance = Callable[[str], None]


def run_plan(plan: Plan, inventory: Inventory, artifacts: dict[tuple[str, str], Artifact],
             local_root: Path, cache: Path, sink: Sink, advance: Advance,
             connect: Callable[[str, Target], Transport] | None = None,
             inventory_path: Path | None = None,
             cancel: threading.Event | None = None) -> list[TargetOutcome]:
    """Run every target concurrently; `sink` receives partial outcomes as jobs finish. Once
    `cancel` is set no job starts, and running commands are stopped (by the transports)."""
    from harness.transport import connect as default_connect

    connect = connect or (lambda name, target: default_connect(name, target, inventory_path))
    lock = threading.Lock()
    controller_work(plan, inventory, artifacts, cache)

    def locked_sink(outcome: TargetOutcome) -> None:
        with lock:
            sink(outcome)

    def one(name: str) -> TargetOutcome:
        target = inventory.targets[name]
        reach = connect
        if target.via:  # a board plugged into another target is reached through that one
            host = inventory.targets[target.via]
            reach = lambda _name, _target: connect(target.via, host)  # noqa: E731
        return run_target(name, target, plan, artifacts, local_root / name, cache, locked_sink,
                          advance, reach, cancel)

    with ThreadPoolExecutor(max_workers=max(1, len(plan.targets))) as pool:
        return list(pool.map(one, plan.targets))


def controller_work(plan: Plan, inventory: Inventory, artifacts: dict[tuple[str, str], Artifact],
                    cache: Path) -> None:
    """The controller's own heavy work for every job, done before any target measures (so it
    never competes with a measurement on the host): each kind's `prepare` (device compilers,
    ONNX export, TFLM sketch) and the runner jobs' TFLM arena and ONNX check
    (`runner_exec.controller_work`), all cached on disk, so the jobs only read them. A failure is
    left for the job to report when it runs."""
    from harness.devices import runner_exec

    for job in plan.jobs:
        artifact = artifacts.get((job.model, job.variant))
        target = inventory.targets.get(job.target)
        if artifact is None or not artifact.ok or target is None:
            continue
        try:
            prepared = KINDS[target.kind].prepare(target, artifact, cache)
            if "deferred_error" not in prepared.extra:
                runner_exec.controller_work(plan.suite, job, prepared, cache)
        except Exception as exc:  # noqa: BLE001 - the job meets it again and reports it
            log.info("%s: %s %s: ahead of measuring: %s", job.target, job.model, job.variant,
                     exc)


def run_target(name: str, target: Target, plan: Plan, artifacts: dict[tuple[str, str], Artifact],
               local_dir: Path, cache: Path, sink: Sink, advance: Advance,
               connect: Callable[[str, Target], Transport],
               cancel: threading.Event | None = None) -> TargetOutcome:
    """All jobs of one target, one at a time; failures become rows and the rest goes on.

    After a failure that no later job can escape (unreachable, auth, runtime or tool missing), the
    remaining jobs are recorded as failed with the same cause, but their device artifacts are still
    built, so the user sees what would have been deployed. The jobs run while the target holds
    its device lock; once `cancel` is set, no further job starts.
    """
    outcome = TargetOutcome(name)
    kind = KINDS[target.kind]
    fatal: InfraError | None = None
    transport: Transport | None = None
    held: device_lock.DeviceLock | None = None
    leased = ExitStack()  # the target's labgrid place, held until its jobs are done
    try:
        target = leased.enter_context(lease(name, target, cancel))
        transport = connect(name, target)
        transport.cancel = cancel  # type: ignore[attr-defined] # polled while commands run
        held = device_lock.acquire(transport, name, target.lock_timeout, cancel)
    except HarnessError as exc:
        fatal = exc if isinstance(exc, InfraError) else InfraError(
            str(exc), kind="user_error", phase="connect")
        fatal.phase = fatal.phase or "connect"
    except BaseException:
        leased.close()
        raise
    ctx = TargetContext(name, target, transport, plan.suite, local_dir, cache,  # type: ignore[arg-type]
                        profile_spec=_profile_spec(plan.suite))
    try:
        for job in plan.jobs_for(name):
            if cancel is not None and cancel.is_set():
                break
            job_rows, job_series = _run_job(kind, ctx, job, artifacts[(job.model, job.variant)],
                                            fatal)
            # model results (exit class 0) are rows only; anything else fails the target, and a
            # fatal kind stops its later jobs with the same cause (harness.errors classifies)
            failures = [r for r in job_rows if r.get("status") == "failed"
                        and exit_code_of(r.get("error_kind"))]
            if failures:
                outcome.failed = True
                cause = next((r for r in failures if is_fatal(r["error_kind"])), None)
                if fatal is None and cause is not None:
                    fatal = InfraError(cause["message"], kind=cause["error_kind"],
                                       phase=cause.get("phase"))
            outcome.rows += job_rows
            outcome.series += job_series
            outcome.environment = dict(ctx.environment)
            sink(TargetOutcome(name, job_rows, job_series, outcome.environment, outcome.failed,
                               job))
            advance(name)
    finally:
        if held is not None:
            held.release()
        if transport is not None:
            transport.close()
        leased.close()
    return outcome


def _run_job(kind: DeviceKind, ctx: TargetContext, job: Job, artifact: Artifact,
             fatal: InfraError | None) -> tuple[list[dict], list[dict]]:
    fields = dict(ctx.fields, runtime=job.runtime)
    if not artifact.ok:
        row = failure_row(measurement="build", error_kind=artifact.error_kind,
                          message=artifact.error or "not built", phase="build",
                          model=job.model, variant=job.variant, **fields)
        if artifact.error_kind == "not_applicable":
            row["status"] = "skipped"
        return [row], []
    if fatal is not None:
        return _build_only(kind, ctx, job, artifact, fields) + [
            _job_failure(job, artifact, fields, fatal)], []
    step = "run"
    try:
        if not ctx.runner_dir:
            ctx.ensure_runner()
        step = "build"
        prepared = kind.prepare(ctx.target, artifact, ctx.cache)
        step = "run"
        return kind.execute(ctx, job, prepared)
    except HarnessError as exc:
        log.warning("%s: %s %s failed: %s", ctx.name, job.model, job.variant, exc)
        return [_job_failure(job, artifact, fields, exc)], []
    except Exception as exc:  # noqa: BLE001 - one job's crash is its row; the run goes on
        # a device artifact step that crashed (compiler, exporter) is a tool failure; anything
        # else is a bug in the harness: its traceback goes to the run log
        log.exception("%s: %s %s: %s step failed", ctx.name, job.model, job.variant, step)
        error = InfraError(f"{type(exc).__name__}: {exc} (traceback in the run's harness.log)",
                           kind=ErrorKind.BUILD_FAILED if step == "build"
                           else ErrorKind.INTERNAL_ERROR, phase=step)
        return [_job_failure(job, artifact, fields, error)], []


def _build_only(kind: DeviceKind, ctx: TargetContext, job: Job, artifact: Artifact,
                fields: dict) -> list[dict]:
    """Build a device kind's artifacts without running them (the device cannot be used)."""
    try:
        prepared = kind.prepare(ctx.target, artifact, ctx.cache)
        return kind.build_rows(prepared, dict(fields, model=job.model, variant=job.variant,
                                              artifact_sha256=artifact.sha256))
    except Exception as exc:  # noqa: BLE001 - a crashed device artifact step is its row
        if not isinstance(exc, HarnessError):
            log.exception("%s: %s %s: build step failed", ctx.name, job.model, job.variant)
        return [failure_row(measurement="build", error_kind=getattr(exc, "kind", "build_failed"),
                            message=str(exc), phase="build", model=job.model, variant=job.variant,
                            **fields)]


def _job_failure(job: Job, artifact: Artifact | None, fields: dict, exc: HarnessError) -> dict:
    return failure_row(measurement="latency", error_kind=getattr(exc, "kind", "user_error"),
                       message=str(exc), phase=getattr(exc, "phase", None) or "run",
                       model=job.model, variant=job.variant,
                       artifact_sha256=artifact.sha256 if artifact else None,
                       **dict(fields, runtime=job.runtime))


def _profile_spec(suite: Suite) -> dict | None:
    profile = getattr(suite.measurements, "profile", None)
    return profile.model_dump() if profile is not None else None


def dropped_rows(plan: Plan) -> list[dict]:
    """Rows that say what the plan left out and why."""
    return [make_row(suite=plan.suite.name, target=d.target, model=d.model, variant=d.variant,
                     runtime=d.runtime, measurement="build", metric="status", status="skipped",
                     error_kind="unsupported", message=d.reason) for d in plan.dropped]
