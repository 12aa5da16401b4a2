"""Command line: parse arguments, call the API, map errors to exit codes.

Exit codes (`harness.errors.ExitCode`): 0 ok, 1 regression, 2 user error, 3 a target or tool
failed, 4 internal error (a bug: the message names the log with the traceback). A run's code comes
from the kinds of its failed rows (`harness.errors.run_exit_code`).
"""

from __future__ import annotations

import logging
import sys
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Iterator, Optional

import typer
from rich.console import Console

from harness import __version__, defaults, logs
from harness.errors import ExitCode, HarnessError, UserError, run_exit_code

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
AbOpt = typer.Option(None, "--ab", help="A/B re-measurement of suspect latency rows: auto "
                                        "(suspects + a rotating sample), all (every latency "
                                        "median row), off (default: the suite's regression.ab, "
                                        "auto)")
NoAbOpt = typer.Option(False, "--no-ab", help="no A/B re-measurement (same as --ab off): suspect "
                                              "latency rows stay ?")


def _check_format(format: str) -> None:
    if format not in FORMATS:
        raise UserError(f"--format: {format!r} is not one of {', '.join(FORMATS)}")


def _write(text: str, output: Optional[Path]) -> None:
    if output:
        output.write_text(text)
    else:
        sys.stdout.write(text)


def _ab_options(ab: Optional[str], no_ab: bool, inventory: Optional[Path] = None):
    """The A/B options of --ab / --no-ab (progress lines go to stderr)."""
    from harness.regress import AB_MODES, ABOptions

    if no_ab and ab not in (None, "off"):
        raise UserError(f"--no-ab and --ab {ab} contradict each other", hint="give one of them")
    mode = "off" if no_ab else ab
    if mode is not None and mode not in AB_MODES:
        raise UserError(f"--ab: {mode!r} is not one of {', '.join(AB_MODES)}")
    return ABOptions(mode=mode, inventory_path=inventory,
                     progress=lambda line: err_console.print(line, style="dim", highlight=False))


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
    logs.setup(err_console, verbose)


@contextmanager
def _run_console() -> Iterator[tuple[Any, bool]]:
    """The progress display of a run and whether library output goes to the run's log.

    Quiet (the default): the consoles keep the terminal for themselves, so `api.run` can send
    what TensorFlow, the converter and the runtime print to harness.log; `--verbose` leaves it on
    the terminal (above the bars). Bars in a terminal, plain lines in a log (harness.progress).
    """
    from harness.progress import make_progress

    verbose = state["verbose"]
    with (logs.keep_terminal(console, err_console) if not verbose
          else nullcontext(False)) as quiet:
        with make_progress(err_console, redirect=not quiet) as progress:
            yield progress, quiet


def _write_html_report(run_dir: Path, history_path: Path) -> None:
    """report.html beside the run (with trends and the comparison); a failure to draw it is a
    warning, never the run's failure."""
    from harness import api

    try:
        path = api.write_html_report(run_dir, history_path)
    except Exception as exc:  # noqa: BLE001 - a plotting bug must not fail a measured run
        log = logging.getLogger("harness.report")
        log.warning("report.html not written: %s: %s (`harness -v report %s -f html` shows "
                    "where)", type(exc).__name__, exc, run_dir)
        log.debug("report.html not written", exc_info=True)
        return
    console.print(f"[bold]report[/bold] {path}", highlight=False)


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
        ab: Optional[str] = AbOpt, no_ab: bool = NoAbOpt,
        ) -> None:
    """Build artifacts, measure them on the targets, store and report the run.

    With --compare-baseline / --fail-on-regression, exit 1 only on a regression: latency
    REGRESSED by the A/B re-measurement, a counted deterministic metric beyond its threshold, or
    a job that newly fails. Undecided rows (?) are reported and do not fail.
    """
    from harness import api, regress
    from harness.interrupt import EXIT_CODE, RunInterrupt, resume_command
    from harness.report import terminal
    from harness.report.comparison import render_rich

    if suite is None and resume is None:
        raise UserError("give a suite file, or --resume RUN_DIR")
    ab_options = _ab_options(ab, no_ab)  # the inventory: the one the run recorded
    interrupt = RunInterrupt()
    with interrupt.installed(), _run_console() as (progress, quiet):
        result = api.run(suite or Path(), targets, inventory, out, progress=progress,
                         resume=resume, capture_output=quiet, cancel=interrupt.cancel,
                         on_run_dir=interrupt.started)
    terminal.render(result.report, console)
    console.print(f"[bold]run stored in[/bold] {result.run_dir}  "
                  f"(artifacts: {result.built} built, {result.reused} reused from cache; "
                  f"{result.seconds:.1f} s)")
    if result.time_split:
        console.print("time: " + ", ".join(f"{name} {seconds:.0f} s"
                                           for name, seconds in result.time_split.items()))
    if result.interrupted:
        _write_html_report(result.run_dir, history or defaults.history_path(out))
        err_console.print(f"[red]interrupted[/red]: the run is incomplete; complete it with: "
                          f"{resume_command(result.run_dir)}", soft_wrap=True, highlight=False)
        raise typer.Exit(EXIT_CODE)
    after = regress.after_run(result.run_dir,
                              compare_baseline=compare_baseline or fail_on_regression,
                              update_baseline=update_baseline,
                              history_path=history or defaults.history_path(out),
                              baselines=baselines, ab=ab_options)
    _write_html_report(result.run_dir, history or defaults.history_path(out))
    if after.comparison is not None:
        render_rich(after.comparison.comparison, console, title=after.comparison.title)
    if after.missing_baseline is not None:
        console.print(f"no baseline at {after.missing_baseline} yet: nothing to compare with "
                      f"(set one with `harness baseline set {result.run_dir}`)", style="yellow")
    if after.baseline_written is not None:
        console.print(f"baseline written: {after.baseline_written}")
    if result.failed_targets:
        err_console.print(f"[red]target(s) failed: {', '.join(result.failed_targets)}[/red]")
    frame = result.frame
    code = run_exit_code(frame.loc[frame["status"] == "failed", "error_kind"])
    if code == ExitCode.INTERNAL:
        err_console.print(f"[red]internal error in a job: traceback in "
                          f"{result.run_dir / 'harness.log'}[/red]")
    if fail_on_regression and after.regressed:
        raise typer.Exit(ExitCode.REGRESSION)
    if code:
        raise typer.Exit(code)


