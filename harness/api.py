"""The programmatic API behind the CLI: run a suite, re-render a run."""

from __future__ import annotations

import dataclasses
import logging
import platform
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import pandas as pd

from harness import __version__, defaults, logs
from harness.artifacts import Artifact
from harness.artifacts.build import Builder, variants_for
from harness.config import Inventory, load_inventory, load_suite
from harness.errors import HarnessError, InternalError, UserError
from harness.orchestrate import TargetOutcome, dropped_rows, run_plan
from harness.plan import Job, Plan, make_plan
from harness.report import markdown
from harness.report.model import Report, build_report
from harness.results.rundir import COMPARE_CSV, LOG_FILE, RunDir, RunMeta
from harness.workloads import ModelSpec

if TYPE_CHECKING:
    from harness.report.html import HistoryData

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
    interrupted: bool = False  # stopped by Ctrl-C: partial, `harness run --resume` completes it
    time_split: dict[str, float] = field(default_factory=dict)  # training, conversion, measuring


def time_split(training: float, building: float, measuring: float, total: float) -> dict[str, float]:
    """Where a run's wall time went, in seconds: training models, the rest of the build
    (data, conversion, quantization statistics, optimisation variants), measuring on the targets,
    and what is left (storing, reporting). Conversions that ran while a model trained
    (`build_artifacts`) are inside the training time: `conversion` is what they added."""
    split = {"training": training, "conversion": building - training, "measuring": measuring}
    split["other"] = total - sum(split.values())
    return {name: round(max(seconds, 0.0), 1) for name, seconds in split.items()}


def public_entry(inventory: Inventory, name: str) -> dict[str, Any]:
    """An inventory entry safe to store in results (no secrets)."""
    entry = inventory.targets[name].model_dump(exclude_none=True)
    return {k: v for k, v in entry.items() if k not in SECRET_FIELDS}


@contextmanager
def _log_to(path: Path, capture_output: bool = False) -> Iterator[None]:
    """Log every record (harness's, the libraries', Python warnings) to `path`; with
    `capture_output` also what is written to descriptors 1 and 2 (`harness.logs.output_to`)."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    own = logging.getLogger("harness")
    if not own.isEnabledFor(logging.INFO):
        own.setLevel(logging.INFO)
    logging.getLogger().addHandler(handler)
    try:
        with logs.output_to(path) if capture_output else nullcontext():
            yield
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()


def build_artifacts(plan: Plan, cache: Path, progress: Any = None,
                    cancel: threading.Event | None = None) -> tuple[dict, Builder]:
    """Build (or reuse) every artifact the plan needs (until `cancel` is set); the progress task
    counts artifacts.

    Models are trained one after the other in this thread; each trained model's conversions
    (which run in the converter process) go on in a second thread while the next model trains,
    when the suite allows it (`Builder.converts_apart`).
    """
    builder = Builder(plan.suite, plan.suite_path, cache)
    total = sum(len(variants_for(spec, plan.suite)) for spec in plan.models)
    task = progress.add_task("building artifacts", total=total, unit="artifacts") \
        if progress else None
    if progress:
        builder.step = lambda message: progress.update(task, description=message)

    def build(spec: ModelSpec) -> list[Artifact]:
        built = builder.build(spec)
        if progress:
            progress.update(task, advance=len(built), description="building artifacts")
        return built

    pending: list[Future] = []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="convert") as converting:
        try:
            for spec in plan.models:
                if cancel is not None and cancel.is_set():
                    break
                for future in pending:  # a harness error while converting ends the build now
                    if future.done() and future.exception() is not None:
                        future.result()
                builder.prepare(spec)
                if builder.converts_apart:
                    pending.append(converting.submit(build, spec))
                else:
                    pending.append(_done(build(spec)))
        finally:
            if sys.exc_info()[0] is not None or (cancel is not None and cancel.is_set()):
                for future in pending:  # conversions not started yet are dropped
                    future.cancel()
            wait(pending)
            builder.close()
    artifacts: dict[tuple[str, str], Artifact] = {}
    for future in pending:
        if not future.cancelled():
            for artifact in future.result():
                artifacts[(artifact.model, artifact.variant)] = artifact
    return artifacts, builder


def _done(value: Any) -> Future:
    """A future that already holds `value`."""
    future: Future = Future()
    future.set_result(value)
    return future


class RunRecorder:
    """Keeps a run directory current while targets report (from several threads): rows and
    samples appended, each target's environment written to run.json as soon as it is known."""

    def __init__(self, run: RunDir, meta: RunMeta) -> None:
        self.run = run
        self._meta = meta
        self._lock = threading.Lock()
        run.write_meta(meta)

    @property
    def meta(self) -> RunMeta:
        with self._lock:
            return self._meta

    def record(self, outcome: TargetOutcome) -> None:
        """Store a (partial) target outcome."""
        with self._lock:
            self.run.append(outcome.rows, outcome.series,
                            job=job_key(outcome.job) if outcome.job else None)
            self._set_environment(outcome)

    def environment(self, outcome: TargetOutcome) -> None:
        """Record a target's environment (its final outcome), when it has one."""
        if outcome.environment:
            with self._lock:
                self._set_environment(outcome)

    def finish(self, seconds: float, interrupted: bool = False,
               split: dict[str, float] | None = None) -> tuple[pd.DataFrame, Report]:
        """Write the run time (and its `split`), results.csv and report.md; the tidy frame and
        the report."""
        with self._lock:
            extra = dict(self._meta.extra, interrupted=True) if interrupted else dict(self._meta.extra)
            if split:
                extra["time_split"] = split
            self._meta = dataclasses.replace(self._meta, seconds=round(seconds, 1), extra=extra)
            self.run.write_meta(self._meta)
            frame = self.run.finish()
            report = build_report(frame, self._meta.to_json())
            self.run.write_report(markdown.render(report))
            return frame, report

    def _set_environment(self, outcome: TargetOutcome) -> None:
        self._meta = self._meta.with_environment(outcome.name, outcome.environment)
        self.run.write_meta(self._meta)


