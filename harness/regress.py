"""The post-run pipeline as an API: history, comparison with a reference, A/B re-measurement,
baseline update.

A reference is a baseline file (`baselines/<suite>.json`), another run directory or a run id in
the history. Functions return data (a Comparison and its label); printing is the CLI's job.

    outcome = after_run(run_dir, compare_baseline=True, ab=ABOptions())  # after `harness run`
    result = compare_run(run_dir, against="reports/nilm/<id>", ab=ABOptions())  # `harness compare`
    result.comparison.regressed, result.title

The A/B step (`remeasure_suspects`): the stored comparison marks latency rows it cannot judge `?`
(state remeasure). `plan_ab` picks the series to re-measure - the suspects, most changed first, up
to the suite's `regression.ab_max_rows`, plus a rotating sample of the series stored runs call
unchanged - and says why each other suspect is not A/B-tested (budget, same artifact on both
sides, A/B off). The baseline's and tonight's artifacts come from the artifact store by sha256;
`harness.remeasure` re-measures them on their target within `regression.ab_budget_seconds`, and
`compare.apply_ab` merges the decisions. Whatever is not decided stays `?` with its reason.
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import pandas as pd
from pydantic import ValidationError

from harness import defaults
from harness.compare import (REMEASURE, SAME, Comparison, SeriesKey, apply_ab, compare_runs,
                             is_ab_row, measurement_protocol, note_ab, policy_for, series_key)
from harness.config.suite import RegressionSpec
from harness.errors import HarnessError, UserError
from harness.results.artifact_store import ArtifactStore, store_of_run
from harness.results.baseline import baseline_path, read_baseline, set_baseline
from harness.results.rundir import RunDir, RunMeta


def _history(path: Path | str) -> Any:
    """The run history at `path` (SQLAlchemy is imported only when a history is used)."""
    from harness.results.history import History

    return History(path)


AB_MODES = ("auto", "all", "off")


@dataclass(frozen=True)
class Reference:
    """What a run is compared with: its rows, raw samples, environment per target, a label, and
    the run-to-run noise per row key it carries (baselines set from several runs)."""

    frame: pd.DataFrame
    samples: list[dict[str, Any]]
    environment: dict[str, dict[str, Any]]
    label: str
    noise: dict[tuple, float] = field(default_factory=dict)
    protocol: dict[str, Any] | None = None      # measurement_protocol of its suite (None: unknown)


@dataclass(frozen=True)
class RunComparison:
    """A run compared with a reference."""

    comparison: Comparison
    label: str   # what it was compared with
    title: str   # "<run id> vs <label>"

    @property
    def regressed(self) -> bool:
        return self.comparison.regressed


@dataclass(frozen=True)
class AfterRun:
    """What happened after a run was stored."""

    history_run_id: str | None = None           # appended to the history under this id
    comparison: RunComparison | None = None      # None when not compared
    missing_baseline: Path | None = None         # asked to compare, but no baseline here yet
    baseline_written: Path | None = None         # --update-baseline
    comparison_files: tuple[Path, ...] = ()      # compare.md, compare.csv in the run directory

    @property
    def regressed(self) -> bool:
        return self.comparison is not None and self.comparison.regressed


def load_reference(against: str | Path | None, suite: str, *,
                   baselines: Path = defaults.BASELINES_DIR,
                   history_path: Path = defaults.HISTORY_PATH) -> Reference:
    """The reference named by `against`: a baseline file, a run directory, a run id in the
    history, or None for the suite's baseline `<baselines>/<suite>.json`."""
    if against is None:
        path = baseline_path(suite, baselines)
        if not path.is_file():
            raise UserError(f"no baseline for suite {suite!r} at {path}",
                            hint="set one with `harness baseline set RUN_DIR`, or pass --against")
        return _baseline_reference(path)
    candidate = Path(against)
    if candidate.is_file():
        return _baseline_reference(candidate)
    if candidate.is_dir():
        run = RunDir.open(candidate)
        meta = run.meta()
        return Reference(run.frame(), run.samples(), meta.environment, f"run {candidate}",
                         protocol=measurement_protocol(meta.suite))
    history = _history(history_path)
    if history.exists():
        frame, samples, meta = history.run_frame(str(against))
        return Reference(frame, samples, meta.environment, f"run {against} (history)",
                         protocol=measurement_protocol(meta.suite))
    raise UserError(f"--against {against}: not a baseline file, a run directory or a run id",
                    hint=f"run ids are looked up in {history_path}")


