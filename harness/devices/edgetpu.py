"""Coral Edge TPU targets (`kind: edgetpu`): the full-int8 model with int8 I/O, compiled on the
controller by `edgetpu_compiler`, run on the device by the standard runner with the
`libedgetpu.so.1` delegate (`targets/delegate_runner.py`).

Rows (measurement "build", method "edgetpu_compiler") from the compiler's operation log and summary:
per operator `ops_on_edgetpu` / `ops_on_cpu` (key = operator, message = the compiler's status),
totals `ops_on_edgetpu_total`, `ops_on_cpu_total`, `edgetpu_op_share_pct`, `total_ops`,
`edgetpu_subgraphs`, `on_chip_memory_used_bytes`, `on_chip_memory_available_bytes` (older
compilers) or `on_chip_memory_remaining_bytes` (newer), `off_chip_memory_streamed_bytes`,
`input_size_bytes`, `output_size_bytes`, `compile_ms`. A model that streams parameters off-chip or
runs operators on the CPU gets `valid = False` and a hint on those rows.

Latency on the device is the `invoke()` time of the compiled model (the standard latency rows,
delegate "edgetpu"); the Python loop rate with pre-processing is a separate metric
(`loop_rate_hz`, method "python_loop").
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.artifacts import Artifact
from harness.config import Target
from harness.errors import HarnessError, InfraError
from harness.results.schema import failure_row, make_row

if TYPE_CHECKING:
    from harness.orchestrate import TargetContext
    from harness.plan import Job

METHOD = "edgetpu_compiler"
DELEGATE_LIBRARY = "libedgetpu.so.1"
UNITS = {"b": 1, "kib": 1024, "mib": 1024 ** 2, "gib": 1024 ** 3, "kb": 1000, "mb": 1000 ** 2,
         "gb": 1000 ** 3}
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
MAPPED = "Mapped to Edge TPU"
VERSION_RE = re.compile(r"Edge TPU Compiler version\s+(\S+)")
CPU_HINT = ("operators run on the CPU: the model is split into Edge TPU and CPU parts with a "
            "round trip each time; see the operation log for the reasons")
OFFCHIP_HINT = ("parameters are streamed from off-chip memory on every inference: a smaller model "
                "(or co-compiling fewer models) keeps them in the on-chip cache")


def _size_bytes(number: str, unit: str) -> int:
    return int(round(float(number) * UNITS[unit.lower()]))


def _row(metric: str, value: Any, unit: str | None, **extra: Any) -> dict:
    return make_row(measurement="build", method=METHOD, metric=metric, value=value, unit=unit,
                    n=1, **extra)


def parse_edgetpu_log(text: str) -> list[dict]:
    """Rows from the compiler's operation log (the Operator / Count / Status table).

    One row per table line (`ops_on_edgetpu` or `ops_on_cpu`, key = operator, value = count,
    message = status), then the totals. [] when there is no table.
    """
    version = VERSION_RE.search(text)
    rows: list[dict] = []
    in_table = False
    on_tpu = on_cpu = 0
    for line in text.splitlines():
        if re.match(r"^\s*Operator\s+Count\s+Status", line):
            in_table = True
            continue
        if not in_table:
            continue
        m = LOG_ROW_RE.match(line)
        if not m:
            continue
        op, count, status = m.group(1), int(m.group(2)), m.group(3)
        mapped = status.startswith(MAPPED)
        if mapped:
            on_tpu += count
        else:
            on_cpu += count
        rows.append(_row("ops_on_edgetpu" if mapped else "ops_on_cpu", count, "count", key=op,
                         node_type=op, message=status, valid=mapped,
                         hint=None if mapped else CPU_HINT))
    if not in_table:
        return []
    note = f"Edge TPU Compiler {version.group(1)}" if version else None
    total = on_tpu + on_cpu
    rows += [_row("ops_on_edgetpu_total", on_tpu, "count", message=note),
             _row("ops_on_cpu_total", on_cpu, "count", message=note, valid=on_cpu == 0,
                  hint=CPU_HINT if on_cpu else None),
             _row("edgetpu_op_share_pct", round(100.0 * on_tpu / total, 2) if total else None, "%",
                  message=note)]
    return rows


def parse_edgetpu_summary(text: str) -> list[dict]:
    """Rows from the compiler's console summary (memory, subgraphs, operations on TPU vs CPU)."""
    rows: list[dict] = []
    found: dict[str, float] = {}
    for metric, pattern, kind in SUMMARY_PATTERNS:
        m = re.search(pattern, text, re.MULTILINE)
        if not m:
            continue
        if kind == "size":
            value: float = _size_bytes(m.group(1), m.group(2))
            unit = "B"
        elif kind == "ms":
            value, unit = int(m.group(1)), "ms"
        else:
            value, unit = int(m.group(1)), "count"
        found[metric] = value
    if not found:
        return []
    if "total_ops" in found and "ops_on_edgetpu_total" not in found and \
            "not all operations are supported" not in text:
        # a fully mapped model: the compiler prints no per-target counts
        found["ops_on_edgetpu_total"], found["ops_on_cpu_total"] = found["total_ops"], 0
    version = VERSION_RE.search(text)
    note = f"Edge TPU Compiler {version.group(1)}" if version else None
    partial = "not all operations are supported by the Edge TPU" in text or \
        found.get("ops_on_cpu_total", 0) > 0
    for metric, pattern, kind in SUMMARY_PATTERNS:
        if metric not in found:
            continue
        value = found[metric]
        unit = "B" if kind == "size" else ("ms" if kind == "ms" else "count")
        extra: dict[str, Any] = {"message": note}
        if metric == "off_chip_memory_streamed_bytes":
            extra.update(valid=value == 0, hint=OFFCHIP_HINT if value else None)
        if metric in ("ops_on_cpu_total", "edgetpu_subgraphs") and partial:
            extra.update(valid=False, hint=CPU_HINT)
        rows.append(_row(metric, value, unit, **extra))
    if "ops_on_edgetpu_total" in found and found.get("total_ops"):
        rows.append(_row("edgetpu_op_share_pct",
                         round(100.0 * found["ops_on_edgetpu_total"] / found["total_ops"], 2), "%",
                         message=note))
    return rows


