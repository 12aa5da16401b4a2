"""The report model: pivots of the tidy table into titled tables. Exporters only render these."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from harness.report import front as fronts_


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


def cell(value: Any) -> str:
    """A display string; empty for None, NA and NaN."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def _size(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value / 1024:,.1f} KiB" if value < 1024 ** 2 else f"{value / 1024 ** 2:,.2f} MiB"


def _ok(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["status"] == "ok"]


def _wide(data: pd.DataFrame, index: list[str]) -> pd.DataFrame:
    """One row per observed index combination, one column per metric (NaN values kept)."""
    wide = data.pivot_table(index=index, columns="metric", values="value", aggfunc="first",
                            sort=False, dropna=False)
    observed = pd.MultiIndex.from_frame(data[index].drop_duplicates())
    return wide[wide.index.isin(observed)]


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


ACCURACY_ORDER = ["mae", "sae", "nde", "epd", "epd_e", "acc", "f1", "mcc"]
FLOAT_VARIANT = "convert_only"


def accuracy_table(frame: pd.DataFrame) -> Table | None:
    """Accuracy metrics per target × model × variant (the NILM ones first, in their usual order),
    each with its delta against the float model."""
    data = _ok(frame[frame["measurement"] == "accuracy"])
    if data.empty:
        return None
    index = ["target", "model", "variant", "runtime"]
    wide = _wide(data, index)
    metrics = [m for m in ACCURACY_ORDER if m in wide.columns] + [
        m for m in wide.columns if m not in ACCURACY_ORDER]
    table = Table("Accuracy on held-out data (Δ vs float on the same target)", index + metrics)
    for key, values in wide.iterrows():
        reference = (key[0], key[1], FLOAT_VARIANT, key[3])
        base = wide.loc[reference] if key[2] != FLOAT_VARIANT and reference in wide.index else None
        cells = []
        for metric in metrics:
            cell = fmt(values.get(metric))
            now, then = values.get(metric), None if base is None else base.get(metric)
            if then is not None and all(math.isfinite(v) for v in (now, then)):
                cell += f" ({now - then:+.3g})"
            cells.append(cell)
        table.rows.append([fmt(k) for k in key] + cells)
    return table


TOP_OPS = 5
WORST_LAYERS = 4


def quant_error_table(frame: pd.DataFrame) -> Table | None:
    """Per full-integer model: layers, suspected layers (RMSE/scale over the threshold), worst ones."""
    data = _ok(frame[frame["measurement"] == "quant_error"])
    if data.empty:
        return None
    table = Table("Quantization efficacy (QuantizationDebugger, RMSE/scale; ≈0.29 is ideal)",
                  ["model", "variant", "layers", "suspected", "median RMSE/scale",
                   "worst layers (RMSE/scale)"])
    for (model, variant), group in data.groupby(["model", "variant"], sort=False):
        layers = group[group["metric"] == "rmse_scale"].sort_values("value", ascending=False)
        suspected = group[group["metric"] == "suspected_layers"]["value"]
        worst = ", ".join(f"{r.node_type} {r.key.split(';')[0][-40:]} {r.value:.2f}"
                          + (" (suspected)" if r.valid is False else "")
                          for r in layers.head(WORST_LAYERS).itertuples())
        table.rows.append([model, variant, str(len(layers)),
                           fmt(suspected.iloc[0]) if len(suspected) else "-",
                           fmt(layers["value"].median()), worst or "-"])
    return table



def profile_tables(frame: pd.DataFrame) -> list[Table]:
    """Per model × variant: whole vs sum of ops, the top operators, and time by node type."""
    data = _ok(frame[frame["measurement"] == "profile"])
    if data.empty:
        return []
    summary = Table("Per-op profile: whole model vs sum of operators",
                    ["target", "model", "variant", "method", "threads", "whole ms", "sum of ops ms",
                     "sum/whole", "top operators (% of op time)"])
    types = Table("Per-op profile: time by node type",
                  ["target", "model", "variant", "method", "node type", "nodes", "ms", "%"])
    keys = ["target", "model", "variant", "method"]
    for key, group in data.groupby(keys, sort=False, dropna=False):
        metric = {m: v for m, v in group[group["key"].isna()][["metric", "value"]].itertuples(
            index=False)}
        nodes = group[group["metric"] == "node_pct"].sort_values("value", ascending=False)
        top = ", ".join(f"{r.node_type} {r.value:.0f}%" for r in nodes.head(TOP_OPS).itertuples())
        threads = fmt(group["threads"].dropna().iloc[0]) if group["threads"].notna().any() else "-"
        summary.rows.append([fmt(k) for k in key] + [
            threads, fmt(metric.get("whole_ms")), fmt(metric.get("sum_op_ms")),
            fmt(metric.get("sum_vs_whole_ratio")), top or "-"])
        by_type = group[group["metric"].isin(["type_ms", "type_pct", "type_count"])].pivot_table(
            index="key", columns="metric", values="value", aggfunc="first")
        if "type_ms" in by_type:
            for node_type, values in by_type.sort_values("type_ms", ascending=False).iterrows():
                types.rows.append([fmt(k) for k in key] + [
                    str(node_type), fmt(values.get("type_count")), fmt(values.get("type_ms")),
                    fmt(values.get("type_pct"))])
    return [summary, types]