def _baseline_reference(path: Path) -> Reference:
    b = read_baseline(path)
    return Reference(b.frame, b.samples, b.environment, f"baseline {path} (run {b.source_run})",
                     b.noise, b.protocol)


def compare_with(run_dir: Path | RunDir, reference: Reference, *,
                 history_path: Path = defaults.HISTORY_PATH,
                 use_history_noise: bool = True, ab: "ABOptions | None" = None) -> RunComparison:
    """Compare a stored run with a reference, the suite's thresholds applied; with `ab`, the
    suspect latency rows are then re-measured A/B (`remeasure_suspects`).

    With `use_history_noise`, each row's noise is the larger of the reference's and the history's
    estimate (never cry wolf over run-to-run noise).
    """
    run = run_dir if isinstance(run_dir, RunDir) else RunDir.open(run_dir)
    frame, meta = run.frame(), run.meta()
    noise = dict(reference.noise)
    history = _history(history_path) if use_history_noise else None
    if history is not None and history.exists():
        known = history.noise(run.suite_name(), exclude_run=meta.run_id)
        for key, sd in known.items():
            noise[key] = max(sd, noise.get(key, 0.0))
    comparison = compare_runs(frame, reference.frame, thresholds=meta.thresholds,
                              current_env=meta.environment, baseline_env=reference.environment,
                              current_protocol=measurement_protocol(meta.suite),
                              baseline_protocol=reference.protocol, noise=noise)
    if ab is not None:
        comparison = remeasure_suspects(comparison, run, ab, history_path=history_path)
    return RunComparison(comparison, reference.label, f"{run.run_id} vs {reference.label}")


def compare_run(run_dir: Path | RunDir, against: str | Path | None = None, *,
                baselines: Path = defaults.BASELINES_DIR,
                history_path: Path = defaults.HISTORY_PATH,
                use_history_noise: bool = True, ab: "ABOptions | None" = None) -> RunComparison:
    """Compare a stored run with its suite's baseline, or with `against` (see load_reference);
    `ab`: re-measure the suspect latency rows (None: no A/B, they stay `?`)."""
    run = run_dir if isinstance(run_dir, RunDir) else RunDir.open(run_dir)
    reference = load_reference(against, run.suite_name(), baselines=baselines,
                               history_path=history_path)
    return compare_with(run, reference, history_path=history_path,
                        use_history_noise=use_history_noise, ab=ab)


def write_comparison(run_dir: Path | RunDir, result: RunComparison) -> tuple[Path, Path]:
    """compare.md and compare.csv in the run directory."""
    from harness.report.comparison import to_csv, to_markdown

    run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    return run.write_comparison(to_markdown(result.comparison, title=result.title),
                                to_csv(result.comparison))


def after_run(run_dir: Path | RunDir, *, compare_baseline: bool = False,
              update_baseline: bool = False, history_path: Path = defaults.HISTORY_PATH,
              baselines: Path = defaults.BASELINES_DIR, record_history: bool = True,
              ab: "ABOptions | None" = None) -> AfterRun:
    """What `harness run` does once a run is stored: history, comparison (with the A/B
    re-measurement when `ab` is given), baseline update (pinned in the run's artifact store).

    A suite without a baseline yet is not an error for a nightly: `missing_baseline` says where it
    would be, and with `update_baseline` the run becomes the baseline.
    """
    run = run_dir if isinstance(run_dir, RunDir) else RunDir.open(run_dir)
    history_run_id = _history(history_path).append(run) if record_history else None
    result, missing, files = None, None, ()
    if compare_baseline:
        path = baseline_path(run.suite_name(), baselines)
        if path.is_file():
            result = compare_run(run, None, baselines=baselines, history_path=history_path,
                                 ab=ab)
            files = write_comparison(run, result)
        else:
            missing = path
    store = ab.store if ab is not None and ab.store is not None else store_of_run(run.path)
    written = set_baseline(run.path, baselines, store=store) if update_baseline else None
    return AfterRun(history_run_id, result, missing, written, tuple(files))