@app.command()
def targets(inventory: Path = InventoryOpt,
            check: bool = typer.Option(False, "--check",
                                       help="connect to each target and probe it: arch, OS, Python, "
                                            "TFLite runtime, setup, governor, temperature, disk"),
            setup: bool = typer.Option(False, "--setup",
                                       help="make <workdir>/venv on each target with a TFLite "
                                            "runtime that works there, verified by the runner"),
            download: bool = typer.Option(False, "--download",
                                          help="fetch on this machine the wheels each target's "
                                               "Python needs, into --wheelhouse"),
            wheelhouse: Optional[Path] = typer.Option(None, "--wheelhouse",
                                                      help="folder of wheels: --setup installs "
                                                           "from it offline"),
            only: Optional[str] = typer.Option(None, "--targets", "-t",
                                               help="targets or groups (default: all)")) -> None:
    """List the inventory: targets, kinds, how they are reached, groups; or check / set them up."""
    from rich.table import Table

    from harness.config import load_inventory

    inv = load_inventory(inventory)
    names = inv.select(only) if only else list(inv.targets)
    if setup or download:
        _setup_targets(names, inv, inventory, setup, download, wheelhouse)
    elif wheelhouse is not None:
        raise UserError("--wheelhouse goes with --setup or --download")
    if check:
        from harness.probe import any_unreachable, check_targets, render_check

        results = check_targets(names, inv, inventory)
        console.print(render_check(results))
        if any_unreachable(results):
            raise typer.Exit(3)
        return
    if setup or download:
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


def _history_of(run_dir: Path) -> Path:
    """The history a stored run belongs to: its reports directory's history.sqlite
    (reports/<suite>/<run-id> -> reports/history.sqlite) when there is one, else the default."""
    beside = defaults.history_path(run_dir.resolve().parent.parent)
    return beside if beside.is_file() else defaults.HISTORY_PATH


def _setup_targets(names: list[str], inv, inventory: Path, setup: bool, download: bool,
                   wheelhouse: Optional[Path]) -> None:
    """`harness targets --download` / `--setup`: exit 3 when a device lacks something."""
    from harness import device_setup

    house = device_setup.wheelhouse_from_options(wheelhouse, download=download)

    def say(name: str, message: str) -> None:
        err_console.print(f"[dim]{name}:[/dim] {message}", highlight=False)

    steps = [("download", device_setup.download_wheelhouse)] if download else []
    steps += [("setup", device_setup.setup_targets)] if setup else []
    for step, function in steps:
        results = function(names, inv, wheelhouse=house, inventory_path=inventory, say=say)
        console.print(device_setup.render_setup(results, title=f"targets --{step}"))
        for r in results:
            if r.error is not None:
                err_console.print(f"[red]error:[/red] {r.error}", soft_wrap=True, highlight=False)
        code = device_setup.exit_code(results)
        if code:
            raise typer.Exit(code)