MEMORY_COLUMNS = [("size_bytes", "size", _size), ("parameter_count", "params", fmt),
                  ("rss_footprint_mb", "RSS footprint MB", fmt), ("init_ms", "init ms", fmt),
                  ("tflm_arena_bytes", "TFLM arena", _size), ("mcu_fits", "fits MCU", None),
                  ("ram_margin_bytes", "RAM margin", _size),
                  ("flash_margin_bytes", "flash margin", _size)]


def memory_table(frame: pd.DataFrame) -> Table | None:
    """Size on disk, parameters, RSS footprint, init time, TFLM arena and whether it fits."""
    data = _ok(frame[frame["measurement"].isin(["memory", "size"])])
    if data.empty:
        return None
    index = ["target", "model", "variant"]
    wide = _wide(data, index)
    present = [c for c in MEMORY_COLUMNS if c[0] in wide.columns]
    table = Table("Memory and size", index + [title for _, title, _ in present])
    for key, values in wide.iterrows():
        cells = []
        for metric, _, render in present:
            value = values.get(metric)
            if render is None:  # a yes/no verdict
                cells.append("-" if pd.isna(value) else ("yes" if value else "no"))
            else:
                cells.append(render(value))
        table.rows.append([fmt(k) for k in key] + cells)
    return table


def _threads_title(threads: int | None) -> str:
    return "median ms (no thread count)" if threads is None else f"median ms @{threads}t"


def front_table(front: fronts_.Front) -> Table:
    """The variants of one model on one target: accuracy (and its Δ vs float), size, gzip size,
    median latency per thread count, TFLM arena, board fit, and whether each is Pareto-optimal."""
    gzip = any(p.gzip_bytes is not None for p in front.points)
    arena = any(p.arena_bytes is not None for p in front.points)
    board = front.ram_kb is not None or front.flash_kb is not None
    unit = f" ({front.unit})" if front.unit else ""
    columns = ["variant", f"{front.metric}{unit}", "Δ vs float", "size"] + (
        ["gzip size"] if gzip else []) + [_threads_title(t) for t in front.thread_counts] + (
        ["TFLM arena"] if arena else []) + (["fits board"] if board else []) + ["Pareto"]
    direction = "higher" if front.higher_is_better else "lower"
    threads = ("its median without a thread count" if front.front_threads is None else
               f"the {front.front_threads}-thread median")
    table = Table(f"Accuracy–size–latency front: {front.model} on {front.target}", columns,
                  note=f"Pareto: {front.metric} ({direction} is better), size on disk and "
                       f"{threads}, all three from the stored rows; a variant is off the front "
                       "when another is at least as good on all three and better on one (exact "
                       "ties stay on it); a variant missing one of the three is not judged "
                       "(n/a).")
    for p in front.points:
        if p.pareto is None:
            missing = [name for name, v in (("accuracy", p.accuracy), ("size", p.size_bytes),
                                            ("latency", p.front_latency_ms)) if v is None]
            pareto = f"n/a: no {', '.join(missing)}"
        elif p.pareto:
            pareto = "yes"
        else:
            pareto = f"no (beaten by {', '.join(p.beaten_by)})"
        delta = "-" if p.accuracy_delta is None else f"{p.accuracy_delta:+.3g}"
        if p.variant == fronts_.FLOAT_VARIANT:
            delta = "float"
        cells = [p.label, fmt(p.accuracy, 4), delta, _size(p.size_bytes)]
        cells += [_size(p.gzip_bytes)] if gzip else []
        cells += [fmt(p.latency_ms.get(t)) for t in front.thread_counts]
        cells += [_size(p.arena_bytes)] if arena else []
        if board:
            cells.append("-" if p.fits is None and not p.fit_reason else
                         f"{'yes' if p.fits else 'no' if p.fits is False else '?'}"
                         f" ({p.fit_reason})")
        table.rows.append(cells + [pareto])
    return table


def recommendation_table(front: fronts_.Front) -> Table:
    """The picks computed from one front, then the findings (e.g. a variant saving no flash)."""
    table = Table(f"Recommendation: {front.model} on {front.target}", ["pick", "variant", "why"])
    for pick in front.picks:
        table.rows.append([pick.what, pick.variant or "-", pick.why])
    for finding in front.findings:
        table.rows.append(["finding", "-", finding])
    return table


def front_tables(frame: pd.DataFrame, meta: dict[str, Any]) -> list[Table]:
    """Per target × model with at least two variants with accuracy: the front, then the picks."""
    tables = []
    for front in fronts_.fronts(frame, meta):
        tables += [front_table(front), recommendation_table(front)]
    return tables


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
        accuracy_table(frame),
        quant_error_table(frame),
        memory_table(frame),
    ]
    tables += [t for t in extra if t is not None] + front_tables(frame, meta) + profile_tables(frame)
    failures = failures_table(frame)
    if failures.rows:
        tables.append(failures)
    return Report(f"harness report: {meta.get('suite', {}).get('name', '')}", summary, tables)
