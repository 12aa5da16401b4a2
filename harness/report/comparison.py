"""Render a comparison with a baseline or another run (Rich, Markdown, CSV); display only.

A pivot of the comparison frame made by `harness.compare`.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table as RichTable

from harness.compare import MARKS, NOT_AB_TESTED, Comparison
from harness.report.model import Table, cell, fmt

MARK_STYLE = {"+": "bold red", "!": "bold red", "-": "green", "*": "green", "x": "yellow",
              "~": "dim"}
COLUMNS = ["", "target", "model", "variant", "threads", "metric", "baseline", "current", "change",
           "A/B ratio [CI], pairs", "reason"]
MAX_CHANGE_LINES = 12


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


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _ab(row: Any) -> str:
    """'1.031 [0.982, 1.083], 15 pairs' for an A/B re-measured row, else its A/B note."""
    if _missing(row["pairs"]) or _missing(row["ratio"]):
        note = str(row["ab"] or "")
        return "not tested (see reason)" if note.startswith(NOT_AB_TESTED) else note
    interval = ("" if _missing(row["ci_low"]) or _missing(row["ci_high"])
                else f" [{row['ci_low']:.3f}, {row['ci_high']:.3f}]")
    return f"{row['ratio']:.3f}{interval}, {int(row['pairs'])} pairs"


def _selected(comparison: Comparison, show_all: bool) -> pd.DataFrame:
    """Everything with show_all; else the counted rows that changed or wait for A/B (+ - ?),
    every A/B re-measured row, and every ! * x row."""
    rows = comparison.rows
    if show_all:
        return rows
    changed_or_waiting = rows["counts"] & rows["mark"].isin(["+", "-", "?"])
    keep = rows["mark"].isin(["!", "*", "x"]) | changed_or_waiting | rows["pairs"].notna()
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
            _change(row), _ab(row), reason,
        ])
    hidden = len(comparison.rows) - len(_selected(comparison, show_unchanged))
    legend = "  ".join(f"{m} {name}" for m, name in MARKS.items())
    table.note = (f"{hidden} rows not shown (unchanged, or informational): --all lists them. "
                  if hidden else "") + legend
    return table


def ab_tested_line(comparison: Comparison) -> str | None:
    """Which latency rows were A/B-tested, with their marks (None: none was)."""
    rows = comparison.rows
    tested = rows[rows["ab"].astype(str).str.startswith("A/B")]
    if tested.empty:
        return None
    names = [f"{r.target} {r.model}/{r.variant} {r.threads}t {r.mark}"
             for r in tested.itertuples()]
    more = len(names) - MAX_CHANGE_LINES
    return (f"A/B-tested: {', '.join(names[:MAX_CHANGE_LINES])}"
            + (f" and {more} more" if more > 0 else ""))


def what_changed(comparison: Comparison) -> list[str]:
    """What is under test, next to the verdict: new artifacts (sha256) per model/variant, runtime
    versions, environment and harness changes per target (from the rows' `changed` column)."""
    artifacts: dict[str, set[str]] = {}
    per_target: dict[str, list[str]] = {}
    for record in comparison.rows[comparison.rows["changed"] != ""].to_dict("records"):
        target = record["target"] if isinstance(record["target"], str) and record["target"] \
            else "build"          # rows of the artifact itself (quantization statistics)
        for item in str(record["changed"]).split("; "):
            if item.startswith("artifact "):
                artifacts.setdefault(f"{record['model']}/{record['variant']} "
                                     f"{item.removeprefix('artifact ')}", set()).add(target)
            elif item and item not in per_target.setdefault(target, []):
                per_target[target].append(item)
    lines = [f"changed: artifact {name} ({', '.join(sorted(targets))})"
             for name, targets in sorted(artifacts.items())]
    if len(lines) > MAX_CHANGE_LINES:
        rest = len(lines) - MAX_CHANGE_LINES
        lines = lines[:MAX_CHANGE_LINES] + [f"changed: ... {rest} more artifacts (compare.csv "
                                            "column `changed`)"]
    lines += [f"changed on {target}: {', '.join(items)}"
              for target, items in sorted(per_target.items()) if items]
    return lines


def summary_lines(comparison: Comparison) -> list[str]:
    """The verdict, what changed, what the A/B re-measurement did, and what could not be
    compared, as short lines."""
    lines = [comparison.summary()]
    lines += what_changed(comparison)
    lines += list(comparison.notes)
    if (tested := ab_tested_line(comparison)) is not None:
        lines.append(tested)
    for target in comparison.missing_targets:
        lines.append(f"{target}: not in the baseline, nothing to compare with")
    for target in comparison.absent_targets:
        lines.append(f"{target}: in the baseline but not in this run")
    lines.append("exit 1 on a counted + (a deterministic metric beyond its threshold, or latency "
                 f"REGRESSED by A/B at alpha {comparison.alpha:g}) or a !; ? is reported and "
                 "does not fail (docs/nightly.md)")
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
