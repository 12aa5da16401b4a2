"""Jetson / TensorRT targets (`kind: tensorrt`): the ONNX export of the Keras model, built into an
engine and timed by `trtexec` on the device.

Variants: convert_only → fp32 engine, f16 → `--fp16`, w8_a8 → `--int8` (TensorRT's own int8, from
the same float ONNX). Engines are cached on the device per ONNX hash, precision and TensorRT
version (`engines/<onnx sha>-<precision>-trt<version>.engine`).

Rows (method "trtexec"):
* the summary (`parse_trtexec_summary`, measurement "latency"): `throughput_qps`; per timed
  quantity a prefix — `host_latency_` (end to end: H2D + GPU compute + D2H), `gpu_compute_`,
  `enqueue_`, `h2d_`, `d2h_`, and `end_to_end_` in the oldest layout — and a statistic `min_ms`,
  `max_ms`, `mean_ms`, `median_ms`, `p90_ms`, `p95_ms`, `p99_ms`; `host_walltime_s`,
  `total_gpu_compute_s`; `gpu_compute_cov_pct` when trtexec warns about an unstable GPU time
  (those rows get valid = False and trtexec's advice as hint);
* the per-layer profile (`parse_trtexec_profile`, measurement "profile", key = layer):
  `node_ms` (average per inference), `node_pct`, `node_total_ms`, `node_median_ms` (newer
  TensorRT only), and `profile_iterations`;
* the raw per-iteration latencies of `--exportTimes` (`parse_trtexec_times`) → the same
  statistics as every other target (`median_ms`, `p90_ms`, … via harness.stats, method
  "trtexec_times"); GPU compute time per iteration → `gpu_median_ms`, `gpu_p99_ms`, ….
"""

from __future__ import annotations

import json
import math
import re
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import stats
from harness.artifacts import Artifact
from harness.config import Target
from harness.errors import HarnessError, InfraError
from harness.results.schema import failure_row, make_row

if TYPE_CHECKING:
    from harness.orchestrate import TargetContext
    from harness.plan import Job
    from harness.transport import Transport

METHOD = "trtexec"
PRECISION = {"convert_only": "fp32", "f16": "fp16", "w8_a8": "int8"}
PRECISION_FLAG = {"fp32": [], "fp16": ["--fp16"], "int8": ["--int8"]}
DEFAULT_TRTEXEC = "/usr/src/tensorrt/bin/trtexec"
TRTEXEC_FIX = ("install TensorRT with JetPack on the Jetson (`sudo apt-get install nvidia-jetpack`, "
               f"which puts trtexec at {DEFAULT_TRTEXEC}) and set `trtexec:` in inventory.yaml to "
               "its path")
INT8_HINT = ("--int8 without a calibration cache: TensorRT uses placeholder dynamic ranges, so "
             "the latency is representative but the outputs are not")
PREFIXES = {"latency": "host_latency", "host latency": "host_latency",
            "gpu compute time": "gpu_compute", "gpu compute": "gpu_compute",
            "enqueue time": "enqueue", "h2d latency": "h2d", "d2h latency": "d2h"}
STAT_NAMES = {"min": "min", "max": "max", "mean": "mean", "median": "median"}
LINE_PREFIX_RE = re.compile(r"^(?:\[[^\]]*\]\s*)*")  # "[11/02/2025-21:14:07] [I] "
ONE_LINE_RE = re.compile(r"^(?P<what>Latency|Enqueue Time|H2D Latency|GPU Compute Time|D2H Latency)"
                         r":\s*(?P<stats>min\s*=.*)$")
STAT_RE = re.compile(r"(?P<name>min|max|mean|median|percentile\((?P<pct>[\d.]+)%\))\s*=\s*"
                     r"(?P<value>[\d.eE+-]+)\s*(?P<unit>ms|us|s)")
OLD_HEADER_RE = re.compile(r"^(Host Latency|Enqueue Time|GPU Compute|H2D Latency|D2H Latency)\s*$")
OLD_STAT_RE = re.compile(r"^(?P<name>min|max|mean|median):\s*(?P<value>[\d.eE+-]+)\s*ms"
                         r"(?:\s*\(end to end (?P<e2e>[\d.eE+-]+)\s*ms\))?")
OLD_PCT_RE = re.compile(r"^percentile:\s*(?P<value>[\d.eE+-]+)\s*ms at (?P<pct>[\d.]+)%"
                        r"(?:\s*\(end to end (?P<e2e>[\d.eE+-]+)\s*ms at [\d.]+%\))?")