# --------------------------------------------------------------------------- device kind

def unsupported(target: Target, variant: str) -> str | None:
    """The Edge TPU runs full-integer models only."""
    if variant == "w8_a8":
        return None
    if variant == "as_is":
        return ("a .tflite file is measured as is; the Edge TPU needs the w8_a8 variant of a "
                "Keras model (int8 I/O, compiled by edgetpu_compiler)")
    return f"the Edge TPU runs only full-int8 models (w8_a8), not {variant}"


def prepare(target: Target, artifact: Artifact, cache: Path) -> Artifact:
    """The int8-I/O model (always built) and, where the compiler exists, the compiled model.

    A missing compiler does not raise here: the built int8 model and the error go into
    `extra` and `execute` reports both (the build rows, then the failure row).
    """
    from harness.artifacts.edgetpu_compile import compile_model, int8_io_model, require_compiler

    assert artifact.path is not None
    model = int8_io_model(artifact.path, cache)
    extra: dict[str, Any] = {"int8_model": str(model.path), "int8_sha256": model.sha256,
                             "int8_size_bytes": model.size_bytes,
                             "input_shape": model.input_shape}
    prepared = Artifact(artifact.model, artifact.variant, path=model.path, sha256=model.sha256,
                        size_bytes=model.size_bytes, source=artifact.source, eval=artifact.eval,
                        cached=model.cached, extra=extra)
    try:
        compiler = require_compiler()
        compiled = compile_model(model, cache, compiler)
    except HarnessError as exc:
        extra["deferred_error"] = exc
        return prepared
    extra.update(compiled=True, compiler_version=compiled.compiler_version,
                 compiler_argv=compiled.argv, compiler_stdout=compiled.stdout,
                 compiler_log=compiled.log)
    prepared.path, prepared.sha256, prepared.size_bytes = (compiled.path, compiled.sha256,
                                                           compiled.size_bytes)
    return prepared


