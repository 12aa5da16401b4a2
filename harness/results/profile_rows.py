"""Tidy rows for where the time and the memory go: per-op profiles, memory, size, TFLM arena.

Every row carries `method` (`op_split`, `benchmark_model`, `runner`, `tflm`, `flatbuffer`,
`onnxruntime_check`, `onnx`).

Profile rows (measurement "profile"), the same metric names for both methods so one pivot serves:
- per node: key = node name, node_type = operator type; metrics
  `node_ms` time per inference (op_split: median of the single-op model; benchmark_model: avg per
  call × times called per run), `node_pct` share of the sum of nodes (%); benchmark_model adds
  `node_avg_ms` (per call, as printed), `node_first_ms`, `node_times_called`.
- per node type: key = node_type = the type; `type_ms`, `type_pct`, `type_count`
  (benchmark_model: its "Summary by node type"; op_split: sums over the per-node rows).
- whole model: `sum_op_ms` (op_split: per-op medians with the fixed per-invoke cost counted once;
  benchmark_model: Σ node_ms), `whole_ms` (median / avg of whole-model runs), `sum_vs_whole_ratio`;
  op_split adds `sum_op_raw_ms`, `sum_vs_whole_ratio_raw`, `invoke_overhead_ms`, `ops_failed`.
Latency rows from benchmark_model (measurement "latency"): `mean_ms`, `min_ms`, `max_ms`, `std_ms`,
`first_ms`, `warmup_mean_ms`, n = count. Memory rows (measurement "memory"): `rss_footprint_mb`
(peak RSS − post-import baseline), `peak_rss_mb`, `init_ms`, benchmark_model's footprint lines,
`tflm_arena_bytes` and the MCU fit. Size rows (measurement "size"): `size_bytes`, `parameter_count`.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path
from typing import Any

from harness.parsers import benchmark_model
from harness.results.schema import failure_row, make_row

NODE_TIME_METRIC = "node_ms"


def _flatbuffer_schema() -> Any:
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:  # TensorFlow's copy
        from tensorflow.lite.python import schema_py_generated as schema
    return schema


def parameter_count(model_path: str | Path) -> int:
    """Parameters of a .tflite model: element counts of its constant tensors, each buffer once.

    A constant tensor is one whose buffer holds data (inline or, in >2 GB models, by offset);
    weights shared by several tensors count once. Quantized and float variants of one network give
    (nearly) the same count; f16 models count their float16 weights.
    """
    schema = _flatbuffer_schema()
    data = Path(model_path).read_bytes()
    model = schema.Model.GetRootAs(data, 0)
    counted: set[int] = set()
    total = 0
    for s in range(model.SubgraphsLength()):
        graph = model.Subgraphs(s)
        for t in range(graph.TensorsLength()):
            tensor = graph.Tensors(t)
            b = tensor.Buffer()
            if b <= 0 or b in counted or b >= model.BuffersLength():
                continue
            buffer = model.Buffers(b)
            if buffer.DataLength() == 0 and not buffer.Size():
                continue
            counted.add(b)
            elements = 1
            for d in range(tensor.ShapeLength()):
                elements *= max(int(tensor.Shape(d)), 0)
            total += elements
    return total


# --------------------------------------------------------------------------- op-split (runner)

def op_split_rows(profile: dict, fields: dict[str, Any]) -> list[dict]:
    """Rows for the runner's `profile` section (method op_split)."""
    common = dict(fields, measurement="profile", method="op_split")
    if profile.get("threads") is not None:
        common["threads"] = profile["threads"]
    if profile.get("status") != "ok":
        error = profile.get("error") or {}
        return [failure_row(error_kind=error.get("kind", "op_split"),
                            message=error.get("message", "op-split profiling failed"),
                            phase="profile", **common)]
    rows: list[dict] = []
    ok = [op for op in profile["ops"] if op.get("status") == "ok" and op.get("median_us") is not None]
    raw_total = sum(op["median_us"] for op in ok)
    by_type: OrderedDict[str, list[float]] = OrderedDict()
    for op in profile["ops"]:
        if op.get("status") == "skipped":
            rows.append(make_row(**common, key=op["name"], node_type=op["op"], metric="node_ms",
                                 value=None, unit="ms", status="skipped", message=op.get("error")))
            continue
        if op not in ok:
            rows.append(failure_row(error_kind="op_split_op", phase="profile",
                                    message=op.get("error") or "operator could not be profiled",
                                    key=op["name"], node_type=op["op"], **common))
            continue
        ms = op["median_us"] / 1e3
        node = dict(common, key=op["name"], node_type=op["op"], n=op["n"],
                    delegate=op.get("delegate"))
        rows.append(make_row(**node, metric="node_ms", value=ms, unit="ms"))
        rows.append(make_row(**node, metric="node_pct",
                             value=100.0 * op["median_us"] / raw_total if raw_total else None,
                             unit="%"))
        by_type.setdefault(op["op"], []).append(ms)
    rows += _type_rows(common, [(t, sum(v), len(v)) for t, v in by_type.items()], raw_total / 1e3)
    whole = profile.get("whole") or {}
    summary = dict(common, delegate=whole.get("delegate"),
                   delegated_nodes=whole.get("delegated_nodes"))

    def add(metric: str, value: Any, unit: str, n: int | None = None) -> None:
        if value is not None:
            rows.append(make_row(**summary, metric=metric, value=value, unit=unit, n=n))

    add("whole_ms", _ms(profile.get("whole_median_us")), "ms", whole.get("n"))
    add("sum_op_ms", _ms(profile.get("sum_op_median_us")), "ms", len(ok))
    add("sum_op_raw_ms", _ms(profile.get("sum_op_median_raw_us")), "ms", len(ok))
    add("invoke_overhead_ms", _ms(profile.get("overhead_us")), "ms")
    add("sum_vs_whole_ratio", profile.get("ratio"), "ratio", len(ok))
    add("sum_vs_whole_ratio_raw", profile.get("ratio_raw"), "ratio", len(ok))
    add("ops_failed", profile.get("ops_failed"), "count")
    add("ops_skipped", profile.get("ops_skipped"), "count")
    return rows