COV_RE = re.compile(r"GPU compute time is unstable, with coefficient of variance = ([\d.]+)%")
VERSION_RE = re.compile(r"TensorRT(?:\.trtexec)?\s*\[?\s*TensorRT v(\d+)\]?|TensorRT version:?\s*"
                        r"([\d.]+)")
UNIT_MS = {"ms": 1.0, "us": 1e-3, "s": 1e3}


def _line(text: str) -> str:
    return LINE_PREFIX_RE.sub("", text).strip()


def _stat_metric(prefix: str, name: str, pct: str | None) -> str:
    if pct is not None:
        return f"{prefix}_p{pct.rstrip('0').rstrip('.') if '.' in pct else pct}_ms"
    return f"{prefix}_{STAT_NAMES[name]}_ms"


SECONDS_LINES = [(re.compile(pattern), metric) for pattern, metric in (
    (r"^(?:Total Host Walltime|walltime):\s*([\d.eE+-]+)\s*s", "host_walltime_s"),
    (r"^(?:Total GPU Compute Time|total compute time):\s*([\d.eE+-]+)\s*s", "total_gpu_compute_s"),
)]


def parse_trtexec_summary(text: str) -> list[dict]:
    """Rows from trtexec's performance summary, any of the three layouts.

    TensorRT 8.6+/10: one line per quantity with percentile(90%/95%/99%); TensorRT 8.0-8.5: only
    percentile(99%) and the coefficient-of-variance warning; TensorRT 7: a multi-line block per
    quantity ("Host Latency" / "min: … ms (end to end … ms)" / "percentile: … ms at 99%").
    """
    rows: list[dict] = []
    common = dict(measurement="latency", method=METHOD, n=None)
    cov = None
    advice = []
    block: str | None = None
    for raw in text.splitlines():
        line = _line(raw)
        if not line:
            continue
        m = COV_RE.search(line)
        if m:
            cov = float(m.group(1))
            advice.append(line.lstrip("* ").strip())
            continue
        if advice and ("locking GPU clock" in line or "--useSpinWait" in line):
            advice.append(line.strip())
            continue
        m = re.match(r"^Throughput:\s*([\d.eE+-]+)\s*qps", line, re.IGNORECASE)
        if m and block is None:
            rows.append(make_row(**common, metric="throughput_qps", value=float(m.group(1)),
                                 unit="qps"))
            continue
        m = ONE_LINE_RE.match(line)
        if m:
            block = None
            prefix = PREFIXES[m.group("what").lower()]
            for s in STAT_RE.finditer(m.group("stats")):
                value = float(s.group("value")) * UNIT_MS[s.group("unit")]
                rows.append(make_row(**common, metric=_stat_metric(prefix, s.group("name"),
                                                                   s.group("pct")),
                                     value=value, unit="ms"))
            continue
        seconds = next(((metric, float(m.group(1))) for pattern, metric in SECONDS_LINES
                        if (m := pattern.match(line))), None)
        if seconds:  # totals in seconds, in both the current and the TensorRT 7 wording
            rows.append(make_row(**common, metric=seconds[0], value=seconds[1], unit="s"))
            continue
        # TensorRT 7: multi-line blocks
        m = OLD_HEADER_RE.match(line)
        if m:
            block = PREFIXES[m.group(1).lower()]
            continue
        if block is None:
            continue
        m = OLD_STAT_RE.match(line)
        if m:
            rows.append(make_row(**common, metric=_stat_metric(block, m.group("name"), None),
                                 value=float(m.group("value")), unit="ms"))
            if m.group("e2e"):
                rows.append(make_row(**common, metric=_stat_metric("end_to_end", m.group("name"),
                                                                   None),
                                     value=float(m.group("e2e")), unit="ms"))
            continue
        m = OLD_PCT_RE.match(line)
        if m:
            rows.append(make_row(**common, metric=_stat_metric(block, "percentile", m.group("pct")),
                                 value=float(m.group("value")), unit="ms"))
            if m.group("e2e"):
                rows.append(make_row(**common, metric=_stat_metric("end_to_end", "percentile",
                                                                   m.group("pct")),
                                     value=float(m.group("e2e")), unit="ms"))
            continue
        m = re.match(r"^throughput:\s*([\d.eE+-]+)\s*qps", line)
        if m and block == "host_latency":
            value = float(m.group(1))
            if value > 0:  # TensorRT 7 prints 0 qps here; the real figure is on another line
                rows.append(make_row(**common, metric="throughput_qps", value=value, unit="qps"))
            continue
    if cov is not None:
        hint = " ".join(advice)
        rows.append(make_row(**common, metric="gpu_compute_cov_pct", value=cov, unit="%",
                             valid=False, hint=hint))
        for row in rows:
            if row["metric"].startswith("gpu_compute_") and row["metric"] != "gpu_compute_cov_pct":
                row.update(valid=False, hint=hint)
    return rows