def run(suite_path: Path, targets: str | None, inventory_path: Path, out: Path,
        progress: Any = None, resume: Path | None = None, cache: Path | None = None,
        connect: Any = None, capture_output: bool = False,
        cancel: threading.Event | None = None,
        on_run_dir: Callable[[Path], None] | None = None) -> RunResult:
    """Run a suite on targets; every result is stored as soon as it is measured.

    `progress`: a `rich.progress.Progress` (or `harness.progress.PlainProgress`): one task counting
    artifacts while they are built, then one per target counting its jobs. `capture_output`:
    send what libraries print to descriptors 1 and 2 (TensorFlow, the converter, the runtime)
    into the run's harness.log (`harness.logs`; the caller keeps its own terminal streams).
    `connect(name, target) -> Transport` replaces the transports (tests). An unexpected exception
    is logged with its traceback in the run's harness.log and raised as InternalError naming it.
    Once `cancel` is set, no new job starts and running ones are stopped; the run is finished
    from what was measured (`RunResult.interrupted`). `on_run_dir` learns the run directory as
    soon as it exists.
    """
    started = time.perf_counter()
    previous: RunMeta | None = None
    if resume:
        rundir = RunDir(resume)
        if not rundir.has_meta():
            raise UserError(f"--resume: {resume} is not a run directory (no run.json)")
        previous = rundir.meta()
        if not previous.suite_path:
            raise UserError(f"--resume: {resume} has no suite file in its run.json",
                            hint="only runs made by `harness run` can be resumed")
        suite_path = Path(previous.suite_path)
        targets = targets or ",".join(previous.targets)
        inventory_path = Path(previous.inventory_path or inventory_path)
    inventory = load_inventory(inventory_path)
    suite = load_suite(suite_path)
    if not targets:
        raise UserError("--targets is required", hint=f"known targets: {', '.join(inventory.targets)}")
    selected = inventory.select(targets)
    plan = make_plan(suite, suite_path, inventory, selected)
    cache = cache or defaults.cache_dir()
    if previous is None:
        rundir = RunDir.create(out, suite.name)
    else:
        plan.jobs = _missing_jobs(plan, rundir)
    if on_run_dir is not None:
        on_run_dir(rundir.path)
    with _log_to(rundir.file(LOG_FILE), capture_output), _internal_errors(rundir.file(LOG_FILE)):
        log.info("run %s: suite %s on %s (%d jobs)", rundir.run_id, suite.name, selected,
                 len(plan.jobs))
        recorder = RunRecorder(rundir, RunMeta(
            run_id=rundir.run_id, suite_path=str(suite_path.resolve()),
            inventory_path=str(inventory_path.resolve()), targets=selected,
            suite=suite.model_dump(mode="json"), harness_version=__version__,
            controller={"python": platform.python_version(), "os": platform.platform()},
            inventory={name: public_entry(inventory, name) for name in selected},
            environment=dict(previous.environment) if previous else {}))
        build_started = time.perf_counter()
        artifacts, builder = build_artifacts(plan, cache, progress, cancel)
        building = time.perf_counter() - build_started
        log.info("artifacts: %d built, %d reused from cache", builder.built, builder.reused)
        store_artifacts(artifacts.values(), rundir.path.parent.parent)
        # what the plan left out and what the build made or failed to make (a resumed run
        # dropped these rows: they are written again from this build)
        rundir.append(dropped_rows(plan) + _quant_rows(plan, artifacts) + builder.failure_rows,
                      [])
        measuring = {name: progress.add_task(f"measuring {name}", total=len(plan.jobs_for(name)),
                                             unit="jobs")
                     for name in plan.targets} if progress else {}

        def advance(target: str) -> None:
            if target in measuring:
                progress.advance(measuring[target])

        measure_started = time.perf_counter()
        outcomes = run_plan(plan, inventory, artifacts, rundir.targets_dir, cache, recorder.record,
                            advance, connect=connect, inventory_path=inventory_path,
                            cancel=cancel)
        measure_seconds = time.perf_counter() - measure_started
        for outcome in outcomes:
            recorder.environment(outcome)
        interrupted = cancel is not None and cancel.is_set()
        if interrupted:
            log.warning("run %s interrupted: finishing it from what was measured", rundir.run_id)
        split = time_split(builder.training_seconds, building, measure_seconds,
                           time.perf_counter() - started)
        log.info("time: %s", ", ".join(f"{name} {seconds:.1f} s" for name, seconds in split.items()))
        frame, report = recorder.finish(time.perf_counter() - started, interrupted, split)
    failed = [o.name for o in outcomes if o.failed]
    return RunResult(rundir.path, frame, report, failed, builder.built, builder.reused,
                     time.perf_counter() - started, interrupted, split)


