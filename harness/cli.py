"""Command line: parse arguments, call the API, map errors to exit codes.

Exit codes: 0 ok, 1 regression, 2 user error, 3 a target or tool failed.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, \
    TimeElapsedColumn

from harness import __version__, defaults
from harness.errors import HarnessError, UserError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Benchmark ML models across a fleet of edge devices.")
# Outside a terminal (CI logs, pipes) Rich would wrap tables at 80 columns: use a wide page.
console = Console(width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 200)
state = {"verbose": False}

FORMATS = ("terminal", "md", "csv")
InventoryOpt = typer.Option(defaults.INVENTORY, "--inventory", "-i", help="fleet description")
BaselinesOpt = typer.Option(defaults.BASELINES_DIR, "--baselines",
                            help="directory of <suite>.json baselines")
HistoryOpt = typer.Option(str(defaults.HISTORY_PATH), "--history", envvar=defaults.HISTORY_ENV,
                          help="history: an SQLite file, or postgresql://user@host/db")


def _check_format(format: str) -> None:
    if format not in FORMATS:
        raise UserError(f"--format: {format!r} is not one of {', '.join(FORMATS)}")


def _write(text: str, output: Optional[Path]) -> None:
    if output:
        output.write_text(text)
    else:
        sys.stdout.write(text)


def _version(value: bool) -> None:
    if value:
        console.print(f"harness {__version__}")
        raise typer.Exit()


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v", help="tracebacks and debug logs"),
         version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                      help="print the version and exit")) -> None:
    """harness: latency, per-op time, memory, size and accuracy per device and quantization mode."""
    state["verbose"] = verbose
    handler = logging.StreamHandler()
    handler.setLevel(logging.DEBUG if verbose else logging.WARNING)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger("harness").setLevel(logging.DEBUG if verbose else logging.INFO)


def _progress() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                    MofNCompleteColumn(), TimeElapsedColumn(), console=err_console, transient=False)


@app.command()
def run(suite: Optional[Path] = typer.Argument(None, help="suite YAML (omit with --resume)"),
        targets: Optional[str] = typer.Option(None, "--targets", "-t",
                                              help="comma-separated targets or groups"),
        inventory: Path = InventoryOpt,
        out: Path = typer.Option(defaults.REPORTS_DIR, "--out", "-o",
                                 help="where runs are stored"),
        resume: Optional[Path] = typer.Option(None, "--resume",
                                              help="run directory to complete"),
        compare_baseline: bool = typer.Option(False, "--compare-baseline",
                                              help="compare with baselines/<suite>.json"),
        fail_on_regression: bool = typer.Option(False, "--fail-on-regression",
                                                help="exit 1 on a regression (implies "
                                                     "--compare-baseline)"),
        update_baseline: bool = typer.Option(False, "--update-baseline",
                                             help="make this run the suite's baseline"),
        baselines: Path = typer.Option(defaults.BASELINES_DIR, "--baselines",
                                       help="folder of committed baselines"),
        history: Optional[str] = typer.Option(None, "--history", envvar=defaults.HISTORY_ENV,
                                              help="history: an SQLite file or postgresql://… "
                                                   "(default: OUT/history.sqlite)"),
        ) -> None:
    """Build artifacts, measure them on the targets, store and report the run."""
    from harness import api, regress
    from harness.report import terminal
    from harness.report.comparison import render_rich

    if suite is None and resume is None:
        raise UserError("give a suite file, or --resume RUN_DIR")
    with _progress() as progress:
        result = api.run(suite or Path(), targets, inventory, out, progress=progress, resume=resume)
    terminal.render(result.report, console)
    console.print(f"[bold]run stored in[/bold] {result.run_dir}  "
                  f"(artifacts: {result.built} built, {result.reused} reused from cache; "
                  f"{result.seconds:.1f} s)")
    after = regress.after_run(result.run_dir,
                              compare_baseline=compare_baseline or fail_on_regression,
                              update_baseline=update_baseline,
                              history_path=history or defaults.history_path(out),
                              baselines=baselines)
    if after.comparison is not None:
        render_rich(after.comparison.comparison, console, title=after.comparison.title)
    if after.missing_baseline is not None:
        console.print(f"no baseline at {after.missing_baseline} yet: nothing to compare with "
                      f"(set one with `harness baseline set {result.run_dir}`)", style="yellow")
    if after.baseline_written is not None:
        console.print(f"baseline written: {after.baseline_written}")
    if result.failed_targets:
        err_console.print(f"[red]target(s) failed: {', '.join(result.failed_targets)}[/red]")
    if fail_on_regression and after.regressed:
        raise typer.Exit(1)
    if result.failed_targets:
        raise typer.Exit(3)


@app.command()
def targets(inventory: Path = InventoryOpt,
            check: bool = typer.Option(False, "--check",
                                       help="connect to each target and probe it: arch, OS, Python, "
                                            "TFLite runtime, governor, temperature, disk"),
            only: Optional[str] = typer.Option(None, "--targets", "-t",
                                               help="with --check: targets or groups to probe")) -> None:
    """List the inventory: targets, kinds, how they are reached, groups."""
    from rich.table import Table

    from harness.config import load_inventory

    inv = load_inventory(inventory)
    if check:
        from harness.probe import any_unreachable, check_targets, render_check

        names = inv.select(only) if only else list(inv.targets)
        results = check_targets(names, inv, inventory)
        console.print(render_check(results))
        if any_unreachable(results):
            raise typer.Exit(3)
        return
    table = Table(title=f"Targets in {inventory}", title_justify="left")
    for column in ("name", "kind", "reached by", "runtime", "groups"):
        table.add_column(column)
    for name, target in inv.targets.items():
        reach = ("local" if target.is_local else target.ssh or target.host or
                 (f"labgrid place {target.labgrid.place}" if target.labgrid else
                  f"via {target.via} ({target.serial_port})"))
        groups = ", ".join(g for g, members in inv.groups.items() if name in members)
        table.add_row(name, target.kind, str(reach), target.runtime, groups)
    console.print(table)


@app.command()
def report(run_dir: Path = typer.Argument(..., help="a stored run directory"),
           format: str = typer.Option("terminal", "--format", "-f", help="terminal | md | csv"),
           output: Optional[Path] = typer.Option(None, "--output", "-o",
                                                 help="write to a file instead of stdout")) -> None:
    """Re-render a stored run."""
    from harness import api
    from harness.report import markdown, terminal
    from harness.results.rundir import RunDir

    _check_format(format)
    rendered = api.render_run(run_dir)
    if format == "terminal":
        terminal.render(rendered, console)
        return
    _write(markdown.render(rendered) if format == "md"
           else RunDir.open(run_dir).frame().to_csv(index=False), output)


@app.command("import")
def import_(tool: str = typer.Argument(..., help="benchmark_model | edgetpu_compiler | trtexec"),
            files: list[Path] = typer.Argument(..., help="tool output files (CSV, logs, JSON)"),
            target: str = typer.Option(..., "--target", help="device the output came from"),
            model: str = typer.Option(..., "--model", help="model name"),
            variant: str = typer.Option(..., "--variant", help="quantization variant"),
            suite: str = typer.Option("imported", "--suite", help="suite name to store it under"),
            out: Path = typer.Option(defaults.REPORTS_DIR, "--out", "-o")) -> None:
    """Turn output you already have into tidy rows, stored as a run like any other."""
    from harness import api
    from harness.report import terminal

    if tool not in ("benchmark_model", "edgetpu_compiler", "trtexec"):
        raise UserError(f"harness import: unknown tool {tool!r}",
                        hint="use benchmark_model, edgetpu_compiler or trtexec")
    result = api.import_run(tool, files, target, model, variant, out, suite)
    terminal.render(result.report, console)
    console.print(f"[bold]{len(result.frame)} rows stored in[/bold] {result.run_dir}")


@app.command()
def compare(run_dir: Path = typer.Argument(..., help="a stored run directory"),
            against: Optional[str] = typer.Option(None, "--against", "-a",
                                                  help="baseline file, run directory or run id "
                                                       "(default: baselines/<suite>.json)"),
            format: str = typer.Option("terminal", "--format", "-f", help="terminal | md | csv"),
            output: Optional[Path] = typer.Option(None, "--output", "-o",
                                                  help="write md/csv to a file"),
            show_all: bool = typer.Option(False, "--all",
                                          help="also list unchanged and informational rows"),
            baselines: Path = BaselinesOpt, history_path: str = HistoryOpt,
            no_history_noise: bool = typer.Option(False, "--no-history-noise",
                                                  help="ignore run-to-run noise in the history"),
            ) -> None:
    """Compare a run with its baseline or another run; exit 1 on a regression."""
    from harness import regress
    from harness.report.comparison import render_rich, to_csv, to_markdown

    _check_format(format)
    result = regress.compare_run(run_dir, against, baselines=baselines, history_path=history_path,
                                 use_history_noise=not no_history_noise)
    if format == "terminal":
        render_rich(result.comparison, console, title=result.title, show_unchanged=show_all)
    else:
        _write(to_markdown(result.comparison, title=result.title, show_unchanged=show_all)
               if format == "md" else to_csv(result.comparison), output)
    raise typer.Exit(result.comparison.exit_code())


baseline_app = typer.Typer(add_completion=False, no_args_is_help=True,
                           help="Regression baselines: baselines/<suite>.json (commit them).")
app.add_typer(baseline_app, name="baseline")


@baseline_app.command("set")
def baseline_set(run_dirs: list[Path] = typer.Argument(
                     ..., help="the run that becomes the baseline; give 4+ runs (oldest first) "
                               "to also record their run-to-run noise"),
                 baselines: Path = BaselinesOpt) -> None:
    """Make a stored run (the last one given) the baseline of its suite."""
    from harness.results.baseline import set_baseline

    path = set_baseline(run_dirs if len(run_dirs) > 1 else run_dirs[0], baselines)
    console.print(f"baseline written: {path}  (commit it: git add {path})")


@baseline_app.command("show")
def baseline_show(suite: Optional[str] = typer.Argument(None, help="suite name or baseline file "
                                                                   "(default: every baseline)"),
                  baselines: Path = BaselinesOpt) -> None:
    """Show a baseline: where it came from, environment per target, its verdict metrics."""
    from harness.report.terminal import baseline_view
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
        console.print(f"[bold]{path}[/bold]: suite {b.suite}, run {b.source_run}, "
                      f"set {b.created}, harness {b.harness_version}, {len(b.frame)} rows, "
                      f"{len(b.samples)} sample series")
        environment, rows = baseline_view(b)
        for line in environment:
            console.print(line, style="dim")
        console.print(rows)


@app.command()
def history(suite: Optional[str] = typer.Option(None, "--suite", "-s"),
            target: Optional[str] = typer.Option(None, "--target", "-t"),
            model: Optional[str] = typer.Option(None, "--model", "-m"),
            metric: Optional[str] = typer.Option("median_ms", "--metric",
                                                 help="metric or measurement; 'all': every row"),
            last: int = typer.Option(10, "--last", "-n", min=1, help="how many runs"),
            format: str = typer.Option("terminal", "--format", "-f", help="terminal | md | csv"),
            append: Optional[Path] = typer.Option(None, "--append",
                                                  help="add a stored run to the history first"),
            history_path: str = HistoryOpt) -> None:
    """Trend table of the last runs: one line per series, one column per run."""
    from harness.report.trend import render_trend, trend_markdown
    from harness.results.history import History

    db = History(history_path)
    if append is not None:
        run_id = db.append(append)
        console.print(f"appended run {run_id} to {db.location}", style="dim")
    if not db.exists():
        raise UserError(f"no history at {db.location}",
                        hint="runs are added by `harness run`, "
                             "or `harness history --append RUN_DIR`")
    _check_format(format)
    trend = db.trend(suite=suite, target=target, model=model,
                     metric=None if metric in (None, "all") else metric, last=last)
    if format == "terminal":
        render_trend(trend, console, title=f"History ({db.location}, last {last} runs)")
    elif format == "md":
        sys.stdout.write(trend_markdown(trend, title=f"History (last {last} runs)"))
    else:
        sys.stdout.write(trend.to_csv(index=False))


def entry() -> None:
    """Console-script entry: one place where errors become messages and exit codes."""
    try:
        code = app(standalone_mode=False)
    except HarnessError as exc:
        if state["verbose"]:
            err_console.print_exception()
        err_console.print(f"[red]error:[/red] {exc}", soft_wrap=True, highlight=False)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("[red]aborted[/red]")
        sys.exit(130)
    except typer.exceptions.TyperException as exc:  # usage errors (bad option, missing argument)
        exc.show()
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    entry()