def parse_trtexec_profile(json_text: str) -> list[dict]:
    """Rows from `--exportProfile` JSON: `[{"count": N}, {name, timeMs, averageMs, [medianMs,]
    percentage}, …]` (4 keys per layer record in older TensorRT, 5 with medianMs in newer)."""
    records = json.loads(json_text)
    if isinstance(records, dict):
        records = [records]
    common = dict(measurement="profile", method=METHOD)
    count = next((r["count"] for r in records if isinstance(r, dict) and "count" in r
                  and "name" not in r), None)
    rows: list[dict] = []
    if count is not None:
        rows.append(make_row(**common, metric="profile_iterations", value=int(count),
                             unit="count", n=int(count)))
    for record in records:
        if not isinstance(record, dict) or "name" not in record:
            continue
        layer = dict(common, key=record["name"], n=int(count) if count is not None else None)
        if "averageMs" in record:
            rows.append(make_row(**layer, metric="node_ms", value=float(record["averageMs"]),
                                 unit="ms"))
        if "percentage" in record:
            rows.append(make_row(**layer, metric="node_pct", value=float(record["percentage"]),
                                 unit="%"))
        if "timeMs" in record:
            rows.append(make_row(**layer, metric="node_total_ms", value=float(record["timeMs"]),
                                 unit="ms"))
        if "medianMs" in record:
            rows.append(make_row(**layer, metric="node_median_ms", value=float(record["medianMs"]),
                                 unit="ms"))
    return rows


def parse_trtexec_dump_profile(text: str) -> list[dict]:
    """Rows from the `--dumpProfile` console table (same metrics as the profile JSON)."""
    rows: list[dict] = []
    common = dict(measurement="profile", method=METHOD)
    count = None
    for raw in text.splitlines():
        line = _line(raw)
        m = re.match(r"^=== Profile \((\d+) iterations\s*\) ===", line)
        if m:
            count = int(m.group(1))
            rows.append(make_row(**common, metric="profile_iterations", value=count, unit="count",
                                 n=count))
            continue
        m = re.match(r"^([\d.]+)\s+([\d.]+)\s+(?:([\d.]+)\s+)?([\d.]+)\s+(\S.*)$", line)
        if not m or m.group(5) == "Total":
            continue
        layer = dict(common, key=m.group(5).strip(), n=count)
        rows.append(make_row(**layer, metric="node_ms", value=float(m.group(2)), unit="ms"))
        rows.append(make_row(**layer, metric="node_pct", value=float(m.group(4)), unit="%"))
        rows.append(make_row(**layer, metric="node_total_ms", value=float(m.group(1)), unit="ms"))
        if m.group(3) is not None:
            rows.append(make_row(**layer, metric="node_median_ms", value=float(m.group(3)),
                                 unit="ms"))
    return rows


def times_samples(json_text: str) -> dict[str, list[float]]:
    """Per-iteration series (ms) from `--exportTimes` JSON: host latency and GPU compute.

    Records carry startEnqMs, endEnqMs, startComputeMs, endComputeMs, latencyMs, computeMs (newer)
    or only start/end fields (older: latency = endOutMs − startInMs or endComputeMs − startComputeMs).
    """
    records = json.loads(json_text)
    latency, compute = [], []
    for r in records:
        if not isinstance(r, dict):
            continue
        if "latencyMs" in r:
            latency.append(float(r["latencyMs"]))
        elif "startInMs" in r and "endOutMs" in r:
            latency.append(float(r["endOutMs"]) - float(r["startInMs"]))
        if "computeMs" in r:
            compute.append(float(r["computeMs"]))
        elif "startComputeMs" in r and "endComputeMs" in r:
            compute.append(float(r["endComputeMs"]) - float(r["startComputeMs"]))
    return {"latency": latency, "gpu_compute": compute}