def _ms(us: float | None) -> float | None:
    return None if us is None else us / 1e3


def _type_rows(common: dict, types: list[tuple[str, float, int]], total_ms: float,
               times_called: dict[str, int] | None = None) -> list[dict]:
    rows = []
    for node_type, ms, count in sorted(types, key=lambda t: -t[1]):
        base = dict(common, key=node_type, node_type=node_type)
        rows.append(make_row(**base, metric="type_ms", value=ms, unit="ms"))
        rows.append(make_row(**base, metric="type_pct",
                             value=100.0 * ms / total_ms if total_ms else None, unit="%"))
        rows.append(make_row(**base, metric="type_count", value=count, unit="count"))
        if times_called is not None and node_type in times_called:
            rows.append(make_row(**base, metric="type_times_called", value=times_called[node_type],
                                 unit="count"))
    return rows


# --------------------------------------------------------------------------- benchmark_model

def benchmark_model_profile_rows(parsed: dict[str, dict[str, Any]], fields: dict[str, Any],
                                 ) -> list[dict]:
    """Rows for parsed op-profiling sections (`parsers.benchmark_model.parse_profile`).

    A node's time per inference is its average per call × times called per run; old versions
    print 0 times called, which counts as one call.
    """
    common = dict(fields, measurement="profile", method="benchmark_model")
    rows: list[dict] = []
    runs = parsed.get("runs")
    if runs:
        n = runs["timings"].get("count")
        node_total = sum(node["avg_ms"] * _calls(node) for node in runs["nodes"])
        for node in runs["nodes"]:
            base = dict(common, key=node["name"], node_type=node["node_type"], n=n)
            rows.append(make_row(**base, metric="node_ms", value=node["avg_ms"] * _calls(node),
                                 unit="ms"))
            rows.append(make_row(**base, metric="node_pct", value=node["pct"], unit="%"))
            rows.append(make_row(**base, metric="node_avg_ms", value=node["avg_ms"], unit="ms"))
            rows.append(make_row(**base, metric="node_first_ms", value=node["first_ms"], unit="ms"))
            rows.append(make_row(**base, metric="node_times_called", value=node["times_called"],
                                 unit="count"))
        for entry in sorted(runs["summary"], key=lambda e: -e["avg_ms"]):
            base = dict(common, key=entry["node_type"], node_type=entry["node_type"], n=n)
            rows.append(make_row(**base, metric="type_ms", value=entry["avg_ms"], unit="ms"))
            rows.append(make_row(**base, metric="type_pct", value=entry["pct"], unit="%"))
            rows.append(make_row(**base, metric="type_count", value=entry["count"], unit="count"))
            rows.append(make_row(**base, metric="type_times_called", value=entry["times_called"],
                                 unit="count"))
        whole_ms = _ms(runs["timings"].get("avg"))
        if runs["nodes"]:
            rows.append(make_row(**common, metric="sum_op_ms", value=node_total, unit="ms",
                                 n=len(runs["nodes"])))
        if whole_ms is not None:
            rows.append(make_row(**common, metric="whole_ms", value=whole_ms, unit="ms", n=n))
            if runs["nodes"]:
                rows.append(make_row(**common, metric="sum_vs_whole_ratio",
                                     value=node_total / whole_ms, unit="ratio", n=n))
        if runs.get("nodes_observed") is not None:
            rows.append(make_row(**common, metric="nodes_observed", value=runs["nodes_observed"],
                                 unit="count"))
        rows += timing_rows(runs["timings"], fields)
    init = parsed.get("init")
    if init:
        for node in init["nodes"]:
            rows.append(make_row(**common, key=node["name"], node_type=node["node_type"],
                                 metric="init_node_avg_ms", value=node["avg_ms"], unit="ms",
                                 n=node["times_called"]))
        if init["timings"].get("curr") is not None:
            rows.append(make_row(**dict(common, measurement="memory"), metric="init_ms",
                                 value=init["timings"]["curr"] / 1e3, unit="ms", n=1))
    return rows


