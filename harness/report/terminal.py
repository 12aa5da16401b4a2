"""Render a report in the terminal with Rich."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table as RichTable

from harness.report.model import Report, Table

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