def parse_trtexec_times(json_text: str) -> list[dict]:
    """The raw per-iteration latencies → the same statistics as every other target.

    Host latency → `median_ms`, `p90_ms`, `p99_ms`, `iqr_ms`, `mean_ms`, `min_ms` and `outliers`
    (with the validity verdict); GPU compute → the same names prefixed `gpu_` (`gpu_median_ms`,
    …; the summary's own figures are `gpu_compute_*`).
    """
    from harness.results.rows import LATENCY_METRICS

    series = times_samples(json_text)
    rows: list[dict] = []
    for name, prefix in (("latency", ""), ("gpu_compute", "gpu_")):
        samples = series[name]
        if not samples:
            continue
        summary = stats.summarize(samples)
        valid, hint = stats.validity(summary)
        common = dict(measurement="latency", method="trtexec_times", n=summary.n, valid=valid,
                      hint=hint)
        for metric, attribute in LATENCY_METRICS:
            rows.append(make_row(**common, metric=prefix + metric,
                                 value=getattr(summary, attribute), unit="ms"))
        rows.append(make_row(**common, metric=prefix + "outliers", value=summary.outliers,
                             unit="count"))
    return rows


# --------------------------------------------------------------------------- device kind

def unsupported(target: Target, variant: str) -> str | None:
    """TensorRT builds fp32, fp16 and int8 engines from the float ONNX export."""
    if variant in PRECISION:
        return None
    if variant == "as_is":
        return ("a .tflite file is measured as is; TensorRT builds engines from the ONNX export "
                "of a Keras model")
    return (f"{variant} is a TFLite quantization; TensorRT runs convert_only (fp32), f16 (--fp16) "
            "and w8_a8 (--int8) from the ONNX model")


def prepare(target: Target, artifact: Artifact, cache: Path) -> Artifact:
    """The ONNX export of the Keras source (checked with ONNX Runtime), shared by all precisions."""
    from harness.devices.onnxrt import export_for, onnx_artifact

    export = export_for(artifact, cache)
    prepared = onnx_artifact(artifact, export)
    prepared.extra["precision"] = PRECISION[artifact.variant]
    return prepared


def build_rows(artifact: Artifact, fields: dict[str, Any]) -> list[dict]:
    """The ONNX check (max abs difference vs Keras) and size."""
    from harness.artifacts.onnx_export import OnnxExport
    from harness.devices.onnxrt import build_rows as onnx_rows

    meta = dict(artifact.extra["onnx"])
    meta["path"] = Path(meta["path"])
    return onnx_rows(OnnxExport(**meta), fields)


def probe_tool(transport: "Transport", path: str) -> str | None:
    """The resolved path of an executable on the target (absolute path or a name on PATH)."""
    script = 'if [ -x "$1" ]; then echo "$1"; else command -v "$1" || true; fi'
    try:
        res = transport.run(["sh", "-c", script, "sh", path], timeout=30)
    except InfraError:
        return None
    found = res.stdout.strip().splitlines()
    return found[-1] if res.ok and found else None


def trtexec_version(transport: "Transport", trtexec: str) -> str:
    """TensorRT version from trtexec's banner (`[TensorRT v100300]` → "10.3.0")."""
    res = transport.run([trtexec, "--help"], timeout=60)
    m = VERSION_RE.search(res.stdout + res.stderr)
    if not m:
        return "unknown"
    if m.group(1):
        code = int(m.group(1))  # 8601 = 8.6.1 (M·1000 + m·100 + p); 100300 = 10.3.0 (M·10000 …)
        major, rest = divmod(code, 10000 if code >= 100000 else 1000)
        return f"{major}.{rest // 100}.{rest % 100}"
    return m.group(2)


def engine_name(onnx_sha: str, precision: str, trt_version: str) -> str:
    return f"engines/{onnx_sha[:16]}-{precision}-trt{trt_version}.engine"


def trtexec_command(trtexec: str, onnx: str, engine: str, precision: str, *, warmup_ms: int,
                    duration_s: int, iterations: int, times: str, profile: str,
                    build: bool) -> list[str]:
    """The full trtexec command line (build and cache the engine, or load the cached one)."""
    source = [f"--onnx={onnx}", f"--saveEngine={engine}"] if build else [f"--loadEngine={engine}"]
    return [trtexec, *source, *PRECISION_FLAG[precision], f"--warmUp={warmup_ms}",
            f"--duration={duration_s}", f"--iterations={iterations}", f"--exportTimes={times}",
            f"--exportProfile={profile}", "--separateProfileRun"]


