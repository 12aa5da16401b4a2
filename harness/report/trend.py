"""Render the history trend table (series x runs; Rich, Markdown); display only.

A pivot of the long trend frame made by `harness.results.history.History.trend`.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table as RichTable

from harness.report.model import Table, cell, fmt


def trend_pivot(trend: pd.DataFrame) -> pd.DataFrame:
    """Series as rows, runs as columns (oldest first), values as cells; failures as 'failed'."""
    if trend.empty:
        return pd.DataFrame()
    data = trend.copy()

    def series(r: Any) -> str:
        key = f" [{r.key}]" if isinstance(r.key, str) and r.key else ""
        parts = (cell(r.target), cell(r.model), cell(r.variant),
                 "" if pd.isna(r.threads) else f"t{r.threads}", cell(r.metric) + key)
        return " / ".join(p for p in parts if p and p not in ("None", "nan"))

    data["series"] = [series(r) for r in data.itertuples()]
    data["cell"] = [("failed: " + str(r.error_kind or "")) if r.status not in (None, "ok")
                    else fmt(r.value, 4) for r in data.itertuples()]
    order = list(dict.fromkeys(data["run_id"]))
    pivot = data.pivot_table(index="series", columns="run_id", values="cell", aggfunc="first")
    return pivot.reindex(columns=order).fillna("")


def render_trend(trend: pd.DataFrame, console: Console, *, title: str = "History") -> None:
    """Print the trend table (series x runs) with Rich."""
    pivot = trend_pivot(trend)
    if pivot.empty:
        console.print("history: no runs match", style="yellow")
        return
    started = dict(zip(trend["run_id"], trend["started"]))
    out = RichTable(title=title, title_justify="left", header_style="bold")
    out.add_column("series", overflow="fold")
    for run_id in pivot.columns:
        out.add_column(f"{run_id}\n{str(started.get(run_id, ''))[:16]}", justify="right")
    for series, row in pivot.iterrows():
        out.add_row(series, *[str(v) for v in row])
    console.print(out)


def trend_markdown(trend: pd.DataFrame, *, title: str = "History") -> str:
    """The trend table as Markdown."""
    from harness.report.markdown import table_md

    pivot = trend_pivot(trend)
    table = Table(title, ["series"] + [str(c) for c in pivot.columns])
    for series, row in pivot.iterrows():
        table.rows.append([str(series)] + [str(v) for v in row])
    return table_md(table)