def build_rows(artifact: Artifact, fields: dict[str, Any]) -> list[dict]:
    """Rows for what prepare() built: the int8 model's size and the compiler's report."""
    extra = artifact.extra
    rows = [make_row(**fields, measurement="size", metric="int8_model_bytes",
                     value=extra.get("int8_size_bytes"), unit="B", n=1, method="int8_io",
                     message=f"int8 input/output, input shape {extra.get('input_shape')}")]
    if extra.get("compiled"):
        rows.append(make_row(**fields, measurement="size", metric="size_bytes",
                             value=artifact.size_bytes, unit="B", n=1, method=METHOD))
        parsed = parse_edgetpu_summary(extra.get("compiler_stdout", ""))
        log_rows = parse_edgetpu_log(extra.get("compiler_log") or extra.get("compiler_stdout", ""))
        summary_metrics = {r["metric"] for r in parsed}
        parsed += [r for r in log_rows if r["key"] is not None or r["metric"] not in summary_metrics]
        for row in parsed:
            row.update({k: v for k, v in fields.items() if row.get(k) is None})
        rows += parsed
    return rows


def _deferred_failure(artifact: Artifact, fields: dict[str, Any]) -> dict | None:
    exc = artifact.extra.get("deferred_error")
    if exc is None:
        return None
    return failure_row(measurement="build", error_kind=getattr(exc, "kind", "user_error"),
                       message=str(exc), phase=getattr(exc, "phase", None) or "build", **fields)


def execute(ctx: "TargetContext", job: "Job", artifact: Artifact) -> tuple[list[dict], list[dict]]:
    """Build rows, then (compiled model + device) the runner with the Edge TPU delegate."""
    from harness.devices.cpu import collect_rows, run_runner
    from harness.results import rows as result_rows

    fields = dict(ctx.fields, model=artifact.model, variant=artifact.variant,
                  artifact_sha256=artifact.sha256, runtime=job.runtime)
    rows = build_rows(artifact, fields)
    failure = _deferred_failure(artifact, fields)
    if failure is not None:
        return rows + [failure], []
    extra: dict[str, Any] = {"loop_rate": True}
    if ctx.target.accelerator in (None, "edgetpu"):  # a compiled model needs the Edge TPU delegate
        extra["delegate"] = {"name": "edgetpu", "library": DELEGATE_LIBRARY}
    result, outputs = run_runner(ctx, job, artifact, extra)
    fields = result_rows.base_fields(ctx.fields, artifact, result)
    fields.setdefault("runtime", job.runtime)
    ctx.record_environment(result)
    if result.get("status") != "ok":
        return rows + [result_rows.error_row(result, fields)], []
    measured, series = collect_rows(ctx, result, outputs, artifact, fields)
    return rows + measured + loop_rate_rows(result, fields), series


def loop_rate_rows(result: dict, fields: dict[str, Any]) -> list[dict]:
    """The Python loop rate (set input + invoke + read output), kept apart from invoke() latency."""
    loop = result.get("loop_rate")
    if not loop:
        return []
    common = dict(fields, measurement="latency", method="python_loop", threads=loop.get("threads"),
                  n=loop.get("iterations"))
    return [make_row(**common, metric="loop_rate_hz", value=loop["rate_hz"], unit="Hz",
                     hint="end-to-end Python loop rate with pre-processing; not kernel latency"),
            make_row(**common, metric="loop_ms", value=1e3 / loop["rate_hz"] if loop["rate_hz"]
                     else None, unit="ms")]


def missing_device_error(target_name: str) -> InfraError:
    """The error for a target without the Edge TPU runtime or device (used by tests and docs)."""
    return InfraError(f"{target_name}: {DELEGATE_LIBRARY} cannot be loaded", kind="device_missing",
                      phase="run", hint="install the Edge TPU runtime (sudo apt-get install "
                                        "libedgetpu1-std from the Coral apt repository) and plug "
                                        "in the Coral device")