def _calls(node: dict[str, Any]) -> int:
    return node["times_called"] or 1


def timing_rows(timings: dict[str, Any], fields: dict[str, Any], prefix: str = "") -> list[dict]:
    """Latency rows from a `count=… first=… min=… max=… avg=… std=…` line (µs → ms)."""
    common = dict(fields, measurement="latency", method="benchmark_model", n=timings.get("count"))
    names = (("avg", "mean_ms"), ("min", "min_ms"), ("max", "max_ms"), ("std", "std_ms"),
             ("first", "first_ms"))
    return [make_row(**common, metric=prefix + metric, value=timings[key] / 1e3, unit="ms")
            for key, metric in names if timings.get(key) is not None]


CONSOLE_MEMORY = {"footprint_init_mb": "footprint_init_mb",
                  "footprint_overall_mb": "footprint_overall_mb",
                  "peak_init_mb": "peak_init_mb", "peak_overall_mb": "peak_overall_mb",
                  "peak_monitored_mb": "peak_monitored_mb", "vmrss_mb": "vmrss_mb",
                  "rss_anon_mb": "rss_anon_mb", "rss_file_shmem_mb": "rss_file_shmem_mb"}


def benchmark_model_console_rows(parsed: dict[str, Any], fields: dict[str, Any]) -> list[dict]:
    """Rows for parsed console output (`parse_console`), method benchmark_model.

    The "Inference timings in us" line gives four metrics of their own: init_ms (memory),
    first_inference_ms, warmup_mean_ms, mean_ms (latency); the count= blocks give min/max/std.
    """
    fields = dict(fields)
    if parsed.get("threads") is not None and fields.get("threads") is None:
        fields["threads"] = parsed["threads"]
    if parsed.get("delegate") and not fields.get("delegate"):
        fields["delegate"] = parsed["delegate"]
    latency = dict(fields, measurement="latency", method="benchmark_model")
    memory = dict(fields, measurement="memory", method="benchmark_model", n=1)
    rows: list[dict] = []
    runs, warmup = parsed.get("runs") or {}, parsed.get("warmup") or {}
    if "inference_avg_us" in parsed:
        rows.append(make_row(**latency, metric="mean_ms", value=parsed["inference_avg_us"] / 1e3,
                             unit="ms", n=runs.get("count")))
    if "warmup_avg_us" in parsed:
        rows.append(make_row(**latency, metric="warmup_mean_ms",
                             value=parsed["warmup_avg_us"] / 1e3, unit="ms", n=warmup.get("count")))
    if "first_inference_us" in parsed:
        rows.append(make_row(**latency, metric="first_inference_ms",
                             value=parsed["first_inference_us"] / 1e3, unit="ms", n=1))
    if "init_us" in parsed:
        rows.append(make_row(**memory, metric="init_ms", value=parsed["init_us"] / 1e3, unit="ms"))
    elif "init_session_ms" in parsed:
        rows.append(make_row(**memory, metric="init_ms", value=parsed["init_session_ms"], unit="ms"))
    if runs:
        skip = {"avg"} if "inference_avg_us" in parsed else set()
        rows += [r for r in timing_rows({k: v for k, v in runs.items() if k not in skip | {"first"}},
                                        fields)]
    for key, metric in CONSOLE_MEMORY.items():
        if key in parsed.get("memory", {}):
            rows.append(make_row(**memory, metric=metric, value=parsed["memory"][key], unit="MB"))
    if "model_size_mb" in parsed:
        rows.append(make_row(**dict(fields, measurement="size", method="benchmark_model", n=1),
                             metric="size_mb", value=parsed["model_size_mb"], unit="MB"))
    return rows