# --------------------------------------------------------------------------- A/B re-measurement

@dataclass(frozen=True)
class ABOptions:
    """How the A/B re-measurement runs after the stored comparison (every field optional)."""

    mode: str | None = None                # auto | all | off; None: the suite's regression.ab
    inventory_path: Path | None = None     # None: the run's inventory (run.json), else the default
    store: ArtifactStore | None = None     # None: the store beside the run directory
    budget_seconds: float | None = None    # None: the suite's regression.ab_budget_seconds
    progress: Callable[[str], None] | None = None
    driver: Any = None                     # a module with ABSeries and remeasure (tests)
    check_reachable: bool = True           # connect to each target first


@dataclass(frozen=True)
class ABPlan:
    """Which series to re-measure, and why the other suspects are not."""

    selected: list[SeriesKey]                  # most suspect first; the sample last
    sampled: list[SeriesKey]                   # of which: the rotating sample
    skipped: dict[SeriesKey, str]              # suspect series not A/B-tested: why


def load_ab_driver() -> ModuleType:
    """The A/B re-measurement driver, `harness.remeasure` (ABSeries, remeasure)."""
    from harness import remeasure

    return remeasure


def regression_settings(meta: RunMeta) -> RegressionSpec:
    """The suite's `regression:` section as the run recorded it (defaults for older runs)."""
    try:
        return RegressionSpec.model_validate(meta.suite.get("regression") or {})
    except ValidationError as exc:
        raise UserError(f"run {meta.run_id}: run.json suite.regression is not valid ({exc})",
                        hint="fix the suite's regression: section and run again") from exc


def ab_rotation(run: RunDir, history_path: Path = defaults.HISTORY_PATH) -> int:
    """Where tonight's rotating A/B sample starts: the number of runs of the suite in the
    history, else the day of the run (so every series comes round now and then)."""
    history = _history(history_path)
    if history.exists():
        count = len(history.runs(run.suite_name()))
        if count:
            return count
    from harness.results.history import run_started

    started = run_started(run.run_id, run.meta().to_json())
    try:
        return _dt.datetime.fromisoformat(started.replace("Z", "+00:00")).toordinal()
    except ValueError:
        return 0


def _ab_rows(comparison: Comparison) -> dict[SeriesKey, dict[str, Any]]:
    """The latency median row of each series the A/B re-measurement could decide."""
    out: dict[SeriesKey, dict[str, Any]] = {}
    for record in comparison.rows.to_dict("records"):
        if is_ab_row(record):
            out.setdefault(series_key(record), record)
    return out


def _two_artifacts(record: dict[str, Any]) -> str | None:
    """None when the row has two different artifacts to re-measure, else why not."""
    a, b = record.get("baseline_artifact_sha256") or "", record.get("artifact_sha256") or ""
    if not a or not b:
        return "no artifact sha256 recorded on both sides"
    if a == b:
        return ("same artifact on both sides: A/B re-measures artifacts, not a runtime or "
                "environment change")
    return None


