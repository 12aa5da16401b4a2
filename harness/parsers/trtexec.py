"""`trtexec` output → records (method "trtexec").

* the performance summary (`parse_summary`, measurement "latency"): `throughput_qps`; per timed
  quantity a prefix — `host_latency_` (end to end: H2D + GPU compute + D2H), `gpu_compute_`,
  `enqueue_`, `h2d_`, `d2h_`, and `end_to_end_` in the oldest layout — and a statistic `min_ms`,
  `max_ms`, `mean_ms`, `median_ms`, `p90_ms`, `p95_ms`, `p99_ms`; `host_walltime_s`,
  `total_gpu_compute_s`; `gpu_compute_cov_pct` when trtexec warns about an unstable GPU time
  (those records get valid = False and trtexec's advice as hint). trtexec logs warnings ([W],
  [E]) to stderr and the rest to stdout (`samples/common/logging.h`: severity >= kINFO →
  std::cout, else std::cerr), so the warning is only seen when both streams are parsed: give
  `parse_summary` stdout and stderr together. A run without data transfers (the TensorRT 11
  default, or `--noDataTransfers`: "Data transfers: Disabled", H2D/D2H all 0) reports GPU time as
  "Latency": those `host_latency_*`, `h2d_*` and `d2h_*` records get valid = False and a hint;
* the per-layer profile (`parse_profile_json` for `--exportProfile`, `parse_dump_profile` for the
  `--dumpProfile` console table; measurement "profile", key = layer): `node_ms` (average per
  inference), `node_pct`, `node_total_ms`, `node_median_ms` (newer TensorRT only), and
  `profile_iterations`;
* the per-iteration series of `--exportTimes` (`times_samples`), in ms;
* the TensorRT version from trtexec's banner (`parse_version`, `parse_major`): "&&&& RUNNING
  TensorRT.trtexec [TensorRT v8601]" (8.6.1), "[TensorRT v100300]" (10.3.0), "[TensorRT v110000]
  [b114]" (11.0.0).
"""

from __future__ import annotations

import json
import re

from harness.parsers.records import ToolRecords, record

METHOD = "trtexec"
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
DATA_TRANSFERS_RE = re.compile(r"^Data transfers:\s*(Enabled|Disabled)")
NO_TRANSFERS_HINT = ("trtexec ran without data transfers (the TensorRT 11 default, or "
                     "--noDataTransfers): 'Latency' is GPU compute only and H2D/D2H are 0; run "
                     "with --includeDataTransfers (TensorRT >= 11) for host latency")


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


def parse_summary(text: str) -> list[dict]:
    """Records from trtexec's performance summary, any of the three layouts.

    TensorRT 8.6+/10: one line per quantity with percentile(90%/95%/99%); TensorRT 8.0-8.5: only
    percentile(99%) and the coefficient-of-variance warning; TensorRT 7: a multi-line block per
    quantity ("Host Latency" / "min: … ms (end to end … ms)" / "percentile: … ms at 99%").
    """
    records: list[dict] = []
    common = dict(measurement="latency", method=METHOD, n=None)
    cov = None
    advice = []
    block: str | None = None
    transfers: bool | None = None
    for raw in text.splitlines():
        line = _line(raw)
        if not line:
            continue
        m = DATA_TRANSFERS_RE.match(line)
        if m:
            transfers = m.group(1) == "Enabled"
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
            records.append(record(**common, metric="throughput_qps", value=float(m.group(1)),
                                  unit="qps"))
            continue
        m = ONE_LINE_RE.match(line)
        if m:
            block = None
            prefix = PREFIXES[m.group("what").lower()]
            for s in STAT_RE.finditer(m.group("stats")):
                value = float(s.group("value")) * UNIT_MS[s.group("unit")]
                records.append(record(**common, metric=_stat_metric(prefix, s.group("name"),
                                                                    s.group("pct")),
                                      value=value, unit="ms"))
            continue
        seconds = next(((metric, float(m.group(1))) for pattern, metric in SECONDS_LINES
                        if (m := pattern.match(line))), None)
        if seconds:  # totals in seconds, in both the current and the TensorRT 7 wording
            records.append(record(**common, metric=seconds[0], value=seconds[1], unit="s"))
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
            records.append(record(**common, metric=_stat_metric(block, m.group("name"), None),
                                  value=float(m.group("value")), unit="ms"))
            if m.group("e2e"):
                records.append(record(**common, metric=_stat_metric("end_to_end", m.group("name"),
                                                                    None),
                                      value=float(m.group("e2e")), unit="ms"))
            continue
        m = OLD_PCT_RE.match(line)
        if m:
            records.append(record(**common, metric=_stat_metric(block, "percentile", m.group("pct")),
                                  value=float(m.group("value")), unit="ms"))
            if m.group("e2e"):
                records.append(record(**common, metric=_stat_metric("end_to_end", "percentile",
                                                                    m.group("pct")),
                                      value=float(m.group("e2e")), unit="ms"))
            continue
        m = re.match(r"^throughput:\s*([\d.eE+-]+)\s*qps", line)
        if m and block == "host_latency":
            value = float(m.group(1))
            if value > 0:  # TensorRT 7 prints 0 qps here; the real figure is on another line
                records.append(record(**common, metric="throughput_qps", value=value, unit="qps"))
            continue
    if transfers is False or (transfers is None and _transfers_all_zero(records)):
        for entry in records:
            if entry["metric"].startswith(("host_latency_", "h2d_", "d2h_")):
                entry.update(valid=False, hint=NO_TRANSFERS_HINT)
    if cov is not None:
        hint = " ".join(advice)
        records.append(record(**common, metric="gpu_compute_cov_pct", value=cov, unit="%",
                              valid=False, hint=hint))
        for entry in records:
            if entry["metric"].startswith("gpu_compute_") and entry["metric"] != "gpu_compute_cov_pct":
                entry.update(valid=False, hint=hint)
    return records


