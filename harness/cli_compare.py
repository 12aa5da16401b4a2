"""CLI pieces for comparisons, baselines and history; registered by harness/cli.py.

    from harness import cli_compare
    app.command("compare")(cli_compare.compare)
    app.add_typer(cli_compare.baseline_app, name="baseline")
    app.command("history")(cli_compare.history)

and, in `harness run`, after the run is stored:

    comparison = cli_compare.after_run(result.run_dir, console, compare_baseline=...,
                                       update_baseline=..., history_path=...)
    if fail_on_regression and comparison is not None and comparison.regressed:
        raise typer.Exit(1)

Errors are raised as HarnessError subclasses and turned into messages by `cli.entry`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console

from harness.errors import UserError

DEFAULT_BASELINES = Path("baselines")
DEFAULT_HISTORY = Path("reports") / "history.sqlite"
COMPARE_MD = "compare.md"
COMPARE_CSV = "compare.csv"

_console = Console(width=None if sys.stdout.isatty() else 200)

BaselinesOpt = typer.Option(DEFAULT_BASELINES, "--baselines",
                            help="directory of <suite>.json baselines")
HistoryOpt = typer.Option(DEFAULT_HISTORY, "--history", help="history database (SQLite)")


# --------------------------------------------------------------------------- API used by the CLI

def load_reference(against: str | None, suite: str, *, baselines: Path = DEFAULT_BASELINES,
                   history_path: Path = DEFAULT_HISTORY
                   ) -> tuple[Any, list[dict], dict[str, dict], str, dict[tuple, float]]:
    """What to compare with: (frame, samples, environment per target, label, noise per row key).

    `against` is a baseline file, a run directory, a run id in the history, or None for the suite's
    baseline `baselines/<suite>.json`.
    """
    from harness.results.baseline import baseline_path, read_baseline
    from harness.results.history import History, load_run

    if against is None:
        path = baseline_path(suite, baselines)
        if not path.is_file():
            raise UserError(f"no baseline for suite {suite!r} at {path}",
                            hint="set one with `harness baseline set RUN_DIR`, or pass --against")
        b = read_baseline(path)
        return b.frame, b.samples, b.environment, f"baseline {path} (run {b.source_run})", b.noise
    candidate = Path(against)
    if candidate.is_file():
        b = read_baseline(candidate)
        return (b.frame, b.samples, b.environment, f"baseline {candidate} (run {b.source_run})",
                b.noise)
    if candidate.is_dir():
        frame, samples, run_json = load_run(candidate)
        return frame, samples, run_json.get("environment") or {}, f"run {candidate}", {}
    if history_path.is_file():
        frame, samples, run_json = History(history_path).run_frame(against)
        return frame, samples, run_json.get("environment") or {}, f"run {against} (history)", {}
    raise UserError(f"--against {against}: not a baseline file, a run directory or a run id",
                    hint=f"run ids are looked up in {history_path}")


def compare_run_dir(run_dir: Path, against: str | None = None, *,
                    baselines: Path = DEFAULT_BASELINES, history_path: Path = DEFAULT_HISTORY,
                    use_history_noise: bool = True) -> tuple[Any, str]:
    """Compare a stored run with its suite's baseline (or `against`): (Comparison, label)."""
    from harness.compare import compare_runs
    from harness.results.baseline import suite_name
    from harness.results.history import History, load_run

    frame, samples, run_json = load_run(run_dir)
    suite = suite_name(frame, run_json)
    ref_frame, ref_samples, ref_env, label, noise = load_reference(
        against, suite, baselines=baselines, history_path=history_path)
    thresholds = ((run_json.get("suite") or {}).get("thresholds")
                  if isinstance(run_json.get("suite"), dict) else None) or {}
    noise = dict(noise)
    if use_history_noise and history_path.is_file():
        # the larger of the baseline's and the history's estimate: never cry wolf
        known = History(history_path).noise(suite, exclude_run=run_json.get("run_id"))
        for key, sd in known.items():
            noise[key] = max(sd, noise.get(key, 0.0))
    comparison = compare_runs(frame, samples, ref_frame, ref_samples, thresholds,
                              run_json.get("environment") or {}, ref_env, noise=noise)
    return comparison, label


