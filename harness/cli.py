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

from harness import __version__
from harness.errors import HarnessError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Benchmark ML models across a fleet of edge devices.")
# Outside a terminal (CI logs, pipes) Rich would wrap tables at 80 columns: use a wide page.
console = Console(width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 200)
state = {"verbose": False}

DEFAULT_INVENTORY = Path("inventory.yaml")
InventoryOpt = typer.Option(DEFAULT_INVENTORY, "--inventory", "-i", help="fleet description")


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
        out: Path = typer.Option(Path("reports"), "--out", "-o", help="where runs are stored"),
        resume: Optional[Path] = typer.Option(None, "--resume",
                                              help="run directory to complete"),
        compare_baseline: bool = typer.Option(False, "--compare-baseline",
                                              help="compare with baselines/<suite>.json"),
        fail_on_regression: bool = typer.Option(False, "--fail-on-regression",
                                                help="exit 1 on a regression (implies "
                                                     "--compare-baseline)"),
        update_baseline: bool = typer.Option(False, "--update-baseline",
                                             help="make this run the suite's baseline"),
        baselines: Path = typer.Option(Path("baselines"), "--baselines",
                                       help="folder of committed baselines"),
        history: Optional[Path] = typer.Option(None, "--history",
                                               help="history database (default: OUT/history.sqlite)"),
        ) -> None:
    """Build artifacts, measure them on the targets, store and report the run."""
    from harness import api, cli_compare
    from harness.errors import UserError
    from harness.report import terminal

    if suite is None and resume is None:
        raise UserError("give a suite file, or --resume RUN_DIR")
    with _progress() as progress:
        result = api.run(suite or Path(), targets, inventory, out, progress=progress, resume=resume)
    terminal.render(result.report, console)
    console.print(f"[bold]run stored in[/bold] {result.run_dir}  "
                  f"(artifacts: {result.built} built, {result.reused} reused from cache; "
                  f"{result.seconds:.1f} s)")
    comparison = cli_compare.after_run(
        result.run_dir, console, compare_baseline=compare_baseline or fail_on_regression,
        update_baseline=update_baseline, history_path=history or out / "history.sqlite",
        baselines=baselines)
    if fail_on_regression and comparison is not None and comparison.regressed:
        if result.failed_targets:
            err_console.print(f"[red]target(s) failed: {', '.join(result.failed_targets)}[/red]")
        raise typer.Exit(1)
    if result.failed_targets:
        err_console.print(f"[red]target(s) failed: {', '.join(result.failed_targets)}[/red]")
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
                 f"via {target.via} ({target.serial_port})")
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
    from harness.errors import UserError
    from harness.report import markdown, terminal
    from harness.results.store import load_frame

    if format not in ("terminal", "md", "csv"):
        raise UserError(f"--format: {format!r} is not one of terminal, md, csv")
    rendered = api.render_run(run_dir)
    if format == "terminal":
        terminal.render(rendered, console)
        return
    text = markdown.render(rendered) if format == "md" else load_frame(run_dir).to_csv(index=False)
    if output:
        output.write_text(text)
    else:
        sys.stdout.write(text)


@app.command("import")
def import_(tool: str = typer.Argument(..., help="benchmark_model | edgetpu_compiler | trtexec"),
            files: list[Path] = typer.Argument(..., help="tool output files (CSV, logs, JSON)"),
            target: str = typer.Option(..., "--target", help="device the output came from"),
            model: str = typer.Option(..., "--model", help="model name"),
            variant: str = typer.Option(..., "--variant", help="quantization variant"),
            suite: str = typer.Option("imported", "--suite", help="suite name to store it under"),
            out: Path = typer.Option(Path("reports"), "--out", "-o")) -> None:
    """Turn output you already have into tidy rows, stored as a run like any other."""
    from harness import api
    from harness.errors import UserError
    from harness.report import terminal

    if tool not in ("benchmark_model", "edgetpu_compiler", "trtexec"):
        raise UserError(f"harness import: unknown tool {tool!r}",
                        hint="use benchmark_model, edgetpu_compiler or trtexec")
    result = api.import_run(tool, files, target, model, variant, out, suite)
    terminal.render(result.report, console)
    console.print(f"[bold]{len(result.frame)} rows stored in[/bold] {result.run_dir}")


def _register_compare_commands() -> None:
    from harness import cli_compare

    app.command("compare")(cli_compare.compare)
    app.add_typer(cli_compare.baseline_app, name="baseline")
    app.command("history")(cli_compare.history)


_register_compare_commands()


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
