"""Render a report in the terminal with Rich."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table as RichTable

from harness.report.model import Report, Table, fmt

if TYPE_CHECKING:
    from harness.results.baseline import Baseline

NUMERIC_HINTS = ("ms", "threads", "n", "size", "MB", "KiB")


def rich_table(table: Table) -> RichTable:
    """One report table as a Rich table (numbers right-aligned, failures red)."""
    out = RichTable(title=table.title, title_justify="left", header_style="bold", show_lines=False)
    for column in table.columns:
        justify = "right" if any(h in column for h in NUMERIC_HINTS) else "left"
        out.add_column(column, justify=justify, overflow="fold")
    for row in table.rows:
        style = "red" if any(cell.startswith(("failed", "no:")) for cell in row) else None
        out.add_row(*row, style=style)
    if table.note:
        out.caption = table.note
    return out


def render(report: Report, console: Console) -> None:
    """Print the whole report."""
    for line in report.summary:
        console.print(line, style="dim")
    for table in report.tables:
        console.print(rich_table(table))


def baseline_view(baseline: "Baseline") -> tuple[list[str], RichTable]:
    """A baseline's environment fingerprint per target (lines) and the rows that decide the
    verdict (failures included) as a Rich table."""
    from harness.compare import fingerprint, policy_for

    lines = []
    for target, env in baseline.environment.items():
        fp = fingerprint(env)
        lines.append(f"  {target}: " + ", ".join(f"{k}={v}" for k, v in fp.items() if v))
    table = RichTable(title_justify="left", header_style="bold")
    for column in ("target", "model", "variant", "threads", "metric", "value", "unit", "n",
                   "status"):
        table.add_column(column, justify="right" if column in ("threads", "value", "n")
                         else "left")
    for r in baseline.frame.itertuples():
        if r.status == "ok" and not policy_for(str(r.measurement), str(r.metric), {}).counts:
            continue
        table.add_row(str(r.target), str(r.model or ""), str(r.variant or ""),
                      "" if r.threads is None or str(r.threads) == "<NA>" else str(r.threads),
                      str(r.metric), fmt(r.value, 4), str(r.unit or ""),
                      "" if str(r.n) == "<NA>" else str(r.n),
                      str(r.status) if r.status == "ok" else f"failed: {r.error_kind}")
    return lines, table
