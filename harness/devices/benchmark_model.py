"""TFLite `benchmark_model`: find it on a target, build its command line, parse what it prints.

Two outputs are parsed:

* the op-profiling CSV (`--enable_op_profiling=true --profiling_output_csv_file=F`): two sections
  (benchmark initialization, regular runs), each with "Run Order", "Top by Computation Time" (a
  re-sorted subset of the run order, skipped), "Summary by node type", a "Timings (microseconds)"
  line and "N nodes observed". Node *types* may contain ", " (`Copy (NC, X8)`) and node *names* have
  the same comma written as a TAB (`Delegate/Copy (NC\\t X8):0`), so rows are matched with a regex
  anchored on the numeric columns, never split with a CSV reader.
* the console output, three generations: plain lines; lines prefixed `INFO: ` (with periodic peak
  memory and VmRSS); the old "Peak memory footprint (MB): init= overall=" wording.

Parsers return plain dicts with the tool's own units (µs, ms, MB, KB); turning them into tidy rows
is `harness.results.profile_rows`.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

from harness.errors import InfraError

NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"

# node type, first, avg_ms, %, cdf%, mem KB, times called, name
NODE_RE = re.compile(
    rf"^(?P<node_type>.+?), (?P<first_ms>{NUM}), (?P<avg_ms>{NUM}), (?P<pct>{NUM})%, "
    rf"(?P<cdf_pct>{NUM})%, (?P<mem_kb>{NUM}), (?P<times_called>\d+), (?P<name>.*)$")
# node type, count, avg_ms, avg %, cdf %, mem KB, times called
SUMMARY_RE = re.compile(
    rf"^(?P<node_type>.+?), (?P<count>\d+), (?P<avg_ms>{NUM}), (?P<pct>{NUM})%, "
    rf"(?P<cdf_pct>{NUM})%, (?P<mem_kb>{NUM}), (?P<times_called>\d+)$")
KEYVAL_RE = re.compile(rf"(\w+)=({NUM})")

SECTION_TITLES = {
    "Profiling Info for Benchmark Initialization:": "init",
    "Operator-wise Profiling Info for Regular Benchmark Runs:": "runs",
}


def _number(text: str) -> float | int:
    value = float(text)
    return int(value) if value.is_integer() and re.fullmatch(r"[-+]?\d+", text) else value


def node_name(raw: str) -> str:
    """A node name as printed, with the TAB that stands for the comma restored (`NC, X8`)."""
    return raw.replace("\t", ",").strip()


def _empty_section() -> dict[str, Any]:
    return {"nodes": [], "summary": [], "timings": {}, "memory": {}, "nodes_executed": None,
            "nodes_observed": None}


# --------------------------------------------------------------------------- CSV

def parse_profile_csv(text: str) -> dict[str, dict[str, Any]]:
    """Parse a `--profiling_output_csv_file` file.

    Returns {"init": section, "runs": section} (a section is absent if the file lacks it), where a
    section is {"nodes": [{node_type, first_ms, avg_ms, pct, cdf_pct, mem_kb, times_called, name}]
    (run order), "summary": [{node_type, count, avg_ms, pct, cdf_pct, mem_kb, times_called}],
    "timings": {count, first, curr, min, max, avg, std} (µs, as printed), "memory": {count, …},
    "nodes_executed": int, "nodes_observed": int}. `name` has its TAB turned back into a comma.
    """
    sections: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    table: str | None = None
    for raw in text.splitlines():
        line = raw.rstrip("\r\n")
        stripped = line.strip()
        if stripped in SECTION_TITLES:
            current = sections.setdefault(SECTION_TITLES[stripped], _empty_section())
            table = None
            continue
        if current is None or not stripped:
            continue
        if stripped.startswith("====="):
            title = stripped.strip("= ").lower()
            table = ("run_order" if title == "run order" else
                     "top" if title.startswith("top by") else
                     "summary" if title.startswith("summary by node type") else title)
            continue
        if stripped.startswith("node type,"):
            continue
        if stripped.startswith("Number of nodes executed:"):
            current["nodes_executed"] = int(stripped.split(":", 1)[1])
            continue
        if stripped.startswith("Timings (microseconds):"):
            current["timings"] = {k: _number(v) for k, v in KEYVAL_RE.findall(stripped)}
            table = None
            continue
        if stripped.startswith("Memory (bytes):"):
            current["memory"] = {k: _number(v) for k, v in KEYVAL_RE.findall(stripped)}
            continue
        match = re.fullmatch(r"(\d+) nodes observed", stripped)
        if match:
            current["nodes_observed"] = int(match.group(1))
            continue
        if table == "run_order":
            m = NODE_RE.match(line)
            if m:
                node = {k: _number(v) for k, v in m.groupdict().items()
                        if k not in ("node_type", "name")}
                node["node_type"] = m.group("node_type").strip()
                node["name"] = node_name(m.group("name"))
                current["nodes"].append(node)
        elif table == "summary":
            m = SUMMARY_RE.match(line)
            if m:
                row = {k: _number(v) for k, v in m.groupdict().items() if k != "node_type"}
                row["node_type"] = m.group("node_type").strip()
                current["summary"].append(row)
    return sections


# --------------------------------------------------------------------------- console

def _strip_prefix(line: str) -> str:
    line = line.rstrip("\r\n")
    return line[6:] if line.startswith("INFO: ") else line


def parse_console(text: str) -> dict[str, Any]:
    """Parse `benchmark_model`'s console output (any of the three generations).

    Returns a dict with whatever the output holds:
    - "init_us", "first_inference_us", "warmup_avg_us", "inference_avg_us": the
      "Inference timings in us" line (kept as four separate metrics);
    - "warmup" and "runs": {count, first, curr, min, max, avg, std} (µs) from the `count=` lines
      after "Running benchmark for at least …" (first such block = warm-up, second = runs);
    - "memory": {"footprint_init_mb", "footprint_overall_mb"} ("Memory footprint delta from the start
      of the tool"), or {"peak_init_mb", "peak_overall_mb"} (old "Peak memory footprint"),
      "peak_monitored_mb" ("Overall peak memory footprint via periodic monitoring"), "vmrss_mb",
      "rss_anon_mb", "rss_file_shmem_mb";
    - "model_size_mb", "init_session_ms", "threads", "graph", "delegate" when printed;
    - "generation": "plain" | "info_prefix" | "peak_footprint" (which layout was seen).
    """
    lines = text.splitlines()
    nonempty = [line for line in lines if line.strip()]
    # the plain generation still prints the odd "INFO: Created … delegate" line
    info = sum(1 for line in nonempty if line.startswith("INFO: ")) * 2 > len(nonempty)
    out: dict[str, Any] = {"memory": {}}
    blocks: list[dict[str, Any]] = []
    in_block = False
    for raw in lines:
        line = _strip_prefix(raw).strip()
        if not line:
            continue
        if line.startswith("Running benchmark for at least"):
            in_block = True
            continue
        if in_block and line.startswith("count="):
            blocks.append({k: _number(v) for k, v in KEYVAL_RE.findall(line)})
            in_block = False
            continue
        m = re.match(r"Inference timings in us: (.*)$", line)
        if m:
            fields = dict(part.split(":", 1) for part in m.group(1).split(", ") if ":" in part)
            names = {"Init": "init_us", "First inference": "first_inference_us",
                     "Warmup (avg)": "warmup_avg_us", "Inference (avg)": "inference_avg_us"}
            for label, key in names.items():
                if label in fields:
                    out[key] = _number(fields[label].strip())
            continue
        m = re.match(rf"(Memory footprint delta from the start of the tool|Peak memory footprint) "
                     rf"\(MB\): init=({NUM}) overall=({NUM})", line)
        if m:
            prefix = "footprint" if m.group(1).startswith("Memory") else "peak"
            out["memory"][f"{prefix}_init_mb"] = _number(m.group(2))
            out["memory"][f"{prefix}_overall_mb"] = _number(m.group(3))
            continue
        m = re.match(rf"Overall peak memory footprint \(MB\) via periodic monitoring: ({NUM})", line)
        if m:
            out["memory"]["peak_monitored_mb"] = _number(m.group(1))
            continue
        m = re.match(rf"[-+] (VmRSS|RssAnnon|RssAnon|RssFile \+ RssShmem)\s*: ({NUM}) MB", line)
        if m:
            key = {"VmRSS": "vmrss_mb", "RssAnnon": "rss_anon_mb", "RssAnon": "rss_anon_mb",
                   "RssFile + RssShmem": "rss_file_shmem_mb"}[m.group(1)]
            out["memory"][key] = _number(m.group(2))
            continue
        m = re.match(rf"The input model file size \(MB\): ({NUM})", line)
        if m:
            out["model_size_mb"] = _number(m.group(1))
            continue
        m = re.match(rf"Initialized session in ({NUM})ms", line)
        if m:
            out["init_session_ms"] = _number(m.group(1))
            continue
        m = re.match(r"(?:Num threads|#threads used for CPU inference): \[(\d+)\]", line)
        if m:
            out["threads"] = int(m.group(1))
            continue
        m = re.match(r"Graph: \[(.*)\]", line)
        if m:
            out["graph"] = m.group(1)
            continue
        m = re.match(r"Created TensorFlow Lite (\S+) delegate", line)
        if m:
            out["delegate"] = m.group(1)
    if blocks:
        if len(blocks) >= 2:
            out["warmup"], out["runs"] = blocks[0], blocks[-1]
        else:
            out["runs"] = blocks[0]
    out["generation"] = ("peak_footprint" if "peak_init_mb" in out["memory"] else
                         "info_prefix" if info else "plain")
    return out


def looks_like_profile_csv(text: str) -> bool:
    """True for an op-profiling CSV, False for console output."""
    return any(title in text for title in SECTION_TITLES) or "Summary by node type" in text


# --------------------------------------------------------------------------- running it

def benchmark_model_command(binary: str, model: str, threads: int, warmup_runs: int, runs: int,
                            csv_path: str) -> list[str]:
    """The argv for one op-profiled benchmark run (XNNPACK as the tool defaults)."""
    return [binary, f"--graph={model}", f"--num_threads={int(threads)}",
            f"--warmup_runs={int(warmup_runs)}", f"--num_runs={int(runs)}",
            "--enable_op_profiling=true", f"--profiling_output_csv_file={csv_path}"]


def find_benchmark_model(target: Any, transport: Any = None) -> str | None:
    """The `benchmark_model` binary to use on a target, or None when it has none.

    `target` is the inventory entry (a `Target`, or anything with `.target` and `.transport` such as
    the orchestrator's per-target context); `transport` runs commands on it. The inventory field
    `benchmark_model` wins and must be executable there (else InfraError tool_missing, since the
    user asked for it); otherwise `command -v benchmark_model` on the target's PATH.
    """
    if transport is None and hasattr(target, "transport"):
        transport = target.transport
    config = getattr(target, "target", target)
    configured = getattr(config, "benchmark_model", None)
    if transport is None:
        raise TypeError("find_benchmark_model needs a transport to look on the target")
    name = getattr(transport, "name", "target")
    if configured:
        result = transport.run(["sh", "-c", f"test -x {shlex.quote(configured)}"], timeout=30)
        if not result.ok:
            raise InfraError(f"{name}: benchmark_model {configured!r} from the inventory is not "
                             "an executable file on the target", kind="tool_missing", phase="probe",
                             hint="fix the `benchmark_model` field of this target, or remove it "
                             "to use the one on PATH or op-split profiling")
        return configured
    result = transport.run(["sh", "-c", "command -v benchmark_model"], timeout=30)
    found = result.stdout.strip().splitlines()
    return found[0] if result.ok and found else None


def read_text(path: Path) -> str:
    """A tool output file as text (undecodable bytes replaced)."""
    return Path(path).read_bytes().decode("utf-8", errors="replace")
