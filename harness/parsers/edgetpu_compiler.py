"""`edgetpu_compiler` output → records (measurement "build", method "edgetpu_compiler").

From the operation log (the Operator / Count / Status table) and the console summary: per
operator `ops_on_edgetpu` / `ops_on_cpu` (key = operator, message = the compiler's status), totals
`ops_on_edgetpu_total`, `ops_on_cpu_total`, `edgetpu_op_share_pct`, `total_ops`,
`edgetpu_subgraphs`, `on_chip_memory_used_bytes`, `on_chip_memory_available_bytes` (older
compilers) or `on_chip_memory_remaining_bytes` (newer), `off_chip_memory_streamed_bytes`,
`input_size_bytes`, `output_size_bytes`, `compile_ms`. A model that streams parameters off-chip or
runs operators on the CPU gets `valid = False` and a hint on those records.
"""

from __future__ import annotations

import re
from typing import Any

from harness.parsers.records import ToolRecords, record

METHOD = "edgetpu_compiler"
UNITS = {"b": 1, "kib": 1024, "mib": 1024 ** 2, "gib": 1024 ** 3, "kb": 1000, "mb": 1000 ** 2,
         "gb": 1000 ** 3}
LOG_HEADER_RE = re.compile(r"^\s*Operator\s+Count\s+Status", re.MULTILINE)
LOG_ROW_RE = re.compile(r"^\s*([A-Z][A-Z0-9_]*)\s+(\d+)\s+(\S.*?)\s*$")
SIZE_RE = r"([\d.]+)\s*([KMG]i?B|B)"
SUMMARY_PATTERNS: list[tuple[str, str, str]] = [
    # (metric, regex, kind) kind: size | int | ms
    ("on_chip_memory_used_bytes", r"On-chip memory used for caching model parameters:\s*" + SIZE_RE,
     "size"),
    ("on_chip_memory_available_bytes",
     r"On-chip memory available for caching model parameters:\s*" + SIZE_RE, "size"),
    ("on_chip_memory_remaining_bytes",
     r"On-chip memory remaining for caching model parameters:\s*" + SIZE_RE, "size"),
    ("off_chip_memory_streamed_bytes",
     r"Off-chip memory used for streaming uncached model parameters:\s*" + SIZE_RE, "size"),
    ("input_size_bytes", r"^Input size:\s*" + SIZE_RE, "size"),
    ("output_size_bytes", r"^Output size:\s*" + SIZE_RE, "size"),
    ("edgetpu_subgraphs", r"Number of Edge TPU subgraphs:\s*(\d+)", "int"),
    ("total_ops", r"Total number of operations:\s*(\d+)", "int"),
    ("ops_on_edgetpu_total", r"Number of operations that will run on Edge TPU:\s*(\d+)", "int"),
    ("ops_on_cpu_total", r"Number of operations that will run on CPU:\s*(\d+)", "int"),
    ("compile_ms", r"compiled successfully in\s*(\d+)\s*ms", "ms"),
]
UNIT_OF = {"size": "B", "ms": "ms", "int": "count"}
MAPPED = "Mapped to Edge TPU"
VERSION_RE = re.compile(r"Edge TPU Compiler version\s+(\S+)")
CPU_HINT = ("operators run on the CPU: the model is split into Edge TPU and CPU parts with a "
            "round trip each time; see the operation log for the reasons")
OFFCHIP_HINT = ("parameters are streamed from off-chip memory on every inference: a smaller model "
                "(or co-compiling fewer models) keeps them in the on-chip cache")


def compiler_version(text: str) -> str | None:
    """The version in "Edge TPU Compiler version 16.0.384591198", or None."""
    m = VERSION_RE.search(text)
    return m.group(1) if m else None


def _note(text: str) -> str | None:
    version = compiler_version(text)
    return f"Edge TPU Compiler {version}" if version else None


def _record(metric: str, value: Any, unit: str | None, **extra: Any) -> dict:
    return record(measurement="build", method=METHOD, metric=metric, value=value, unit=unit, n=1,
                  **extra)


