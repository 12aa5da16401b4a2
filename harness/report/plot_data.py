"""The numbers each HTML plot shows: pivots of the tidy table into plain records.

Reports never recompute statistics: every value here is a row of the tidy table (results.csv),
picked and reshaped. The only derived things are display decisions: which points lie on the
accuracy-latency Pareto front, and grouping node types beyond the top few as "other" (a sum of
stored per-type times). The same records are drawn by `harness.report.plots` and embedded as JSON
in the HTML page, so what a reader (or a test) sees can be checked against results.csv.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

FLOAT_VARIANT = "convert_only"
LATENCY_BAND = ("min_ms", "p90_ms")  # results.csv stores min/median/p90/p99 (no p10)
PARETO_ACCURACY = ("mae", "W", "lower")  # metric, unit, which way is better
TOP_NODE_TYPES = 9
COMPARISON_COLUMNS = ["target", "model", "variant", "threads", "metric", "ratio", "ci_low",
                      "ci_high", "threshold", "decision"]
SERIES_KEY = ["target", "model", "variant", "threads", "metric"]
SERIES_COLUMNS = ["run_id", "timestamp"] + SERIES_KEY + ["value"]


def _clean(value: Any) -> Any:
    """A JSON-safe scalar: NaN/NA -> None, numpy scalars -> Python."""
    if value is None or value is pd.NA:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _threads(value: Any) -> int | None:
    value = _clean(value)
    return None if value is None else int(value)


def _is_valid(value: Any) -> bool | None:
    """The validity verdict as read from a frame or a CSV (bool, 'True'/'False', or empty)."""
    value = _clean(value)
    if value is None:
        return None
    if isinstance(value, str):
        return {"true": True, "false": False}.get(value.strip().lower())
    return bool(value)


def _ok(frame: pd.DataFrame, measurement: str | list[str]) -> pd.DataFrame:
    wanted = [measurement] if isinstance(measurement, str) else measurement
    return frame[(frame["status"] == "ok") & frame["measurement"].isin(wanted)]


# --------------------------------------------------------------------------- latency

def latency_points(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """One record per target × model × variant × runtime × method × threads with a median.

    Keys: target, model, variant, runtime, method, threads, median_ms, min_ms, p90_ms, p99_ms, n,
    valid, hint. Rows without a stored median (e.g. benchmark_model's mean-only summaries) are left
    out rather than shown as something they are not.
    """
    data = _ok(frame, "latency")
    index = ["target", "model", "variant", "runtime", "method", "threads"]
    points: list[dict[str, Any]] = []
    for key, group in data.groupby(index, sort=False, dropna=False):
        values = dict(zip(group["metric"], group["value"]))
        if _clean(values.get("median_ms")) is None:
            continue
        first = group.iloc[0]
        record = dict(zip(index, (_clean(k) for k in key)))
        record["threads"] = _threads(record["threads"])
        record.update({m: _clean(values.get(m)) for m in ("median_ms", "min_ms", "p90_ms",
                                                           "p99_ms")})
        record.update(n=_threads(first["n"]), valid=_is_valid(first["valid"]),
                      hint=_clean(first["hint"]))
        points.append(record)
    return points


# --------------------------------------------------------------------------- Pareto

def _pareto_front(points: list[dict[str, Any]]) -> None:
    """Mark points no other point beats on both latency and accuracy (both minimised here)."""
    for p in points:
        p["on_front"] = not any(
            q is not p and q["median_ms"] <= p["median_ms"] and q["accuracy"] <= p["accuracy"]
            and (q["median_ms"] < p["median_ms"] or q["accuracy"] < p["accuracy"])
            for q in points)


def pareto_points(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Per target × model × variant × runtime: accuracy (MAE) against median latency.

    Latency is the runner's median at the lowest measured thread count. Keys: target, model,
    variant, runtime, threads, median_ms, accuracy (the MAE value), accuracy_metric, f1,
    size_bytes, is_float, on_front (within its target × model panel).
    """
    metric, _, _ = PARETO_ACCURACY
    latency = [p for p in latency_points(frame) if p["method"] in ("runner", None)]
    accuracy = _ok(frame, "accuracy")
    acc = {(r.target, r.model, r.variant, r.runtime if isinstance(r.runtime, str) else None,
            r.metric): r.value for r in accuracy.itertuples()}
    sizes = _ok(frame, "size")
    size = {(r.target, r.model, r.variant): r.value
            for r in sizes[sizes["metric"] == "size_bytes"].itertuples()}
    chosen: dict[tuple, dict[str, Any]] = {}
    for p in latency:
        key = (p["target"], p["model"], p["variant"], p["runtime"])
        known = chosen.get(key)
        lowest = known is None or (p["threads"] or 0) < (known["threads"] or 0)
        if lowest:
            chosen[key] = p
    points: list[dict[str, Any]] = []
    for key, p in chosen.items():
        value = _clean(acc.get(key + (metric,)))
        if value is None:
            continue
        points.append({"target": key[0], "model": key[1], "variant": key[2], "runtime": key[3],
                       "threads": p["threads"], "median_ms": p["median_ms"], "accuracy": value,
                       "accuracy_metric": metric, "f1": _clean(acc.get(key + ("f1",))),
                       "size_bytes": _clean(size.get(key[:3])),
                       "is_float": key[2] == FLOAT_VARIANT})
    for target_model in dict.fromkeys((p["target"], p["model"]) for p in points):
        _pareto_front([p for p in points if (p["target"], p["model"]) == target_model])
    return points


# --------------------------------------------------------------------------- per-op profile

def profile_bars(frame: pd.DataFrame) -> dict[str, Any]:
    """Per target × model × variant × method: time per node type, whole model, sum/whole ratio.

    Returns {"types": [node types in legend order, maybe "other"], "bars": [{target, model,
    variant, method, threads, whole_ms, sum_op_ms, ratio, types: {type: ms}}]}. Node types beyond
    the TOP_NODE_TYPES largest (over all bars) are summed into "other".
    """
    data = _ok(frame, "profile")
    index = ["target", "model", "variant", "method"]
    bars: list[dict[str, Any]] = []
    totals: dict[str, float] = {}
    for key, group in data.groupby(index, sort=False, dropna=False):
        whole = {r.metric: r.value for r in group[group["key"].isna()].itertuples()}
        types = group[group["metric"] == "type_ms"]
        by_type = {str(r.key): float(r.value) for r in types.itertuples()
                   if _clean(r.value) is not None}
        if not by_type:
            continue
        for name, ms in by_type.items():
            totals[name] = totals.get(name, 0.0) + ms
        threads = group["threads"].dropna()
        bars.append(dict(zip(index, (_clean(k) for k in key)),
                         threads=_threads(threads.iloc[0]) if len(threads) else None,
                         whole_ms=_clean(whole.get("whole_ms")),
                         sum_op_ms=_clean(whole.get("sum_op_ms")),
                         ratio=_clean(whole.get("sum_vs_whole_ratio")), types=by_type))
    order = sorted(totals, key=totals.get, reverse=True)
    shown = order[:TOP_NODE_TYPES] if len(order) > TOP_NODE_TYPES + 1 else order
    if len(shown) < len(order):
        for bar in bars:
            rest = {k: v for k, v in bar["types"].items() if k not in shown}
            bar["types"] = {k: v for k, v in bar["types"].items() if k in shown}
            if rest:
                bar["types"]["other"] = sum(rest.values())
        shown = shown + ["other"]
    return {"types": shown, "bars": bars}


# --------------------------------------------------------------------------- memory

def memory_bars(frame: pd.DataFrame, meta: dict[str, Any]) -> list[dict[str, Any]]:
    """Per target × model × variant: size on disk, RSS footprint, TFLM arena, board RAM.

    Keys: target, model, variant, size_bytes, rss_footprint_mb, tflm_arena_bytes, ram_kb (from
    meta["inventory"][target]["ram_kb"], None when the inventory has none).
    """
    data = _ok(frame, ["memory", "size"])
    inventory = meta.get("inventory") or {}
    records: list[dict[str, Any]] = []
    for key, group in data.groupby(["target", "model", "variant"], sort=False):
        values = {r.metric: r.value for r in group.itertuples()}
        record = dict(zip(["target", "model", "variant"], key))
        record.update({m: _clean(values.get(m)) for m in ("size_bytes", "rss_footprint_mb",
                                                           "tflm_arena_bytes")})
        record["ram_kb"] = _clean((inventory.get(key[0]) or {}).get("ram_kb"))
        if any(record[m] is not None for m in ("size_bytes", "rss_footprint_mb",
                                               "tflm_arena_bytes")):
            records.append(record)
    return records


# --------------------------------------------------------------------------- comparison, history

def comparison_rows(comparison: pd.DataFrame) -> list[dict[str, Any]]:
    """The comparison frame (COMPARISON_COLUMNS) as records, validated."""
    missing = [c for c in COMPARISON_COLUMNS if c not in comparison.columns]
    if missing:
        raise ValueError(f"comparison frame lacks columns {missing}; expected {COMPARISON_COLUMNS}")
    records = []
    for row in comparison[COMPARISON_COLUMNS].itertuples(index=False):
        record = {c: _clean(v) for c, v in zip(COMPARISON_COLUMNS, row)}
        record["threads"] = _threads(record["threads"])
        record["decision"] = str(record["decision"] or "UNKNOWN").upper()
        records.append(record)
    return records


def series_from_trend(trend: pd.DataFrame) -> pd.DataFrame:
    """`History.trend(...)` output to the series frame `render_history_html` takes (ok rows)."""
    ok = trend[trend["status"].fillna("ok") == "ok"] if "status" in trend.columns else trend
    out = ok.rename(columns={"started": "timestamp"})
    return out[SERIES_COLUMNS].reset_index(drop=True)


def history_series(series: pd.DataFrame,
                   change_points: list[tuple[tuple, str]]) -> list[dict[str, Any]]:
    """One record per series: key fields, runs [{run_id, timestamp, value, change_point}]."""
    missing = [c for c in SERIES_COLUMNS if c not in series.columns]
    if missing:
        raise ValueError(f"history frame lacks columns {missing}; expected {SERIES_COLUMNS}")
    marked = {(tuple(_clean(k) for k in key), run_id) for key, run_id in change_points}
    records = []
    for key, group in series.groupby(SERIES_KEY, sort=False, dropna=False):
        key = tuple(_threads(k) if name == "threads" else _clean(k)
                    for name, k in zip(SERIES_KEY, key))
        runs = [{"run_id": r.run_id, "timestamp": _clean(r.timestamp), "value": _clean(r.value),
                 "change_point": (key, r.run_id) in marked}
                for r in group.sort_values(["timestamp", "run_id"]).itertuples()]
        records.append(dict(zip(SERIES_KEY, key), runs=runs))
    return records


def targets_of(frame: pd.DataFrame) -> list[str]:
    """Targets in the order they first appear."""
    return [t for t in dict.fromkeys(frame["target"].dropna()) if isinstance(t, str)]