def command_for(ctx: "TargetContext", job: "Job", onnx_remote: str, engine: str, precision: str,
                build: bool, trtexec: str) -> list[str]:
    """trtexec argv from the suite's latency spec."""
    spec = ctx.suite.measurements.latency
    warmup_ms = int(round(1000 * (spec.warmup_seconds if spec else 0.2))) or 200
    duration_s = max(1, math.ceil(spec.min_seconds if spec else 3))
    iterations = spec.runs if spec else 10
    return trtexec_command(trtexec, onnx_remote, engine, precision, warmup_ms=warmup_ms,
                           duration_s=duration_s, iterations=iterations,
                           times=f"results/{job.job_id}.times.json",
                           profile=f"results/{job.job_id}.profile.json", build=build)


def execute(ctx: "TargetContext", job: "Job", artifact: Artifact) -> tuple[list[dict], list[dict]]:
    """Build rows, then trtexec on the device (a missing trtexec is a tool_missing row)."""
    fields = dict(ctx.fields, model=artifact.model, variant=artifact.variant,
                  artifact_sha256=artifact.sha256, runtime="tensorrt")
    rows = build_rows(artifact, fields)
    configured = ctx.target.trtexec or DEFAULT_TRTEXEC
    trtexec = probe_tool(ctx.transport, configured)
    if trtexec is None and ctx.target.trtexec is None:
        trtexec = probe_tool(ctx.transport, "trtexec")
    if trtexec is None:
        where = "`trtexec:` in inventory.yaml" if ctx.target.trtexec else "the default path"
        return rows + [failure_row(
            measurement="latency", error_kind="tool_missing", phase="probe",
            message=f"{ctx.name}: trtexec not found at {configured} ({where}) nor on PATH; fix: "
                    f"{TRTEXEC_FIX}", **fields)], []
    try:
        measured, series = _run_trtexec(ctx, job, artifact, trtexec, fields)
    except HarnessError as exc:
        return rows + [failure_row(measurement="latency", error_kind=getattr(exc, "kind", "infra"),
                                   message=str(exc), phase=getattr(exc, "phase", None) or "run",
                                   **fields)], []
    return rows + measured, series


def _run_trtexec(ctx: "TargetContext", job: "Job", artifact: Artifact, trtexec: str,
                 fields: dict[str, Any]) -> tuple[list[dict], list[dict]]:
    assert artifact.path is not None and artifact.sha256 is not None
    version = trtexec_version(ctx.transport, trtexec)
    precision = artifact.extra.get("precision", PRECISION[artifact.variant])
    onnx_remote = ctx.push(artifact.path, artifact.sha256, "onnx")
    engine = engine_name(artifact.sha256, precision, version)
    ctx.transport.run(["mkdir", "-p", "engines", "results"], timeout=30)
    cached = ctx.transport.run(["test", "-s", engine], timeout=30).ok
    argv = command_for(ctx, job, onnx_remote, engine, precision, not cached, trtexec)
    res = ctx.transport.run(argv, timeout=ctx.target.command_timeout)
    fields = dict(fields, runtime="tensorrt", runtime_version=version,
                  delegate=f"tensorrt-{precision}")
    if not res.ok:
        tail = " | ".join((res.stdout + res.stderr).strip().splitlines()[-3:])
        raise InfraError(f"{ctx.name}: trtexec failed (exit {res.exit_code}): {tail}",
                         kind="trtexec_failed", phase="run",
                         hint=f"command: {shlex.join(argv)}")
    local = ctx.local_dir / "results"
    local.mkdir(parents=True, exist_ok=True)
    (local / f"{job.job_id}.trtexec.txt").write_text(res.stdout + res.stderr)
    rows = [dict(r, **{k: v for k, v in fields.items() if r.get(k) is None})
            for r in parse_trtexec_summary(res.stdout)]
    series: list[dict] = []
    for name, parser in ((f"{job.job_id}.times.json", parse_trtexec_times),
                         (f"{job.job_id}.profile.json", parse_trtexec_profile)):
        try:
            ctx.transport.get(f"results/{name}", local / name)
        except (OSError, InfraError):
            continue
        text = (local / name).read_text()
        rows += [dict(r, **{k: v for k, v in fields.items() if r.get(k) is None})
                 for r in parser(text)]
        if parser is parse_trtexec_times:
            samples = times_samples(text)["latency"]
            series.append({k: fields.get(k) for k in ("target", "model", "variant", "runtime",
                                                      "artifact_sha256")}
                          | {"threads": None, "measurement": "latency", "metric": "median_ms",
                             "unit": "ms", "samples": [round(float(s), 5) for s in samples]})
    rows.append(make_row(**fields, measurement="build", metric="engine_cached",
                         value=int(cached), unit="bool", method=METHOD, key=engine,
                         hint=INT8_HINT if precision == "int8" else None))
    return rows, series