@app.command()
def report(run_dir: Path = typer.Argument(..., help="a stored run directory"),
           format: str = typer.Option("terminal", "--format", "-f",
                                      help="terminal | md | csv | html"),
           output: Optional[Path] = typer.Option(None, "--output", "-o",
                                                 help="write to a file instead of stdout (html: "
                                                      "default RUN_DIR/report.html, - for "
                                                      "stdout)"),
           history_path: Optional[Path] = typer.Option(
               None, "--history", help="html: history for the Trends section (default: the "
                                       "run's reports directory history.sqlite)")) -> None:
    """Re-render a stored run."""
    from harness import api
    from harness.report import markdown, terminal
    from harness.results.rundir import RunDir

    if format == "html":
        history = history_path or _history_of(run_dir)
        if output is None:
            console.print(f"report written: {api.write_html_report(run_dir, history)}",
                          highlight=False)
        elif str(output) == "-":
            sys.stdout.write(api.html_report(run_dir, history))
        else:
            output.write_text(api.html_report(run_dir, history), encoding="utf-8")
            console.print(f"report written: {output}", highlight=False)
        return
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
            ab: Optional[str] = AbOpt, no_ab: bool = NoAbOpt,
            inventory: Optional[Path] = typer.Option(None, "--inventory", "-i",
                                                     help="fleet for the A/B re-measurement "
                                                          "(default: the run's inventory)"),
            ) -> None:
    """Compare a run with its baseline or another run; exit 1 on a regression.

    Suspect latency rows are re-measured A/B on their target (when it is reachable); exit 1 only
    on latency REGRESSED by A/B, a counted deterministic regression or a newly failing job.
    """
    from harness import regress
    from harness.report.comparison import render_rich, to_csv, to_markdown

    _check_format(format)
    result = regress.compare_run(run_dir, against, baselines=baselines, history_path=history_path,
                                 use_history_noise=not no_history_noise,
                                 ab=_ab_options(ab, no_ab, inventory))
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
    """Make a stored run (the last one given) the baseline of its suite.

    Pins it: the artifact of every latency row must be in the artifact store beside the run
    (`<reports>/artifacts`, or $HARNESS_ARTIFACT_STORE), for the A/B re-measurement.
    """
    from harness.results.artifact_store import store_of_run
    from harness.results.baseline import set_baseline

    store = store_of_run(run_dirs[-1])
    path = set_baseline(run_dirs if len(run_dirs) > 1 else run_dirs[0], baselines, store=store)
    console.print(f"baseline written: {path}  (commit it: git add {path}); its artifacts are "
                  f"pinned in {store.root}")


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
            html: Optional[Path] = typer.Option(None, "--html",
                                                help="also write the trends as an HTML page "
                                                     "(plots, change points marked)"),
            min_change: Optional[float] = typer.Option(
                None, "--min-change", min=0.0,
                help="smallest level shift marked as a change point, a fraction "
                     "(default 0.05: 5 %)"),
            history_path: str = HistoryOpt) -> None:
    """Trend table of the last runs: one line per series, one column per run; change points
    (Apache Otava) marked ▲/▼ in the table and listed below it."""
    from harness.report.plot_data import series_from_trend
    from harness.report.trend import (MIN_CHANGE, find_change_points, mark_change_points,
                                      render_trend, trend_markdown)
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
    series = series_from_trend(trend)
    changes = find_change_points(series, min_change=MIN_CHANGE if min_change is None
                                 else min_change)
    if html is not None:
        from harness.report.html import render_history_html

        title = f"harness history: {suite or 'all suites'}, last {last} runs"
        html.write_text(render_history_html(series, [(c.key, c.run_id) for c in changes],
                                            title=title), encoding="utf-8")
        err_console.print(f"history page written: {html}", highlight=False)
    if format == "terminal":
        render_trend(trend, console, title=f"History ({db.location}, last {last} runs)",
                     changes=changes)
    elif format == "md":
        sys.stdout.write(trend_markdown(trend, title=f"History (last {last} runs)",
                                        changes=changes))
    else:
        sys.stdout.write(mark_change_points(trend, changes).to_csv(index=False))


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
    except Exception as exc:  # a bug: never exit 1, the code of a regression
        log = _crash_log()
        err_console.print(f"[red]internal error:[/red] {type(exc).__name__}: {exc} (traceback in "
                          f"{log})", soft_wrap=True, highlight=False)
        sys.exit(ExitCode.INTERNAL)
    sys.exit(code if isinstance(code, int) else 0)


def _crash_log() -> str:
    """Write the current exception's traceback to a new file; its path."""
    import tempfile
    import traceback

    fd, path = tempfile.mkstemp(prefix="harness-crash-", suffix=".log")
    with open(fd, "w") as handle:
        handle.write(traceback.format_exc())
    return path


if __name__ == "__main__":
    entry()