def benchmark_model_rows(csv_text: str | None, console_text: str | None,
                         fields: dict[str, Any]) -> list[dict]:
    """Rows for one benchmark_model run from its CSV and/or console output.

    With both, the latency and init rows come from the console (it has warm-up and first
    inference too) and the CSV contributes the profile rows, so no metric appears twice.
    """
    rows: list[dict] = []
    console = benchmark_model.parse_console(console_text) if console_text else None
    if console is not None:
        rows += benchmark_model_console_rows(console, fields)
    if csv_text:
        csv_rows = benchmark_model_profile_rows(benchmark_model.parse_profile(csv_text), fields)
        if console is not None:
            csv_rows = [r for r in csv_rows if r["measurement"] == "profile"]
        rows += csv_rows
    return rows


def benchmark_model_output_rows(output: benchmark_model.BenchmarkModelOutput,
                                fields: dict[str, Any]) -> list[dict]:
    """Rows for one parsed output that may hold console lines, profile tables or both.

    With console timings, latency and init come from the console and the tables add the profile
    rows (as in `benchmark_model_rows`); without, the tables' Timings line gives the latency.
    """
    rows = benchmark_model_console_rows(output.console, fields)
    profile = benchmark_model_profile_rows(output.profile, fields)
    if rows:
        profile = [r for r in profile if r["measurement"] == "profile"]
    return rows + profile


# --------------------------------------------------------------------------- memory and size

def memory_rows(memory: dict | None, fields: dict[str, Any]) -> list[dict]:
    """Rows for the runner's `memory` section.

    rss_footprint_mb = peak RSS − RSS after importing the runtime (the model's footprint, measured in
    the runner's fresh process); peak_rss_mb; init_ms (interpreter or session creation).
    """
    if not memory:
        return []
    common = dict(fields, measurement="memory", method="runner", n=1)
    rows: list[dict] = []
    peak, base = memory.get("peak_rss_kb"), memory.get("rss_baseline_kb")
    if peak is not None and base is not None:
        rows.append(make_row(**common, metric="rss_footprint_mb", value=(peak - base) / 1024,
                             unit="MB"))
    if peak is not None:
        rows.append(make_row(**common, metric="peak_rss_mb", value=peak / 1024, unit="MB"))
    if memory.get("init_ms") is not None:
        rows.append(make_row(**common, metric="init_ms", value=memory["init_ms"], unit="ms"))
    return rows


def size_rows(model_path: str | Path | None, fields: dict[str, Any],
              size_bytes: int | None = None) -> list[dict]:
    """size_bytes (on disk) and parameter_count of a model file."""
    common = dict(fields, measurement="size", n=1)
    rows = []
    if size_bytes is None and model_path is not None:
        size_bytes = Path(model_path).stat().st_size
    if size_bytes is not None:
        rows.append(make_row(**common, method="runner" if model_path is None else "file",
                             metric="size_bytes", value=size_bytes, unit="B"))
    if model_path is not None:
        rows.append(make_row(**common, method="flatbuffer", metric="parameter_count",
                             value=parameter_count(model_path), unit="count"))
    return rows


