"""The report model: pivots of the tidy table into titled tables. Exporters only render these."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import pandas as pd


@dataclass
class Table:
    """One titled table of display strings."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    note: str | None = None


@dataclass
class Report:
    """Everything a report shows, in order."""

    title: str
    summary: list[str]
    tables: list[Table]


def fmt(value: Any, digits: int = 3) -> str:
    """Display a number compactly; NaN/None as '-', inf as 'inf'."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "-"
    if isinstance(value, float):
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def _size(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value / 1024:,.1f} KiB" if value < 1024 ** 2 else f"{value / 1024 ** 2:,.2f} MiB"


def _ok(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["status"] == "ok"]


def latency_table(frame: pd.DataFrame, target: str) -> Table:
    """model, variant, threads, median/p90/p99 ms, n, validity, delegate coverage, size."""
    data = frame[frame["target"] == target]
    lat = _ok(data[data["measurement"] == "latency"])
    sizes = _ok(data[(data["measurement"] == "size")]).drop_duplicates(["model", "variant"])
    size_of = {(r.model, r.variant): r.value for r in sizes.itertuples()}
    table = Table(f"Latency on {target}", ["model", "variant", "runtime", "threads", "median ms",
                                            "p90 ms", "p99 ms", "n", "valid", "delegate", "size"])
    if not lat.empty:
        wide = lat.pivot_table(index=["model", "variant", "runtime", "threads"], columns="metric",
                               values="value", aggfunc="first", sort=False)
        meta = lat.drop_duplicates(["model", "variant", "runtime", "threads"]).set_index(
            ["model", "variant", "runtime", "threads"])
        for key, values in wide.iterrows():
            info = meta.loc[key]
            coverage = (f"{info['delegate']} {fmt(info['delegated_nodes'])} node, "
                        f"{fmt(info['undelegated_ops'])} undelegated"
                        if isinstance(info["delegate"], str) else "-")
            valid = "yes" if info["valid"] in (True, "True") else f"no: {info['hint']}"
            table.rows.append([key[0], key[1], str(key[2]), str(key[3]), fmt(values.get("median_ms")),
                               fmt(values.get("p90_ms")), fmt(values.get("p99_ms")), fmt(info["n"]),
                               valid, coverage, _size(size_of.get((key[0], key[1])))])
    return table


def failures_table(frame: pd.DataFrame) -> Table:
    """Everything that failed or was skipped, with its reason."""
    bad = frame[frame["status"] != "ok"].drop_duplicates(
        ["target", "model", "variant", "runtime", "measurement", "error_kind", "message"])
    table = Table("Failed or skipped", ["target", "model", "variant", "status", "kind", "phase",
                                        "reason"])
    for r in bad.itertuples():
        table.rows.append([fmt(r.target), fmt(r.model), fmt(r.variant), r.status, fmt(r.error_kind),
                           fmt(r.phase), fmt(r.message)])
    return table


def metric_table(frame: pd.DataFrame, measurement: str, title: str,
                 index: list[str], metric_order: list[str] | None = None,
                 cell: Callable[[Any], str] = fmt) -> Table | None:
    """A generic pivot: one row per index, one column per metric."""
    data = _ok(frame[frame["measurement"] == measurement])
    if data.empty:
        return None
    wide = data.pivot_table(index=index, columns="metric", values="value", aggfunc="first",
                            sort=False, dropna=False)
    metrics = [m for m in (metric_order or list(wide.columns)) if m in wide.columns]
    table = Table(title, index + metrics)
    for key, values in wide.iterrows():
        key = key if isinstance(key, tuple) else (key,)
        table.rows.append([fmt(k) for k in key] + [cell(values.get(m)) for m in metrics])
    return table


def build_report(frame: pd.DataFrame, meta: dict[str, Any]) -> Report:
    """The whole report of one run."""
    targets = [t for t in dict.fromkeys(frame["target"].dropna()) if isinstance(t, str)]
    ok = int((frame["status"] == "ok").sum())
    failed = int((frame["status"] == "failed").sum())
    summary = [f"run {meta.get('run_id', '?')} · suite {meta.get('suite', {}).get('name', '?')} · "
               f"targets {', '.join(targets)} · {ok} values, {failed} failures"]
    for name, env in (meta.get("environment") or {}).items():
        runtimes = ", ".join(f"{k} {v}" for k, v in (env.get("runtimes") or {}).items())
        summary.append(f"{name}: {env.get('arch', '?')} · {env.get('cpu_model', '?')} · "
                       f"{env.get('cores', '?')} cores · governor {env.get('governor') or 'n/a'} · "
                       f"Python {env.get('python', '?')} · {runtimes or 'no runtime'}")
    tables = [latency_table(frame, target) for target in targets]
    extra = [
        metric_table(frame, "accuracy", "Accuracy on held-out data",
                     ["target", "model", "variant", "runtime"]),
        metric_table(frame, "memory", "Memory", ["target", "model", "variant", "runtime"]),
    ]
    tables += [t for t in extra if t is not None]
    failures = failures_table(frame)
    if failures.rows:
        tables.append(failures)
    return Report(f"harness report: {meta.get('suite', {}).get('name', '')}", summary, tables)
