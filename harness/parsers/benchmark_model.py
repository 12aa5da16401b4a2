"""TFLite `benchmark_model` output → records.

Two kinds of output, often pasted together:

* op-profiling tables (`--enable_op_profiling=true`): sections "Profiling Info for Benchmark
  Initialization:" and "Operator-wise Profiling Info for Regular Benchmark Runs:" (titles may carry
  an `INFO: ` prefix; TF 1.x prints the tables with no title at all), each with "Run Order", "Top by
  Computation Time" (a re-sorted subset, skipped), sometimes "Top by Memory Use" (skipped), "Summary
  by node type", a "Timings (microseconds)" line and "N nodes observed". Two table layouts: the
  CSV written by `--profiling_output_csv_file` (", "-separated; a node *name* has its ", " written as
  a TAB: `Delegate/Copy (NC\\t X8):0`) and the console tables (TAB-separated right-aligned columns,
  or spaces once a terminal copy expanded the TABs). Older versions add a `[start]` column. Node
  types may contain ", " (`Copy (NC, X8)`), so rows are matched with regexes anchored on the
  numeric columns, never split with a CSV reader.
* the console lines, four generations: plain lines; lines prefixed `INFO: ` (with periodic peak
  memory and VmRSS); the "Peak memory footprint (MB): init= overall=" wording; TF 1.x's
  "Average inference timings in us: Warmup: …, Init: …, Inference: …" (or "no stats: …").

Values keep the tool's own units (µs, ms, MB, KB); `harness.results.profile_rows` makes rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
KEYVAL_RE = re.compile(rf"(\w+)=({NUM})")

SECTION_TITLES = {
    "Profiling Info for Benchmark Initialization:": "init",
    "Operator-wise Profiling Info for Regular Benchmark Runs:": "runs",
}
TABLE_KINDS = {"run order": "run_order", "summary by node type": "summary"}  # others are skipped


def _node_pattern(separator: str, start: bool) -> re.Pattern[str]:
    """A run-order row: node type, [start,] first, avg ms, %, cdf%, mem KB, times called, name."""
    sep = ", " if separator == "csv" else r"\s+"
    lead = "" if separator == "csv" else r"\s*"
    start_col = rf"(?P<start_ms>{NUM}){sep}" if start else ""
    name = r"(?P<name>.*)" if separator == "csv" else r"(?P<name>\S.*?)\s*"
    return re.compile(
        rf"^{lead}(?P<node_type>\S.*?){sep}{start_col}(?P<first_ms>{NUM}){sep}(?P<avg_ms>{NUM})"
        rf"{sep}(?P<pct>{NUM})%{sep}(?P<cdf_pct>{NUM})%{sep}(?P<mem_kb>{NUM}){sep}"
        rf"(?P<times_called>\d+){sep}{name}$")


def _summary_pattern(separator: str) -> re.Pattern[str]:
    """A "Summary by node type" row: node type, count, avg ms, avg %, cdf %, mem KB, times called."""
    sep = ", " if separator == "csv" else r"\s+"
    lead = "" if separator == "csv" else r"\s*"
    return re.compile(
        rf"^{lead}(?P<node_type>\S.*?){sep}(?P<count>\d+){sep}(?P<avg_ms>{NUM}){sep}"
        rf"(?P<pct>{NUM})%{sep}(?P<cdf_pct>{NUM})%{sep}(?P<mem_kb>{NUM}){sep}"
        rf"(?P<times_called>\d+)\s*$")


NODE_PATTERNS = {(sep, start): _node_pattern(sep, start) for sep in ("csv", "console")
                 for start in (False, True)}
SUMMARY_PATTERNS = {sep: _summary_pattern(sep) for sep in ("csv", "console")}


@dataclass
class BenchmarkModelOutput:
    """Everything read from one benchmark_model output.

    `console`: see `parse_console`; `profile`: see `parse_profile`; `unplaced`: (line number,
    line) of the non-empty lines neither recognised nor known to carry nothing; `misread`: the lines
    inside a profile table that are not rows of its layout (a layout this parser does not know).
    """

    console: dict[str, Any]
    profile: dict[str, dict[str, Any]]
    unplaced: list[tuple[int, str]] = field(default_factory=list)
    misread: list[tuple[int, str]] = field(default_factory=list)


def _number(text: str) -> float | int:
    value = float(text)
    return int(value) if value.is_integer() and re.fullmatch(r"[-+]?\d+", text) else value


def node_name(raw: str) -> str:
    """A node name as printed, with the TAB that stands for the comma restored (`NC, X8`)."""
    return raw.replace("\t", ",").strip()


def _strip_info(line: str) -> str:
    line = line.rstrip("\r\n")
    return line[6:] if line.startswith("INFO: ") else line


def _empty_section() -> dict[str, Any]:
    return {"nodes": [], "summary": [], "timings": {}, "memory": {}, "nodes_executed": None,
            "nodes_observed": None}


# --------------------------------------------------------------------------- profile tables

def _profile(lines: list[str]) -> tuple[dict[str, dict[str, Any]], set[int], list[int]]:
    """(sections, indices of the lines used, indices of table lines that are not rows)."""
    sections: dict[str, dict[str, Any]] = {}
    placed: set[int] = set()
    misread: list[int] = []
    current: dict[str, Any] | None = None
    table: str | None = None      # run_order | summary | skipped
    layout: tuple[str, bool] | None = None  # (csv | console, has a start column)
    for index, raw in enumerate(lines):
        stripped = _strip_info(raw).strip()
        if not stripped:
            continue
        if stripped in SECTION_TITLES:
            current = sections.setdefault(SECTION_TITLES[stripped], _empty_section())
            table, layout = None, None
            placed.add(index)
            continue
        if stripped.startswith("=====") and stripped.endswith("====="):
            if current is None:  # TF 1.x: tables of the regular runs with no section title
                current = sections.setdefault("runs", _empty_section())
            table = TABLE_KINDS.get(stripped.strip("= ").lower(), "skipped")
            layout = None
            placed.add(index)
            continue
        if current is None:
            continue
        if stripped.startswith("Number of nodes executed:"):
            current["nodes_executed"] = int(stripped.split(":", 1)[1])
        elif stripped.startswith("Timings (microseconds):"):
            current["timings"] = {k: _number(v) for k, v in KEYVAL_RE.findall(stripped)}
            table = None
        elif stripped.startswith("Memory (bytes):"):
            current["memory"] = {k: _number(v) for k, v in KEYVAL_RE.findall(stripped)}
        elif re.fullmatch(r"\d+ nodes observed", stripped):
            current["nodes_observed"] = int(stripped.split()[0])
            table = None
        elif table is None:
            continue  # not a profile line: the console parser may place it
        elif stripped.lower().startswith("node type,"):
            layout = ("csv", stripped.split(", ")[1].strip() == "start")
        elif stripped.lower().startswith("[node type]"):
            layout = ("console", "[start]" in stripped)
        elif layout is None or not _table_row(raw, table, layout, current):
            misread.append(index)
            continue
        placed.add(index)
    return sections, placed, misread


def _table_row(raw: str, table: str, layout: tuple[str, bool], section: dict[str, Any]) -> bool:
    """Add one table row to the section; False when the line is not a row of this layout."""
    line = raw.rstrip("\r\n")
    if table == "summary":
        m = SUMMARY_PATTERNS[layout[0]].match(line)
        if not m:
            return False
        entry = {k: _number(v) for k, v in m.groupdict().items() if k != "node_type"}
        entry["node_type"] = m.group("node_type").strip()
        section["summary"].append(entry)
        return True
    m = NODE_PATTERNS[layout].match(line)
    if not m:
        return False
    if table == "run_order":
        node = {k: _number(v) for k, v in m.groupdict().items()
                if k not in ("node_type", "name") and v is not None}
        node["node_type"] = m.group("node_type").strip()
        node["name"] = node_name(m.group("name"))
        section["nodes"].append(node)
    return True


def parse_profile(text: str) -> dict[str, dict[str, Any]]:
    """The op-profiling sections of an output (the CSV file or the console tables).

    Returns {"init": section, "runs": section} (a section is absent if the text lacks it), where a
    section is {"nodes": [{node_type, first_ms, avg_ms, pct, cdf_pct, mem_kb, times_called, name}
    (+ start_ms in older layouts)] (run order), "summary": [{node_type, count, avg_ms, pct, cdf_pct,
    mem_kb, times_called}], "timings": {count, first, curr, min, max, avg, std} (µs, as printed),
    "memory": {count, …}, "nodes_executed": int, "nodes_observed": int}.
    """
    return _profile(text.splitlines())[0]


# --------------------------------------------------------------------------- console lines

INFERENCE_LABELS = {"Init": "init_us", "First inference": "first_inference_us",
                    "Warmup (avg)": "warmup_avg_us", "Inference (avg)": "inference_avg_us"}
AVERAGE_LABELS = {"Warmup": "warmup_avg_us", "Init": "init_us", "Inference": "inference_avg_us",
                  "no stats": "inference_avg_us"}
MEMORY_LINES = {"VmRSS": "vmrss_mb", "RssAnnon": "rss_anon_mb", "RssAnon": "rss_anon_mb",
                "RssFile + RssShmem": "rss_file_shmem_mb"}
# lines with one value: (pattern, key); numbers become int or float, graph and delegate stay text
SINGLE_VALUES = [(re.compile(pattern), key) for pattern, key in (
    (rf"Overall peak memory footprint \(MB\) via periodic monitoring: ({NUM})", "peak_monitored_mb"),
    (rf"The input model file size \(MB\): ({NUM})", "model_size_mb"),
    (rf"Initialized session in ({NUM})ms", "init_session_ms"),
    (r"(?:Num threads|#threads used for CPU inference): \[(\d+)\]", "threads"),
    (r"Graph: \[(.*)\]", "graph"),
    (r"Created TensorFlow Lite (\S+) delegate", "delegate"),
)]
# lines that carry nothing to measure: parameter echoes ("Num threads: [4]"), banners, notes
QUIET_RE = re.compile(r"^(?:[^:]+: \[.*\]|STARTING!|Loaded model .*|resolved reporter|Note: .*|"
                      r"Created TensorFlow Lite .*|Initialized TensorFlow Lite runtime\.?|"
                      r"Memory \(bytes\): .*|Number of nodes executed: \d+)$")


def _labelled(values: str, labels: dict[str, str]) -> dict[str, float | int]:
    parts = dict(part.split(":", 1) for part in values.split(", ") if ":" in part)
    return {key: _number(parts[label].strip()) for label, key in labels.items() if label in parts}


def _console(lines: list[str], skip: set[int] | None = None) -> tuple[dict[str, Any], set[int]]:
    """(console figures, indices of the lines used); `skip`: profile-table lines, not looked at."""
    skip = skip or set()
    nonempty = [line for i, line in enumerate(lines) if line.strip() and i not in skip]
    # the plain generation still prints the odd "INFO: Created … delegate" line
    info = sum(1 for line in nonempty if line.startswith("INFO: ")) * 2 > len(nonempty)
    out: dict[str, Any] = {"memory": {}}
    placed: set[int] = set()
    blocks: list[dict[str, Any]] = []
    averages = False
    for index, raw in enumerate(lines):
        line = _strip_info(raw).strip()
        if not line or index in skip:
            continue
        placed.add(index)
        if line.startswith("Running benchmark for at least"):
            continue
        if line.startswith("count="):  # a warm-up or regular-runs block
            blocks.append({k: _number(v) for k, v in KEYVAL_RE.findall(line)})
            continue
        m = re.match(r"Inference timings in us: (.*)$", line)
        if m:
            out.update(_labelled(m.group(1), INFERENCE_LABELS))
            continue
        m = re.match(r"Average inference timings in us: (.*)$", line)
        if m:  # TF 1.x
            out.update(_labelled(m.group(1), AVERAGE_LABELS))
            averages = True
            continue
        m = re.match(rf"(Memory footprint delta from the start of the tool|Peak memory footprint) "
                     rf"\(MB\): init=({NUM}) overall=({NUM})", line)
        if m:
            prefix = "footprint" if m.group(1).startswith("Memory") else "peak"
            out["memory"][f"{prefix}_init_mb"] = _number(m.group(2))
            out["memory"][f"{prefix}_overall_mb"] = _number(m.group(3))
            continue
        m = re.match(rf"[-+] (VmRSS|RssAnnon|RssAnon|RssFile \+ RssShmem)\s*: ({NUM}) MB", line)
        if m:
            out["memory"][MEMORY_LINES[m.group(1)]] = _number(m.group(2))
            continue
        single = next(((key, m.group(1)) for pattern, key in SINGLE_VALUES
                       if (m := pattern.match(line))), None)
        if single:
            key, text = single
            value = text if key in ("graph", "delegate") else _number(text)
            if key == "peak_monitored_mb":
                out["memory"][key] = value
            else:
                out[key] = value
            continue
        if not QUIET_RE.match(line):
            placed.discard(index)
    if blocks:
        if len(blocks) >= 2:
            out["warmup"], out["runs"] = blocks[0], blocks[-1]
        else:
            out["runs"] = blocks[0]
    out["generation"] = ("peak_footprint" if "peak_init_mb" in out["memory"] else
                         "average_timings" if averages else
                         "info_prefix" if info else "plain")
    return out, placed


def parse_console(text: str) -> dict[str, Any]:
    """The console lines of an output (any of the four generations).

    Returns a dict with whatever the output holds:
    - "init_us", "first_inference_us", "warmup_avg_us", "inference_avg_us": the
      "Inference timings in us" line, or TF 1.x's "Average inference timings in us" (Warmup, Init,
      Inference or "no stats"), kept as separate metrics;
    - "warmup" and "runs": {count, first, curr, min, max, avg, std} (µs) from the `count=` lines
      (first such block = warm-up, last = runs; a single block = runs);
    - "memory": {"footprint_init_mb", "footprint_overall_mb"} ("Memory footprint delta from the start
      of the tool"), or {"peak_init_mb", "peak_overall_mb"} (old "Peak memory footprint"),
      "peak_monitored_mb" ("Overall peak memory footprint via periodic monitoring"), "vmrss_mb",
      "rss_anon_mb", "rss_file_shmem_mb";
    - "model_size_mb", "init_session_ms", "threads", "graph", "delegate" when printed;
    - "generation": "plain" | "info_prefix" | "peak_footprint" | "average_timings".
    """
    lines = text.splitlines()
    _, placed, misread = _profile(lines)
    return _console(lines, placed | set(misread))[0]


# --------------------------------------------------------------------------- one output

def parse(text: str) -> BenchmarkModelOutput:
    """Profile tables and console lines of one output, and the lines neither could place."""
    lines = text.splitlines()
    profile, profile_lines, misread = _profile(lines)
    console, console_lines = _console(lines, profile_lines | set(misread))
    used = profile_lines | console_lines | set(misread)
    unplaced = [(i + 1, line.strip()) for i, line in enumerate(lines)
                if line.strip() and i not in used]
    return BenchmarkModelOutput(console, profile, unplaced,
                                [(i + 1, lines[i].strip()) for i in misread])