def tflm_arena_cached(model_path: str | Path, cache: Path | None = None) -> dict[str, Any]:
    """The TFLM arena search of a model (`harness.artifacts.tflm_arena`): {"arena_bytes": n}, or
    {"error_kind", "message"} when TFLM cannot load it.

    With `cache`, the outcome is kept in `<cache>/tflm/` under the model's content, its path (the
    message names it), the tflite-micro version and the search's code, so the search runs once
    per model, ahead of measuring (`runner_exec.controller_work`), and never while a target
    measures.
    """
    from harness.artifacts import tflm_arena as tflm
    from harness.artifacts.cache import code_version, key_of, package_version, sha256_file, \
        write_json
    from harness.errors import InfraError

    path = None
    if cache is not None:
        key = key_of("tflm_arena", sha256_file(Path(model_path)), str(model_path),
                     package_version("tflite-micro", "tflite_micro"),
                     code_version("artifacts/tflm_arena.py"))
        path = Path(cache) / "tflm" / f"{key}.json"
        if path.is_file():
            return json.loads(path.read_text())
    try:
        found: dict[str, Any] = {"arena_bytes": tflm.tflm_arena_bytes(model_path)}
    except InfraError as exc:
        found = {"error_kind": exc.kind, "message": str(exc)}
    if path is not None:
        try:
            write_json(path, found)
        except OSError:  # the cache only saves time
            pass
    return found


def tflm_rows(model_path: str | Path, variant: str, fields: dict[str, Any],
              ram_kb: int | None = None, flash_kb: int | None = None,
              cache: Path | None = None) -> list[dict]:
    """TFLM arena (and the MCU fit when RAM/flash are known) for one artifact.

    No rows for variants TFLM cannot run (`tflm_arena.why_not` says why); a failure row when TFLM cannot
    load this model (e.g. an operator it lacks). With `cache`, the arena search is read from (or
    stored in) the cache (`tflm_arena_cached`).
    """
    from harness.artifacts import tflm_arena as tflm

    if not tflm.tflm_can_run(variant):
        return []
    common = dict(fields, measurement="memory", method="tflm", n=1)
    found = tflm_arena_cached(model_path, cache)
    if "arena_bytes" not in found:
        return [failure_row(error_kind=found["error_kind"], message=found["message"],
                            phase="tflm", **common)]
    arena = found["arena_bytes"]
    rows = [make_row(**common, metric="tflm_arena_bytes", value=arena, unit="B")]
    if ram_kb is not None or flash_kb is not None:
        fit = tflm.fits(arena, Path(model_path).stat().st_size, ram_kb, flash_kb)
        rows.append(make_row(**common, metric="mcu_fits", value=None if fit["fits"] is None
                             else int(fit["fits"]), unit="bool"))
        for side in ("ram", "flash"):
            if fit[f"{side}_fits"] is None:
                continue
            rows.append(make_row(**common, metric=f"{side}_margin_bytes",
                                 value=fit[f"{side}_margin_bytes"], unit="B"))
            rows.append(make_row(**common, metric=f"{side}_used_pct",
                                 value=fit[f"{side}_used_pct"], unit="%"))
    return rows


def onnx_export_rows(meta: dict[str, Any], fields: dict[str, Any]) -> list[dict]:
    """The ONNX export's check against Keras and its size (`OnnxExport.meta()`)."""
    common = dict(fields, measurement="build", method="onnxruntime_check", n=meta["checked_inputs"])
    return [make_row(**common, metric="onnx_max_abs_diff", value=meta["max_abs_diff"], unit="abs",
                     message=f"tf2onnx {meta['tf2onnx_version']}, opset {meta['opset']}, checked "
                             f"with onnxruntime {meta['onnxruntime_version']} on "
                             f"{meta['checked_inputs']} inputs"),
            make_row(**dict(fields, measurement="size", method="onnx", n=1), metric="onnx_bytes",
                     value=meta["size_bytes"], unit="B")]
