"""The programmatic API behind the CLI: run a suite, re-render a run."""

from __future__ import annotations

import logging
import platform
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from harness import __version__
from harness.artifacts import Artifact
from harness.artifacts.build import Builder
from harness.artifacts.cache import default_cache_dir
from harness.config import Inventory, load_inventory, load_suite
from harness.errors import UserError
from harness.orchestrate import TargetOutcome, dropped_rows, run_plan
from harness.plan import Plan, make_plan
from harness.report import markdown
from harness.report.model import Report, build_report
from harness.results.store import REPORT_FILE, RunStore, new_run_id

log = logging.getLogger("harness")
SECRET_FIELDS = {"identity_file", "password", "passphrase"}


@dataclass
class RunResult:
    """The outcome of `harness run`."""

    run_dir: Path
    frame: pd.DataFrame
    report: Report
    failed_targets: list[str]
    built: int
    reused: int
    seconds: float


def public_entry(inventory: Inventory, name: str) -> dict[str, Any]:
    """An inventory entry safe to store in results (no secrets)."""
    entry = inventory.targets[name].model_dump(exclude_none=True)
    return {k: v for k, v in entry.items() if k not in SECRET_FIELDS}


@contextmanager
def _log_to(path: Path) -> Iterator[None]:
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("harness")
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()


def build_artifacts(plan: Plan, cache: Path, progress: Any = None) -> tuple[dict, Builder]:
    """Build (or reuse) every artifact the plan needs."""
    builder = Builder(plan.suite, plan.suite_path, cache)
    task = progress.add_task("building artifacts", total=len(plan.models)) if progress else None
    if progress:
        builder.step = lambda message: progress.update(task, description=message)
    artifacts: dict[tuple[str, str], Artifact] = {}
    for spec in plan.models:
        for artifact in builder.build(spec):
            artifacts[(artifact.model, artifact.variant)] = artifact
        if progress:
            progress.advance(task)
    if progress:
        progress.update(task, description=f"artifacts: {builder.built} built, "
                                          f"{builder.reused} reused from cache")
    return artifacts, builder


def run(suite_path: Path, targets: str | None, inventory_path: Path, out: Path,
        progress: Any = None, resume: Path | None = None, cache: Path | None = None) -> RunResult:
    """Run a suite on targets; every result is stored as soon as it is measured."""
    started = time.perf_counter()
    store = RunStore(resume) if resume else None
    if resume:
        meta = store.meta()
        if not meta:
            raise UserError(f"--resume: {resume} is not a run directory (no run.json)")
        suite_path = Path(meta["suite_path"])
        targets = targets or ",".join(meta["targets"])
        inventory_path = Path(meta.get("inventory_path", inventory_path))
    inventory = load_inventory(inventory_path)
    suite = load_suite(suite_path)
    if not targets:
        raise UserError("--targets is required", hint=f"known targets: {', '.join(inventory.targets)}")
    selected = inventory.select(targets)
    plan = make_plan(suite, suite_path, inventory, selected)
    cache = cache or default_cache_dir()
    if store is None:
        store = RunStore(out / suite.name / new_run_id())
    else:
        plan.jobs = _missing_jobs(plan, store)
    with _log_to(store.dir / "harness.log"):
        log.info("run %s: suite %s on %s (%d jobs)", store.run_id, suite.name, selected,
                 len(plan.jobs))
        meta = {"run_id": store.run_id, "suite_path": str(suite_path.resolve()),
                "inventory_path": str(inventory_path.resolve()), "targets": selected,
                "suite": suite.model_dump(mode="json"), "harness_version": __version__,
                "controller": {"python": platform.python_version(), "os": platform.platform()},
                "inventory": {name: public_entry(inventory, name) for name in selected},
                "environment": store.meta().get("environment", {}) if resume else {}}
        store.write_meta(meta)
        artifacts, builder = build_artifacts(plan, cache, progress)
        log.info("artifacts: %d built, %d reused from cache", builder.built, builder.reused)
        if not resume:
            store.append(dropped_rows(plan) + _quant_rows(plan, artifacts), [])
        measure = progress.add_task("measuring", total=len(plan.jobs)) if progress else None

        def sink(outcome: TargetOutcome) -> None:
            store.append(outcome.rows, outcome.series)
            meta["environment"][outcome.name] = outcome.environment
            store.write_meta(meta)

        def advance(target: str) -> None:
            if progress:
                progress.advance(measure)

        outcomes = run_plan(plan, inventory, artifacts, store.dir / "targets", cache, sink, advance,
                            inventory_path=inventory_path)
        for outcome in outcomes:
            if outcome.environment:
                meta["environment"][outcome.name] = outcome.environment
        meta["seconds"] = round(time.perf_counter() - started, 1)
        store.write_meta(meta)
        frame = store.finish()
        report = build_report(frame, meta)
        (store.dir / REPORT_FILE).write_text(markdown.render(report))
    failed = [o.name for o in outcomes if o.failed]
    return RunResult(store.dir, frame, report, failed, builder.built, builder.reused,
                     time.perf_counter() - started)


