"""The history trend: series over runs, their change points, rendered with Rich or Markdown.

A pivot of the long trend frame made by `harness.results.history.History.trend`. Change points
are found here, at display time, by running `harness.changepoints.change_points` (Apache Otava)
over each series shown; the table marks the run where a series moved to a new level (▲ up,
▼ down) and a line per change point gives the levels before and after.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table as RichTable

from harness.changepoints import ChangePoint, change_points
from harness.report.model import Table, cell, fmt
from harness.report.plot_data import SERIES_KEY, series_key, trend_series

# the smallest level shift marked: half the default 10 % latency threshold (harness.changepoints)
MIN_CHANGE = 0.05
UP, DOWN = "▲", "▼"


@dataclass(frozen=True)
class SeriesChange:
    """A change point of one series: key = (target, model, variant, threads, metric)."""

    key: tuple
    point: ChangePoint

    @property
    def run_id(self) -> str:
        return self.point.run_id

    @property
    def arrow(self) -> str:
        return UP if self.point.after_mean >= self.point.before_mean else DOWN

    def describe(self) -> str:
        """One line: which series, at which run, the levels before and after."""
        p = self.point
        change = "" if pd.isna(p.relative_change) else f" ({p.relative_change * 100:+.1f} %)"
        when = f" ({str(p.timestamp)[:16].replace('T', ' ')})" if p.timestamp else ""
        return (f"{self.arrow} {_label(self.key)}: change point at run {p.run_id}{when}: "
                f"{fmt(p.before_mean, 4)} -> {fmt(p.after_mean, 4)}{change}, "
                f"p = {p.p_value:.2g}")


def _label(key: tuple) -> str:
    target, model, variant, threads, metric = key
    parts = (target, model, variant, None if threads is None else f"t{threads}", metric)
    return " / ".join(str(p) for p in parts if p not in (None, ""))


def find_change_points(series: pd.DataFrame, *,
                       min_change: float = MIN_CHANGE) -> list[SeriesChange]:
    """The change points of every series in a series frame (`plot_data.series_from_trend`).

    `min_change`: the smallest relative shift kept (Otava's `min_magnitude`).
    """
    found: list[SeriesChange] = []
    for key, group in series.groupby(SERIES_KEY, sort=False, dropna=False):
        ordered = group.sort_values(["timestamp", "run_id"])
        points = change_points(list(zip(ordered["run_id"], ordered["timestamp"],
                                        ordered["value"])), min_magnitude=min_change)
        found += [SeriesChange(series_key(key), p) for p in points]
    return found


def mark_change_points(trend: pd.DataFrame, changes: list[SeriesChange]) -> pd.DataFrame:
    """The trend frame with a `change_point` column: ▲ or ▼ where a series changed level."""
    arrows = {(c.key, c.run_id): c.arrow for c in changes}
    marked = trend.copy()
    marked["change_point"] = ""
    series = trend_series(trend)
    for index, row in series.iterrows():
        arrow = arrows.get((series_key(row[SERIES_KEY]), row["run_id"]))
        if arrow:
            marked.loc[index, "change_point"] = arrow
    return marked


def trend_pivot(trend: pd.DataFrame) -> pd.DataFrame:
    """Series as rows, runs as columns (oldest first), values as cells; failures as 'failed';
    a value where its series changed level carries the `change_point` arrow."""
    if trend.empty:
        return pd.DataFrame()
    data = trend.copy()

    def series(r: Any) -> str:
        key = f" [{r.key}]" if isinstance(r.key, str) and r.key else ""
        parts = (cell(r.target), cell(r.model), cell(r.variant),
                 "" if pd.isna(r.threads) else f"t{r.threads}", cell(r.metric) + key)
        return " / ".join(p for p in parts if p and p not in ("None", "nan"))

    arrows = data["change_point"] if "change_point" in data.columns else [""] * len(data)
    data["series"] = [series(r) for r in data.itertuples()]
    data["cell"] = [("failed: " + str(r.error_kind or "")) if r.status not in (None, "ok")
                    else fmt(r.value, 4) + (f" {arrow}" if arrow else "")
                    for r, arrow in zip(data.itertuples(), arrows)]
    order = list(dict.fromkeys(data["run_id"]))
    pivot = data.pivot_table(index="series", columns="run_id", values="cell", aggfunc="first")
    return pivot.reindex(columns=order).fillna("")


def render_trend(trend: pd.DataFrame, console: Console, *, title: str = "History",
                 changes: list[SeriesChange] | None = None) -> None:
    """Print the trend table (series x runs) with Rich, then one line per change point."""
    pivot = trend_pivot(mark_change_points(trend, changes or []))
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
    for change in changes or []:
        console.print(change.describe(), style="bold red" if change.arrow == UP else "green",
                      highlight=False)
    if changes is not None and not changes:
        console.print("no change points in these series", style="dim")


def trend_markdown(trend: pd.DataFrame, *, title: str = "History",
                   changes: list[SeriesChange] | None = None) -> str:
    """The trend table as Markdown, then a list of the change points."""
    from harness.report.markdown import table_md

    pivot = trend_pivot(mark_change_points(trend, changes or []))
    table = Table(title, ["series"] + [str(c) for c in pivot.columns])
    for series, row in pivot.iterrows():
        table.rows.append([str(series)] + [str(v) for v in row])
    text = table_md(table)
    if changes:
        text += "\n### Change points\n\n" + "".join(f"- {c.describe()}\n" for c in changes)
    return text