def _transfers_all_zero(records: list[dict]) -> bool:
    """Whether the summary's H2D and D2H maxima are both 0 (a run without data transfers)."""
    maxima = {r["metric"]: r["value"] for r in records
              if r["metric"] in ("h2d_max_ms", "d2h_max_ms")}
    return len(maxima) == 2 and all(v == 0 for v in maxima.values())


def parse_profile_json(json_text: str) -> list[dict]:
    """Records from `--exportProfile` JSON: `[{"count": N}, {name, timeMs, averageMs, [medianMs,]
    percentage}, …]` (4 keys per layer record in older TensorRT, 5 with medianMs in newer)."""
    layers = json.loads(json_text)
    if isinstance(layers, dict):
        layers = [layers]
    common = dict(measurement="profile", method=METHOD)
    count = next((r["count"] for r in layers if isinstance(r, dict) and "count" in r
                  and "name" not in r), None)
    records: list[dict] = []
    if count is not None:
        records.append(record(**common, metric="profile_iterations", value=int(count),
                               unit="count", n=int(count)))
    fields = (("averageMs", "node_ms", "ms"), ("percentage", "node_pct", "%"),
              ("timeMs", "node_total_ms", "ms"), ("medianMs", "node_median_ms", "ms"))
    for layer in layers:
        if not isinstance(layer, dict) or "name" not in layer:
            continue
        common_layer = dict(common, key=layer["name"], n=int(count) if count is not None else None)
        records += [record(**common_layer, metric=metric, value=float(layer[name]), unit=unit)
                    for name, metric, unit in fields if name in layer]
    return records


def parse_dump_profile(text: str) -> list[dict]:
    """Records from the `--dumpProfile` console table (same metrics as the profile JSON)."""
    records: list[dict] = []
    common = dict(measurement="profile", method=METHOD)
    count = None
    for raw in text.splitlines():
        line = _line(raw)
        m = re.match(r"^=== Profile \((\d+) iterations\s*\) ===", line)
        if m:
            count = int(m.group(1))
            records.append(record(**common, metric="profile_iterations", value=count, unit="count",
                                  n=count))
            continue
        m = re.match(r"^([\d.]+)\s+([\d.]+)\s+(?:([\d.]+)\s+)?([\d.]+)\s+(\S.*)$", line)
        if not m or m.group(5) == "Total":
            continue
        layer = dict(common, key=m.group(5).strip(), n=count)
        records.append(record(**layer, metric="node_ms", value=float(m.group(2)), unit="ms"))
        records.append(record(**layer, metric="node_pct", value=float(m.group(4)), unit="%"))
        records.append(record(**layer, metric="node_total_ms", value=float(m.group(1)), unit="ms"))
        if m.group(3) is not None:
            records.append(record(**layer, metric="node_median_ms", value=float(m.group(3)),
                                  unit="ms"))
    return records


def times_samples(json_text: str) -> dict[str, list[float]]:
    """Per-iteration series (ms) from `--exportTimes` JSON: host latency and GPU compute.

    Records carry startEnqMs, endEnqMs, startComputeMs, endComputeMs, latencyMs, computeMs (newer)
    or only start/end fields (older: latency = endOutMs − startInMs or endComputeMs − startComputeMs).
    """
    iterations = json.loads(json_text)
    latency, compute = [], []
    for r in iterations:
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


def parse_version(text: str) -> str | None:
    """TensorRT version from trtexec's banner (`[TensorRT v100300]` → "10.3.0"), or None."""
    m = VERSION_RE.search(text)
    if not m:
        return None
    if m.group(1):
        code = int(m.group(1))  # 8601 = 8.6.1 (M·1000 + m·100 + p); 100300 = 10.3.0 (M·10000 …)
        major, rest = divmod(code, 10000 if code >= 100000 else 1000)
        return f"{major}.{rest // 100}.{rest % 100}"
    return m.group(2)


def parse_major(text: str) -> int | None:
    """TensorRT major version from trtexec's banner or version line, or None."""
    version = parse_version(text)
    try:
        return int(version.split(".")[0]) if version else None
    except ValueError:
        return None


def parse(text: str) -> ToolRecords:
    """A performance summary, `--exportProfile` JSON or `--dumpProfile` table, told apart by
    content."""
    stripped = text.lstrip()
    if stripped.startswith("[") and _is_json(stripped):
        return ToolRecords("profile_json", parse_profile_json(text))
    if "=== Profile (" in text:
        return ToolRecords("dump_profile", parse_dump_profile(text))
    return ToolRecords("summary", parse_summary(text))


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True
