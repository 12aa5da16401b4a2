"""Render a comparison with a baseline or another run (Rich, Markdown, CSV); display only.

A pivot of the comparison frame made by `harness.compare`.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table as RichTable

from harness.compare import MARKS, Comparison
from harness.report.model import Table, cell, fmt

MARK_STYLE = {"+": "bold red", "!": "bold red", "-": "green", "*": "green", "x": "yellow",
              "~": "dim"}
COLUMNS = ["", "target", "model", "variant", "threads", "metric", "baseline", "current", "change",
           "p", "reason"]


def _metric(row: Any) -> str:
    key = row["key"] if isinstance(row["key"], str) and row["key"] else ""
    return f"{row['metric']} [{key}]" if key else cell(row["metric"])


def _change(row: Any) -> str:
    if row["mark"] in ("!", "*"):
        return ""
    pct = row["change_pct"]
    if row["relative"] is False or (isinstance(pct, float) and math.isnan(pct)):
        change = row["change"]
        return "" if change is None or (isinstance(change, float) and math.isnan(change)) \
            else f"{change:+.4g}"
    return f"{pct:+.1f} %"


def _value(value: Any, unit: Any) -> str:
    text = fmt(value, 4)
    return f"{text} {unit}" if text != "-" and isinstance(unit, str) and unit else text


def _p(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.1g}" if value < 0.001 else f"{value:.3f}"


def _selected(comparison: Comparison, show_all: bool) -> pd.DataFrame:
    """Everything with show_all; else the counted rows that changed, and every ! * x row."""
    rows = comparison.rows
    if show_all:
        return rows
    keep = rows["mark"].isin(["!", "*", "x"]) | (rows["counts"] & rows["mark"].isin(["+", "-"]))
    return rows[keep]


def comparison_table(comparison: Comparison, title: str = "Comparison with the baseline",
                     show_unchanged: bool = False) -> Table:
    """The comparison as a report-model table (one row per compared key)."""
    table = Table(title, list(COLUMNS))
    for _, row in _selected(comparison, show_unchanged).iterrows():
        reason = str(row["reason"] or "")
        table.rows.append([
            str(row["mark"]), cell(row["target"]), cell(row["model"]),
            cell(row["variant"]), cell(row["threads"]), _metric(row),
            _value(row["baseline_value"], row["unit"]), _value(row["value"], row["unit"]),
            _change(row), _p(row["p_value"]), reason,
        ])
    hidden = len(comparison.rows) - len(_selected(comparison, show_unchanged))
    legend = "  ".join(f"{m} {name}" for m, name in MARKS.items())
    table.note = (f"{hidden} rows not shown (unchanged, or informational): --all lists them. "
                  if hidden else "") + legend
    return table


def summary_lines(comparison: Comparison) -> list[str]:
    """The verdict and what could not be compared, as short lines."""
    lines = [comparison.summary()]
    for target, diffs in comparison.environment_diffs.items():
        what = ", ".join(f"{k}: {a} -> {b}" for k, (a, b) in diffs.items())
        lines.append(f"{target}: not comparable, environment differs ({what})")
    for target in comparison.missing_targets:
        lines.append(f"{target}: not in the baseline, nothing to compare with")
    for target in comparison.absent_targets:
        lines.append(f"{target}: in the baseline but not in this run")
    lines.append(f"regression = Mann-Whitney p < {comparison.alpha:g} and shift beyond the "
                 "per-metric decision point (see harness/compare.py)")
    return lines


def render_rich(comparison: Comparison, console: Console, *, title: str = "Comparison with the "
                "baseline", show_unchanged: bool = False) -> None:
    """Print the comparison: summary lines, then the table with coloured marks."""
    table = comparison_table(comparison, title, show_unchanged)
    out = RichTable(title=table.title, title_justify="left", header_style="bold")
    for column in table.columns:
        out.add_column(column, justify="right" if column in ("threads", "baseline", "current",
                                                            "change", "p") else "left",
                       overflow="fold")
    for row in table.rows:
        out.add_row(*row, style=MARK_STYLE.get(row[0]))
    out.caption = table.note
    lines = summary_lines(comparison)
    console.print(lines[0], style="bold red" if comparison.regressed else "bold green")
    for line in lines[1:]:
        console.print(line, style="dim")
    if table.rows:
        console.print(out)
    else:
        console.print(f"{table.title}: nothing to list. {table.note}", style="dim")


def to_markdown(comparison: Comparison, *, title: str = "Comparison with the baseline",
                show_unchanged: bool = False) -> str:
    """The comparison as Markdown (summary bullets + one table)."""
    from harness.report.markdown import table_md

    table = comparison_table(comparison, title, show_unchanged)
    lines = [f"# {title}", ""] + [f"- {line}" for line in summary_lines(comparison)] + [""]
    return "\n".join(lines) + "\n" + table_md(table)


def to_csv(comparison: Comparison) -> str:
    """Every compared row with every column (the tidy comparison table)."""
    return comparison.rows.to_csv(index=False)