def plan_ab(comparison: Comparison, spec: RegressionSpec, mode: str, rotation: int = 0) -> ABPlan:
    """The series to re-measure (see the module docstring).

    auto: the suspects (state remeasure) with two different artifacts, the largest stored change
    first, up to `spec.ab_max_rows`; then `spec.ab_sample_rows` of the series stored runs call
    unchanged (state same, a new artifact), in rotation. all: every series with two artifacts, no
    row cap. off: none.
    """
    if mode not in AB_MODES:
        raise UserError(f"--ab {mode!r}: use one of {', '.join(AB_MODES)}")
    rows = _ab_rows(comparison)
    suspects = [k for k, r in rows.items() if r["state"] == REMEASURE]
    skipped: dict[SeriesKey, str] = {}
    if mode == "off":
        return ABPlan([], [], {k: "A/B off" for k in suspects})
    testable = []
    for key in suspects:
        why = _two_artifacts(rows[key])
        if why:
            skipped[key] = why
        else:
            testable.append(key)

    def change(key: SeriesKey) -> float:
        pct = rows[key].get("change_pct")
        return -abs(pct) if pct is not None and not math.isnan(pct) else 0.0

    testable.sort(key=lambda k: (change(k), k))
    others = sorted(k for k, r in rows.items() if r["state"] == SAME and not _two_artifacts(r))
    if mode == "all":
        return ABPlan(testable + others, [], skipped)
    selected = testable[:spec.ab_max_rows]
    skipped.update({k: "budget" for k in testable[spec.ab_max_rows:]})
    slots = min(spec.ab_sample_rows, spec.ab_max_rows - len(selected), len(others))
    start = (rotation * max(slots, 1)) % len(others) if others else 0
    sampled = [others[(start + i) % len(others)] for i in range(slots)]
    return ABPlan(selected + sampled, sampled, skipped)


def _inventory_path(options: ABOptions, meta: RunMeta) -> Path:
    if options.inventory_path is not None:
        return Path(options.inventory_path)
    if meta.inventory_path and Path(meta.inventory_path).is_file():
        return Path(meta.inventory_path)
    return defaults.INVENTORY


def _unreachable(targets: list[str], inventory_path: Path, connect: bool) -> dict[str, str]:
    """Targets the A/B re-measurement cannot use: {target: why}."""
    from harness.config import load_inventory

    if not Path(inventory_path).is_file():
        return {t: f"no inventory at {inventory_path}" for t in targets}
    try:
        inventory = load_inventory(Path(inventory_path))
    except HarnessError as exc:
        return {t: f"inventory {inventory_path}: {exc.message}" for t in targets}
    out = {t: f"target {t} is not in {inventory_path}" for t in targets
           if t not in inventory.targets}
    if connect:
        from harness.transport import connect as open_transport

        for name in targets:
            target = inventory.targets.get(name)
            if name in out or target is None or target.kind == "arduino":
                continue
            try:
                open_transport(name, target, inventory_path).close()
            except HarnessError as exc:
                out[name] = f"target {name} unreachable: {exc.message}"
    return out


def remeasure_suspects(comparison: Comparison, run: RunDir, options: ABOptions, *,
                       history_path: Path = defaults.HISTORY_PATH) -> Comparison:
    """The comparison with the A/B re-measurement merged in (see the module docstring).

    Never raises for a series it cannot re-measure: the series stays `?` and its reason says why
    (budget, same artifact, artifact not in the store, target unreachable, A/B off, the driver's
    error). `Comparison.notes` sums it up for the reports.
    """
    meta = run.meta()
    spec = regression_settings(meta)
    mode = options.mode or spec.ab
    plan = plan_ab(comparison, spec, mode, ab_rotation(run, history_path) if mode == "auto" else 0)
    notes: dict[SeriesKey, str] = dict(plan.skipped)
    rows = _ab_rows(comparison)
    store = options.store or store_of_run(run.path)
    files: dict[SeriesKey, tuple[Path, Path]] = {}
    for key in plan.selected:
        record = rows[key]
        try:
            files[key] = tuple(store.get(record[column], model=record["model"],  # type: ignore
                                         variant=record["variant"], target=record["target"])
                               for column in ("baseline_artifact_sha256", "artifact_sha256"))
        except UserError as exc:
            notes[key] = str(exc)
    inventory_path = _inventory_path(options, meta)
    if files:
        lost = _unreachable(sorted({k[0] for k in files}), inventory_path, options.check_reachable)
        for key in [k for k in files if k[0] in lost]:
            notes[key] = lost[key[0]]
            del files[key]
    summary: list[str] = []
    results: dict[SeriesKey, Any] = {}
    if files:
        results, failure = _run_driver(files, options, spec, comparison, meta, inventory_path)
        if failure:
            summary.append(failure)
            notes.update({k: failure for k in files})
        for key in files:
            result = results.get(key)
            if result is None or result.pairs == 0:
                notes.setdefault(key, "budget")
    decided = {k: r for k, r in results.items() if r is not None and r.pairs > 0}
    out = note_ab(apply_ab(comparison, decided), notes)
    summary.insert(0, _ab_summary(mode, plan, decided, notes, options, spec))
    return replace(out, notes=list(comparison.notes) + summary)