def store_artifacts(artifacts: Any, reports: Path) -> int:
    """Put every built artifact into the artifact store of the reports directory (hard links into
    the cache): the A/B re-measurement finds the files a baseline was measured with by sha256.
    A store that cannot be written is logged, not fatal (the run's measurements come first)."""
    from harness.results.artifact_store import ArtifactStore

    store = ArtifactStore(defaults.artifact_store_dir(reports))
    count = 0
    for artifact in artifacts:
        if not artifact.ok or not artifact.sha256 or not Path(artifact.path).is_file():
            continue
        try:
            store.put(artifact.path, artifact.sha256)
            count += 1
        except (OSError, UserError) as exc:
            log.warning("artifact store %s: %s %s not stored: %s", store.root, artifact.model,
                        artifact.variant, exc)
    return count


def _quant_rows(plan: Plan, artifacts: dict[tuple[str, str], Artifact]) -> list[dict]:
    """Quantization efficacy rows of the full-integer artifacts (they do not depend on a target)."""
    from harness.results.rows import quant_error_rows

    spec = plan.suite.measurements.quant_error
    if spec is None:
        return []
    return [row for artifact in artifacts.values()
            for row in quant_error_rows(artifact, plan.suite.name, spec.threshold)]


def job_key(job: Job) -> str:
    """The key of a job in the run directory: target, model, variant and runtime."""
    return f"{job.target}/{job.job_id}"


def _missing_jobs(plan: Plan, rundir: RunDir) -> list[Job]:
    """Jobs of the plan that are not done in the run: done means every row the job wrote is
    there and none of them failed. The rows of the others, and the build's rows (written again
    from this build), are dropped."""
    done = {job for job, rows in rundir.complete_jobs().items()
            if all(row.get("status") != "failed" for row in rows)}
    missing = [job for job in plan.jobs if job_key(job) not in done]
    rundir.drop_jobs({job_key(job) for job in missing}, build_rows=True)
    return missing