def write_outputs(comparison: Any, run_dir: Path, label: str) -> None:
    """compare.md and compare.csv in the run directory (kept with the run, uploaded by CI)."""
    from harness.report.compare import to_csv, to_markdown

    (run_dir / COMPARE_MD).write_text(to_markdown(comparison, title=f"{run_dir.name} vs {label}"))
    (run_dir / COMPARE_CSV).write_text(to_csv(comparison))


def after_run(run_dir: Path, console: Console, *, compare_baseline: bool = False,
              update_baseline: bool = False, history_path: Path = DEFAULT_HISTORY,
              baselines: Path = DEFAULT_BASELINES, record_history: bool = True) -> Any:
    """What `harness run` does once a run is stored: history, comparison, baseline update.

    Returns the Comparison (None when not comparing). A suite without a baseline yet is not an
    error for a nightly: it says so, and with `update_baseline` the run becomes the baseline.
    """
    from harness.report.compare import render_rich
    from harness.results.baseline import baseline_path, set_baseline, suite_name
    from harness.results.history import History, load_run

    if record_history:
        History(history_path).append(run_dir)
    comparison = None
    if compare_baseline:
        frame, _, run_json = load_run(run_dir)
        path = baseline_path(suite_name(frame, run_json), baselines)
        if path.is_file():
            comparison, label = compare_run_dir(run_dir, None, baselines=baselines,
                                                history_path=history_path)
            write_outputs(comparison, run_dir, label)
            render_rich(comparison, console, title=f"{run_dir.name} vs {label}")
        else:
            console.print(f"no baseline at {path} yet: nothing to compare with "
                          f"(set one with `harness baseline set {run_dir}`)", style="yellow")
    if update_baseline:
        written = set_baseline(run_dir, baselines)
        console.print(f"baseline written: {written}")
    return comparison


# --------------------------------------------------------------------------- typer commands

def compare(run_dir: Path = typer.Argument(..., help="a stored run directory"),
            against: Optional[str] = typer.Option(None, "--against", "-a",
                                                  help="baseline file, run directory or run id "
                                                       "(default: baselines/<suite>.json)"),
            format: str = typer.Option("terminal", "--format", "-f", help="terminal | md | csv"),
            output: Optional[Path] = typer.Option(None, "--output", "-o",
                                                  help="write md/csv to a file"),
            show_all: bool = typer.Option(False, "--all",
                                          help="also list unchanged and informational rows"),
            baselines: Path = BaselinesOpt, history_path: Path = HistoryOpt,
            no_history_noise: bool = typer.Option(False, "--no-history-noise",
                                                  help="ignore run-to-run noise in the history"),
            ) -> None:
    """Compare a run with its baseline or another run; exit 1 on a regression."""
    from harness.report.compare import render_rich, to_csv, to_markdown

    if format not in ("terminal", "md", "csv"):
        raise UserError(f"--format: {format!r} is not one of terminal, md, csv")
    comparison, label = compare_run_dir(run_dir, against, baselines=baselines,
                                        history_path=history_path,
                                        use_history_noise=not no_history_noise)
    title = f"{run_dir.name} vs {label}"
    if format == "terminal":
        render_rich(comparison, _console, title=title, show_unchanged=show_all)
    else:
        text = (to_markdown(comparison, title=title, show_unchanged=show_all) if format == "md"
                else to_csv(comparison))
        if output:
            output.write_text(text)
        else:
            sys.stdout.write(text)
    raise typer.Exit(comparison.exit_code())


baseline_app = typer.Typer(add_completion=False, no_args_is_help=True,
                           help="Regression baselines: baselines/<suite>.json (commit them).")


@baseline_app.command("set")
def baseline_set(run_dirs: list[Path] = typer.Argument(
                     ..., help="the run that becomes the baseline; give 4+ runs (oldest first) "
                               "to also record their run-to-run noise"),
                 baselines: Path = BaselinesOpt) -> None:
    """Make a stored run (the last one given) the baseline of its suite."""
    from harness.results.baseline import set_baseline

    path = set_baseline(run_dirs if len(run_dirs) > 1 else run_dirs[0], baselines)
    _console.print(f"baseline written: {path}  (commit it: git add {path})")