def _run_driver(files: dict[SeriesKey, tuple[Path, Path]], options: ABOptions,
                spec: RegressionSpec, comparison: Comparison, meta: RunMeta,
                inventory_path: Path) -> tuple[dict[SeriesKey, Any], str | None]:
    """Call the driver on the series: ({series key: ABResult}, why it failed or None)."""
    try:
        driver = options.driver or load_ab_driver()
    except ImportError as exc:
        return {}, f"A/B driver unavailable ({exc})"
    series = {key: driver.ABSeries(target=key[0], model=key[1], variant=key[2], runtime=key[3],
                                   threads=int(key[4]), baseline=a, candidate=b)
              for key, (a, b) in files.items()}
    thresholds = {k: v for k, v in meta.thresholds.items() if k != "alpha"}
    threshold = policy_for("latency", "median_ms", thresholds).threshold
    budget = _budget(options, spec)
    try:
        raw = driver.remeasure(list(series.values()), inventory_path=Path(inventory_path),
                               threshold=threshold, alpha=comparison.alpha,
                               budget_seconds=budget,
                               looks=tuple(spec.ab_looks) if spec.ab_looks else None,
                               progress=options.progress)
    except HarnessError as exc:
        return {}, f"A/B re-measurement failed: {exc}"
    # the driver keys results by ABSeries.key; accept the comparison's form as well
    return {key: raw.get(s.key, raw.get(key)) for key, s in series.items()}, None


def _budget(options: ABOptions, spec: RegressionSpec) -> float:
    if options.budget_seconds is not None:
        return float(options.budget_seconds)
    return float(spec.ab_budget_seconds)


def _ab_summary(mode: str, plan: ABPlan, decided: dict[SeriesKey, Any],
                notes: dict[SeriesKey, str], options: ABOptions, spec: RegressionSpec) -> str:
    """One line for the reports: what the A/B step did."""
    budget = _budget(options, spec)
    if mode == "off":
        return (f"A/B off: {len(notes)} suspect latency series not re-measured (they stay ?)"
                if notes else "A/B off")
    counts: dict[str, int] = {}
    for result in decided.values():
        name = result.decision.value if result.decision is not None else "stopped (budget)"
        counts[name] = counts.get(name, 0) + 1
    parts = [f"{n} {name}" for name, n in sorted(counts.items())]
    text = (f"A/B ({mode}, budget {budget:g} s, at most {spec.ab_max_rows} series): "
            f"{len(decided)} series re-measured" + (f" ({', '.join(parts)})" if parts else ""))
    if plan.sampled:
        text += f", {len(plan.sampled)} of them from the rotating sample"
    if notes:
        reasons: dict[str, int] = {}
        for why in notes.values():
            short = why if len(why) <= 60 else why[:57] + "..."
            reasons[short] = reasons.get(short, 0) + 1
        text += "; not A/B-tested: " + ", ".join(f"{n} ({why})" for why, n in reasons.items())
    return text