@contextmanager
def _internal_errors(log_file: Path) -> Iterator[None]:
    """An exception nobody expected: its traceback into the run log, an InternalError naming it."""
    try:
        yield
    except HarnessError:
        raise
    except Exception as exc:
        log.exception("internal error")
        raise InternalError(f"internal error: {type(exc).__name__}: {exc}",
                            log=str(log_file)) from exc


def import_run(tool: str, files: list[Path], target: str, model: str, variant: str, out: Path,
               suite: str = "imported") -> RunResult:
    """Store tool output a user already has (benchmark_model, edgetpu_compiler, trtexec) as a run."""
    from harness.importer import import_files

    started = time.perf_counter()
    for path in files:
        if not path.is_file():
            raise UserError(f"harness import: {path} does not exist")
    rows = import_files(tool, files, target, model, variant)
    rundir = RunDir.create(out, suite)
    for row in rows:
        row["suite"] = row.get("suite") or suite
    rundir.append(rows, [])
    meta = RunMeta(run_id=rundir.run_id, suite={"name": suite}, targets=[target],
                   imported={"tool": tool, "files": [str(p.resolve()) for p in files]},
                   harness_version=__version__)
    rundir.write_meta(meta)
    frame = rundir.finish()
    report = build_report(frame, meta.to_json())
    rundir.write_report(markdown.render(report))
    return RunResult(rundir.path, frame, report, [], 0, 0, time.perf_counter() - started)


def render_run(run_dir: Path) -> Report:
    """Rebuild the report of a stored run from its tidy table (no recomputation)."""
    run = RunDir(run_dir)
    if not run.has_meta():
        raise UserError(f"{run_dir} is not a run directory (no run.json)")
    return build_report(run.frame(), run.meta().to_json())


TREND_RUNS = 20  # runs shown in a run report's Trends section
TREND_METRIC = "median_ms"


def html_report(run_dir: Path, history_path: Path | None = None) -> str:
    """A stored run as one self-contained HTML page (`harness.report.html.render_html`).

    Plots and tables of the run; the comparison (forest plot) when the run directory holds
    compare.csv (`plot_data.comparison_from_csv` maps its columns); a Trends section with change
    points when the history at `history_path` holds earlier runs of the suite.
    """
    from harness.report.html import render_html
    from harness.report.plot_data import comparison_from_csv

    run = RunDir.open(run_dir)
    meta, frame = run.meta(), run.frame()
    compare_csv = run.file(COMPARE_CSV)
    comparison = comparison_from_csv(pd.read_csv(compare_csv)) if compare_csv.is_file() else None
    return render_html(frame, meta.to_json(), comparison=comparison,
                       history=_trends(run, meta, frame, history_path))


def write_html_report(run_dir: Path, history_path: Path | None = None) -> Path:
    """Write report.html into the run directory (see `html_report`); its path."""
    return RunDir.open(run_dir).write_report_html(html_report(run_dir, history_path))


def _trends(run: RunDir, meta: RunMeta, frame: pd.DataFrame,
            history_path: Path | None) -> HistoryData | None:
    """The Trends section's data (`HistoryData`): this run's targets, TREND_METRIC, the last
    TREND_RUNS runs of the suite up to this one; None without earlier runs."""
    from harness.report.html import HistoryData
    from harness.report.plot_data import series_from_trend
    from harness.report.trend import find_change_points
    from harness.results.history import History
    from harness.results.rundir import suite_name

    suite = suite_name(meta, frame, required=False)
    if history_path is None or not suite or not History(history_path).exists():
        return None
    db = History(history_path)
    runs = list(db.runs(suite)["run_id"])  # oldest first
    upto = runs[:runs.index(meta.run_id) + 1] if meta.run_id in runs else runs
    window = upto[-TREND_RUNS:]
    if len(window) < 2:
        return None
    trend = db.trend(suite=suite, metric=TREND_METRIC, last=len(runs) - runs.index(window[0]))
    targets = set(frame["target"].dropna())
    trend = trend[trend["run_id"].isin(window) & trend["target"].isin(targets)]
    series = series_from_trend(trend)
    if series.empty:
        return None
    changes = find_change_points(series)
    return HistoryData(series, [(c.key, c.run_id) for c in changes])
