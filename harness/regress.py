"""The post-run pipeline as an API: history, comparison with a reference, baseline update.

A reference is a baseline file (`baselines/<suite>.json`), another run directory or a run id in
the history. Functions return data (a Comparison and its label); printing is the CLI's job.

    outcome = after_run(run_dir, compare_baseline=True)       # what `harness run` does afterwards
    result = compare_run(run_dir, against="reports/nilm/<id>")  # `harness compare`
    result.comparison.regressed, result.title
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness import defaults
from harness.compare import Comparison, compare_runs
from harness.errors import UserError
from harness.results.baseline import baseline_path, read_baseline, set_baseline
from harness.results.history import History
from harness.results.rundir import RunDir


@dataclass(frozen=True)
class Reference:
    """What a run is compared with: its rows, raw samples, environment per target, a label, and
    the run-to-run noise per row key it carries (baselines set from several runs)."""

    frame: pd.DataFrame
    samples: list[dict[str, Any]]
    environment: dict[str, dict[str, Any]]
    label: str
    noise: dict[tuple, float] = field(default_factory=dict)


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
        return Reference(run.frame(), run.samples(), run.meta().environment, f"run {candidate}")
    if History(history_path).exists():
        frame, samples, meta = History(history_path).run_frame(str(against))
        return Reference(frame, samples, meta.environment, f"run {against} (history)")
    raise UserError(f"--against {against}: not a baseline file, a run directory or a run id",
                    hint=f"run ids are looked up in {history_path}")


def _baseline_reference(path: Path) -> Reference:
    b = read_baseline(path)
    return Reference(b.frame, b.samples, b.environment, f"baseline {path} (run {b.source_run})",
                     b.noise)


def compare_with(run_dir: Path | RunDir, reference: Reference, *,
                 history_path: Path = defaults.HISTORY_PATH,
                 use_history_noise: bool = True) -> RunComparison:
    """Compare a stored run with a reference, the suite's thresholds applied.

    With `use_history_noise`, each row's noise is the larger of the reference's and the history's
    estimate (never cry wolf over run-to-run noise).
    """
    run = run_dir if isinstance(run_dir, RunDir) else RunDir.open(run_dir)
    frame, meta = run.frame(), run.meta()
    noise = dict(reference.noise)
    if use_history_noise and History(history_path).exists():
        known = History(history_path).noise(run.suite_name(), exclude_run=meta.run_id)
        for key, sd in known.items():
            noise[key] = max(sd, noise.get(key, 0.0))
    comparison = compare_runs(frame, run.samples(), reference.frame, reference.samples,
                              meta.thresholds, meta.environment, reference.environment,
                              noise=noise)
    return RunComparison(comparison, reference.label, f"{run.run_id} vs {reference.label}")


def compare_run(run_dir: Path | RunDir, against: str | Path | None = None, *,
                baselines: Path = defaults.BASELINES_DIR,
                history_path: Path = defaults.HISTORY_PATH,
                use_history_noise: bool = True) -> RunComparison:
    """Compare a stored run with its suite's baseline, or with `against` (see load_reference)."""
    run = run_dir if isinstance(run_dir, RunDir) else RunDir.open(run_dir)
    reference = load_reference(against, run.suite_name(), baselines=baselines,
                               history_path=history_path)
    return compare_with(run, reference, history_path=history_path,
                        use_history_noise=use_history_noise)


def write_comparison(run_dir: Path | RunDir, result: RunComparison) -> tuple[Path, Path]:
    """compare.md and compare.csv in the run directory."""
    from harness.report.comparison import to_csv, to_markdown

    run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    return run.write_comparison(to_markdown(result.comparison, title=result.title),
                                to_csv(result.comparison))


def after_run(run_dir: Path | RunDir, *, compare_baseline: bool = False,
              update_baseline: bool = False, history_path: Path = defaults.HISTORY_PATH,
              baselines: Path = defaults.BASELINES_DIR, record_history: bool = True) -> AfterRun:
    """What `harness run` does once a run is stored: history, comparison, baseline update.

    A suite without a baseline yet is not an error for a nightly: `missing_baseline` says where it
    would be, and with `update_baseline` the run becomes the baseline.
    """
    run = run_dir if isinstance(run_dir, RunDir) else RunDir.open(run_dir)
    history_run_id = History(history_path).append(run) if record_history else None
    result, missing, files = None, None, ()
    if compare_baseline:
        path = baseline_path(run.suite_name(), baselines)
        if path.is_file():
            result = compare_run(run, None, baselines=baselines, history_path=history_path)
            files = write_comparison(run, result)
        else:
            missing = path
    written = set_baseline(run.path, baselines) if update_baseline else None
    return AfterRun(history_run_id, result, missing, written, tuple(files))