@baseline_app.command("show")
def baseline_show(suite: Optional[str] = typer.Argument(None, help="suite name or baseline file "
                                                                   "(default: every baseline)"),
                  baselines: Path = BaselinesOpt) -> None:
    """Show a baseline: where it came from, environment per target, its verdict metrics."""
    from rich.table import Table

    from harness.compare import policy_for
    from harness.report.model import fmt
    from harness.results.baseline import baseline_path, read_baseline

    if suite is None:
        paths = sorted(baselines.glob("*.json"))
        if not paths:
            raise UserError(f"no baselines in {baselines}",
                            hint="set one with `harness baseline set RUN_DIR`")
    else:
        paths = [Path(suite) if Path(suite).is_file() else baseline_path(suite, baselines)]
    for path in paths:
        b = read_baseline(path)
        _console.print(f"[bold]{path}[/bold]: suite {b.suite}, run {b.source_run}, "
                       f"set {b.created}, harness {b.harness_version}, {len(b.frame)} rows, "
                       f"{len(b.samples)} sample series")
        for target, env in b.environment.items():
            from harness.compare import fingerprint

            fp = fingerprint(env)
            _console.print(f"  {target}: " + ", ".join(f"{k}={v}" for k, v in fp.items() if v),
                           style="dim")
        table = Table(title_justify="left", header_style="bold")
        for column in ("target", "model", "variant", "threads", "metric", "value", "unit", "n",
                       "status"):
            table.add_column(column, justify="right" if column in ("threads", "value", "n")
                             else "left")
        for r in b.frame.itertuples():
            if r.status == "ok" and not policy_for(str(r.measurement), str(r.metric), {}).counts:
                continue
            table.add_row(str(r.target), str(r.model or ""), str(r.variant or ""),
                          "" if r.threads is None or str(r.threads) == "<NA>" else str(r.threads),
                          str(r.metric), fmt(r.value, 4), str(r.unit or ""),
                          "" if str(r.n) == "<NA>" else str(r.n),
                          str(r.status) if r.status == "ok" else f"failed: {r.error_kind}")
        _console.print(table)


def history(suite: Optional[str] = typer.Option(None, "--suite", "-s"),
            target: Optional[str] = typer.Option(None, "--target", "-t"),
            model: Optional[str] = typer.Option(None, "--model", "-m"),
            metric: Optional[str] = typer.Option("median_ms", "--metric",
                                                 help="metric or measurement; 'all': every row"),
            last: int = typer.Option(10, "--last", "-n", min=1, help="how many runs"),
            format: str = typer.Option("terminal", "--format", "-f", help="terminal | md | csv"),
            append: Optional[Path] = typer.Option(None, "--append",
                                                  help="add a stored run to the history first"),
            history_path: Path = HistoryOpt) -> None:
    """Trend table of the last runs: one line per series, one column per run."""
    from harness.report.compare import render_trend, trend_markdown
    from harness.results.history import History

    db = History(history_path)
    if append is not None:
        run_id = db.append(append)
        _console.print(f"appended run {run_id} to {history_path}", style="dim")
    if not history_path.is_file():
        raise UserError(f"no history at {history_path}",
                        hint="runs are added by `harness run`, "
                             "or `harness history --append RUN_DIR`")
    if format not in ("terminal", "md", "csv"):
        raise UserError(f"--format: {format!r} is not one of terminal, md, csv")
    trend = db.trend(suite=suite, target=target, model=model,
                     metric=None if metric in (None, "all") else metric, last=last)
    if format == "terminal":
        render_trend(trend, _console, title=f"History ({history_path}, last {last} runs)")
    elif format == "md":
        sys.stdout.write(trend_markdown(trend, title=f"History (last {last} runs)"))
    else:
        sys.stdout.write(trend.to_csv(index=False))


# a stand-alone sub-app, for `python -m harness.cli_compare` and tests
app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False)
app.command("compare")(compare)
app.add_typer(baseline_app, name="baseline")
app.command("history")(history)

if __name__ == "__main__":
    app()