def _quant_rows(plan: Plan, artifacts: dict[tuple[str, str], Artifact]) -> list[dict]:
    """Quantization efficacy rows of the full-integer artifacts (they do not depend on a target)."""
    from harness.results.rows import quant_error_rows

    spec = plan.suite.measurements.quant_error
    if spec is None:
        return []
    return [row for artifact in artifacts.values()
            for row in quant_error_rows(artifact, plan.suite.name, spec.threshold)]


def _missing_jobs(plan: Plan, store: RunStore) -> list:
    """Jobs of the plan without a successful result in the run; their failure rows are dropped."""
    ok = [r for r in store.rows() if r.get("status") == "ok" and r.get("measurement") == "latency"]

    def done(job: Any) -> bool:  # rows carry the runtime actually used; "auto" matches any
        return any((r["target"], r["model"], r["variant"]) == (job.target, job.model, job.variant)
                   and job.runtime in ("auto", r.get("runtime")) for r in ok)

    missing = [job for job in plan.jobs if not done(job)]
    redo = {(job.target, job.model, job.variant) for job in missing}
    store.drop_rows(lambda r: (r.get("target"), r.get("model"), r.get("variant")) not in redo
                    or r.get("status") == "skipped")
    return missing


def import_run(tool: str, files: list[Path], target: str, model: str, variant: str, out: Path,
               suite: str = "imported") -> RunResult:
    """Store tool output a user already has (benchmark_model, edgetpu_compiler, trtexec) as a run."""
    from harness.importer import import_files

    started = time.perf_counter()
    for path in files:
        if not path.is_file():
            raise UserError(f"harness import: {path} does not exist")
    rows = import_files(tool, files, target, model, variant)
    store = RunStore(out / suite / new_run_id())
    for row in rows:
        row.setdefault("suite", suite)
        row["suite"] = row.get("suite") or suite
    store.append(rows, [])
    meta = {"run_id": store.run_id, "suite": {"name": suite}, "targets": [target],
            "imported": {"tool": tool, "files": [str(p.resolve()) for p in files]},
            "harness_version": __version__, "environment": {}}
    store.write_meta(meta)
    frame = store.finish()
    report = build_report(frame, meta)
    (store.dir / REPORT_FILE).write_text(markdown.render(report))
    return RunResult(store.dir, frame, report, [], 0, 0, time.perf_counter() - started)


def render_run(run_dir: Path) -> Report:
    """Rebuild the report of a stored run from its tidy table (no recomputation)."""
    from harness.results.store import load_frame

    store = RunStore(run_dir)
    if not store.meta():
        raise UserError(f"{run_dir} is not a run directory (no run.json)")
    return build_report(load_frame(run_dir), store.meta())