def _size_bytes(number: str, unit: str) -> int:
    return int(round(float(number) * UNITS[unit.lower()]))


def parse_operation_log(text: str) -> list[dict]:
    """Records from the compiler's operation log (the Operator / Count / Status table).

    One record per table line (`ops_on_edgetpu` or `ops_on_cpu`, key = operator, value = count,
    message = status), then the totals. [] when there is no table.
    """
    records: list[dict] = []
    in_table = False
    on_tpu = on_cpu = 0
    for line in text.splitlines():
        if LOG_HEADER_RE.match(line):
            in_table = True
            continue
        m = LOG_ROW_RE.match(line) if in_table else None
        if not m:
            continue
        op, count, status = m.group(1), int(m.group(2)), m.group(3)
        mapped = status.startswith(MAPPED)
        if mapped:
            on_tpu += count
        else:
            on_cpu += count
        records.append(_record("ops_on_edgetpu" if mapped else "ops_on_cpu", count, "count",
                               key=op, node_type=op, message=status, valid=mapped,
                               hint=None if mapped else CPU_HINT))
    if not in_table:
        return []
    note = _note(text)
    total = on_tpu + on_cpu
    records += [_record("ops_on_edgetpu_total", on_tpu, "count", message=note),
                _record("ops_on_cpu_total", on_cpu, "count", message=note, valid=on_cpu == 0,
                        hint=CPU_HINT if on_cpu else None),
                _record("edgetpu_op_share_pct", round(100.0 * on_tpu / total, 2) if total else None,
                        "%", message=note)]
    return records


def parse_summary(text: str) -> list[dict]:
    """Records from the compiler's console summary (memory, subgraphs, operations on TPU vs CPU)."""
    found: dict[str, float] = {}
    for metric, pattern, kind in SUMMARY_PATTERNS:
        m = re.search(pattern, text, re.MULTILINE)
        if m:
            found[metric] = _size_bytes(m.group(1), m.group(2)) if kind == "size" else \
                int(m.group(1))
    if not found:
        return []
    if "total_ops" in found and "ops_on_edgetpu_total" not in found and \
            "not all operations are supported" not in text:
        # a fully mapped model: the compiler prints no per-target counts
        found["ops_on_edgetpu_total"], found["ops_on_cpu_total"] = found["total_ops"], 0
    note = _note(text)
    partial = "not all operations are supported by the Edge TPU" in text or \
        found.get("ops_on_cpu_total", 0) > 0
    records: list[dict] = []
    for metric, _pattern, kind in SUMMARY_PATTERNS:
        if metric not in found:
            continue
        value = found[metric]
        extra: dict[str, Any] = {"message": note}
        if metric == "off_chip_memory_streamed_bytes":
            extra.update(valid=value == 0, hint=OFFCHIP_HINT if value else None)
        if metric in ("ops_on_cpu_total", "edgetpu_subgraphs") and partial:
            extra.update(valid=False, hint=CPU_HINT)
        records.append(_record(metric, value, UNIT_OF[kind], **extra))
    if "ops_on_edgetpu_total" in found and found.get("total_ops"):
        records.append(_record("edgetpu_op_share_pct",
                               round(100.0 * found["ops_on_edgetpu_total"] / found["total_ops"], 2),
                               "%", message=note))
    return records


def parse_compilation(stdout: str, log: str | None) -> list[dict]:
    """The console summary plus the operation log of one compilation, each total once."""
    summary = parse_summary(stdout)
    metrics = {r["metric"] for r in summary}
    return summary + [r for r in parse_operation_log(log or stdout)
                      if r["key"] is not None or r["metric"] not in metrics]


def parse(text: str) -> ToolRecords:
    """An operation log or a console summary, told apart by content."""
    if LOG_HEADER_RE.search(text):
        return ToolRecords("operation_log", parse_operation_log(text))
    return ToolRecords("summary", parse_summary(text))
