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
LATENCY_BAND = ("p10_ms", "p90_ms")  # the band around each median; runner rows store both
LATENCY_BAND_FALLBACK = "min_ms"     # the band's low end for rows without p10 (older runs, trtexec)
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

    Keys: target, model, variant, runtime, method, threads, median_ms, p10_ms, min_ms, p90_ms,
    p99_ms, n, valid, hint, band_low (p10_ms, or min_ms for a row without p10: runs stored before
    p10 was recorded, or a device kind that does not store it) and band_low_metric (which one).
    Rows without a stored median (e.g. benchmark_model's mean-only summaries) are left out rather
    than shown as something they are not.
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
        record.update({m: _clean(values.get(m)) for m in ("median_ms", "p10_ms", "min_ms",
                                                           "p90_ms", "p99_ms")})
        low, _ = LATENCY_BAND
        if record[low] is None and record[LATENCY_BAND_FALLBACK] is not None:
            low = LATENCY_BAND_FALLBACK
        record.update(band_low=record[low], band_low_metric=low)
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

# compare.csv (harness.compare OUTPUT_COLUMNS) -> the comparison frame render_html draws
STATE_DECISIONS = {"regressed": "REGRESSED", "improved": "IMPROVED", "same": "SAME",
                   "still_failing": "SAME", "unknown": "UNKNOWN", "remeasure": "UNKNOWN"}
MARK_DECISIONS = {"+": "REGRESSED", "-": "IMPROVED", "~": "SAME", "?": "UNKNOWN"}


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    """A column of a frame read from a file, or an all-missing one when the file lacks it."""
    return frame[name] if name in frame.columns else pd.Series([None] * len(frame),
                                                               index=frame.index, dtype=object)


def _flag(value: Any, default: bool) -> bool:
    value = _clean(value)
    if value is None:
        return default
    if isinstance(value, str):
        return {"true": True, "false": False}.get(value.strip().lower(), default)
    return bool(value)


def comparison_from_csv(compare: pd.DataFrame) -> pd.DataFrame:
    """A comparison table as written to compare.csv, mapped to COMPARISON_COLUMNS.

    Read defensively (columns may be missing or added; a newer writer may add `decision`):
    - ratio: `ratio` (current / baseline: the A/B estimate when the row was re-measured); else,
      for a relative metric (`relative` not false), 1 + `change_pct` / 100 (the stored-run change)
    - ci_low, ci_high: `ci_low`, `ci_high` (the A/B interval of the ratio; empty otherwise)
    - threshold: `threshold` for a relative metric (a fraction, 0.10 = +10 %); none for an
      absolute one (its threshold is not a ratio)
    - decision: `decision` when present; else from `state` (regressed REGRESSED, improved
      IMPROVED, same and still_failing SAME, unknown and remeasure UNKNOWN); else from `mark`
      (+ REGRESSED, - IMPROVED, ~ SAME, ? UNKNOWN)
    - target, model, threads, metric (`metric [key]` for a keyed row), variant (`variant ·
      runtime` where one key was compared for several runtimes)
    Kept rows: those with a positive ratio and a decision that are either A/B-judged (an
    interval) or counted (`counts`) and not SAME: the rows a reader wants to see. Unchanged
    stored-run rows and not-comparable (x), newly failing (!) and fixed (*) rows have no ratio to
    draw; compare.md lists them.
    """
    if compare.empty:
        return pd.DataFrame(columns=COMPARISON_COLUMNS)
    records = []
    for i in compare.index:
        def get(name: str) -> Any:
            return _clean(_column(compare, name).loc[i])

        relative = _flag(get("relative"), True)
        ratio = get("ratio")
        if ratio is None and relative and get("change_pct") is not None:
            ratio = 1 + float(get("change_pct")) / 100
        decision = get("decision")
        if decision is None:
            decision = STATE_DECISIONS.get(str(get("state") or "").lower()) or \
                MARK_DECISIONS.get(str(get("mark") or ""))
        if ratio is None or ratio <= 0 or decision is None:
            continue
        decision = str(decision).upper()
        judged = get("ci_low") is not None and get("ci_high") is not None
        if not judged and (decision == "SAME" or not _flag(get("counts"), False)):
            continue
        metric = get("metric")
        if get("key"):
            metric = f"{metric} [{get('key')}]"
        records.append(dict(target=get("target"), model=get("model"), variant=get("variant"),
                            threads=_threads(get("threads")), metric=metric,
                            ratio=float(ratio), ci_low=get("ci_low"), ci_high=get("ci_high"),
                            threshold=get("threshold") if relative else None,
                            decision=decision, runtime=get("runtime")))
    labels = [tuple(r[c] for c in ("target", "model", "variant", "threads", "metric"))
              for r in records]
    for record, label in zip(records, labels):
        if labels.count(label) > 1 and record["runtime"]:  # one row per runtime: say which
            record["variant"] = f"{record['variant']} · {record['runtime']}"
    return pd.DataFrame(records, columns=COMPARISON_COLUMNS)


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


def series_key(values: Any) -> tuple:
    """A series key (SERIES_KEY order) as plain values: threads an int or None, NaN as None."""
    return tuple(_threads(v) if name == "threads" else _clean(v)
                 for name, v in zip(SERIES_KEY, values))


def trend_series(trend: pd.DataFrame) -> pd.DataFrame:
    """The ok rows of `History.trend(...)` as series rows (SERIES_COLUMNS), index kept.

    The index is the trend frame's, so a series row can be traced back to its trend row. A row
    with a `key` (an operator, a layer) is its own series, `metric [key]`; where one target,
    model, variant, thread count and metric was measured with several runtimes, the variant
    reads `variant · runtime`, so no two runtimes share a series.
    """
    ok = trend[trend["status"].fillna("ok") == "ok"] if "status" in trend.columns else trend
    out = ok.rename(columns={"started": "timestamp"}).copy()
    if "key" in out.columns:
        keyed = out["key"].notna() & (out["key"].astype(str) != "")
        out.loc[keyed, "metric"] = out.loc[keyed, "metric"] + " [" + \
            out.loc[keyed, "key"].astype(str) + "]"
    if "runtime" in out.columns and len(out):
        runtimes = out.groupby([out[c].astype(str) for c in SERIES_KEY])["runtime"] \
            .transform("nunique")
        several = (runtimes > 1) & out["runtime"].notna()
        out.loc[several, "variant"] = out.loc[several, "variant"].astype(str) + " · " + \
            out.loc[several, "runtime"].astype(str)
    return out[SERIES_COLUMNS]


def series_from_trend(trend: pd.DataFrame) -> pd.DataFrame:
    """`History.trend(...)` output to the series frame `render_history_html` takes (ok rows,
    see `trend_series`)."""
    return trend_series(trend).reset_index(drop=True)


def history_series(series: pd.DataFrame,
                   change_points: list[tuple[tuple, str]]) -> list[dict[str, Any]]:
    """One record per series: key fields, runs [{run_id, timestamp, value, change_point}]."""
    missing = [c for c in SERIES_COLUMNS if c not in series.columns]
    if missing:
        raise ValueError(f"history frame lacks columns {missing}; expected {SERIES_COLUMNS}")
    marked = {(series_key(key), run_id) for key, run_id in change_points}
    records = []
    for key, group in series.groupby(SERIES_KEY, sort=False, dropna=False):
        key = series_key(key)
        runs = [{"run_id": r.run_id, "timestamp": _clean(r.timestamp), "value": _clean(r.value),
                 "change_point": (key, r.run_id) in marked}
                for r in group.sort_values(["timestamp", "run_id"]).itertuples()]
        records.append(dict(zip(SERIES_KEY, key), runs=runs))
    return records


def targets_of(frame: pd.DataFrame) -> list[str]:
    """Targets in the order they first appear."""
    return [t for t in dict.fromkeys(frame["target"].dropna()) if isinstance(t, str)]
