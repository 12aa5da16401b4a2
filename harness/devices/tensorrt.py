"""Jetson / TensorRT targets (`kind: tensorrt`): the ONNX export of the Keras model, built into an
engine and timed by `trtexec` on the device.

Variants: convert_only → fp32 engine, f16 → `--fp16`, w8_a8 → `--int8` (TensorRT's own int8, from
the same float ONNX). Engines are cached on the device per ONNX hash, precision and TensorRT
version (`engines/<onnx sha>-<precision>-trt<version>.engine`).

Rows (method "trtexec"): trtexec's summary and per-layer profile as `harness.parsers.trtexec`
reads them, and the raw per-iteration latencies of `--exportTimes` → the same statistics as every
other target (`median_ms`, `p90_ms`, … via harness.stats, method "trtexec_times"); GPU compute time
per iteration → `gpu_median_ms`, `gpu_p99_ms`, ….
"""

from __future__ import annotations

import math
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import stats
from harness.artifacts import Artifact
from harness.artifacts.onnx_export import export_for, onnx_artifact
from harness.config import Target
from harness.devices.base import DeviceKind, Rows, TargetContext
from harness.devices.tools import probe_tool
from harness.errors import HarnessError, InfraError
from harness.parsers import trtexec as parser
from harness.results.profile_rows import onnx_export_rows
from harness.results.rows import LATENCY_METRICS, rows_from_records
from harness.results.schema import failure_row, make_row
from harness.transport import Transport

if TYPE_CHECKING:
    from harness.plan import Job

METHOD = parser.METHOD
PRECISION = {"convert_only": "fp32", "f16": "fp16", "w8_a8": "int8"}
PRECISION_FLAG = {"fp32": [], "fp16": ["--fp16"], "int8": ["--int8"]}
DEFAULT_TRTEXEC = "/usr/src/tensorrt/bin/trtexec"
TRTEXEC_FIX = ("install TensorRT with JetPack on the Jetson (`sudo apt-get install nvidia-jetpack`, "
               f"which puts trtexec at {DEFAULT_TRTEXEC}) and set `trtexec:` in inventory.yaml to "
               "its path")
INT8_HINT = ("--int8 without a calibration cache: TensorRT uses placeholder dynamic ranges, so "
             "the latency is representative but the outputs are not")


def times_rows(json_text: str) -> list[dict]:
    """The raw per-iteration latencies of `--exportTimes` → the same statistics as every target.

    Host latency → `median_ms`, `p90_ms`, `p99_ms`, `iqr_ms`, `mean_ms`, `min_ms` and `outliers`
    (with the validity verdict); GPU compute → the same names prefixed `gpu_` (`gpu_median_ms`,
    …; the summary's own figures are `gpu_compute_*`).
    """
    series = parser.times_samples(json_text)
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


def trtexec_version(transport: Transport, trtexec: str) -> str:
    """TensorRT version from trtexec's banner ("unknown" when it prints none)."""
    res = transport.run([trtexec, "--help"], timeout=60)
    return parser.parse_version(res.stdout + res.stderr) or "unknown"


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


def command_for(ctx: TargetContext, job: "Job", onnx_remote: str, engine: str, precision: str,
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


def _run_trtexec(ctx: TargetContext, job: "Job", artifact: Artifact, trtexec: str,
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
    rows = rows_from_records(parser.parse_summary(res.stdout), fields)
    series: list[dict] = []
    for name, read in ((f"{job.job_id}.times.json", times_rows),
                       (f"{job.job_id}.profile.json", parser.parse_profile_json)):
        try:
            ctx.transport.get(f"results/{name}", local / name)
        except (OSError, InfraError):
            continue
        text = (local / name).read_text()
        rows += rows_from_records(read(text), fields)
        if read is times_rows:
            samples = parser.times_samples(text)["latency"]
            series.append({k: fields.get(k) for k in ("target", "model", "variant", "runtime",
                                                      "artifact_sha256")}
                          | {"threads": None, "measurement": "latency", "metric": "median_ms",
                             "unit": "ms", "samples": [round(float(s), 5) for s in samples]})
    rows.append(make_row(**fields, measurement="build", metric="engine_cached",
                         value=int(cached), unit="bool", method=METHOD, key=engine,
                         hint=INT8_HINT if precision == "int8" else None))
    return rows, series


class TensorRtKind(DeviceKind):
    """`kind: tensorrt`: engines built from the ONNX export, timed by trtexec on the device."""

    name = "tensorrt"

    def unsupported(self, target: Target, variant: str) -> str | None:
        """TensorRT builds fp32, fp16 and int8 engines from the float ONNX export."""
        if variant in PRECISION:
            return None
        if variant == "as_is":
            return ("a .tflite file is measured as is; TensorRT builds engines from the ONNX "
                    "export of a Keras model")
        return (f"{variant} is a TFLite quantization; TensorRT runs convert_only (fp32), f16 "
                "(--fp16) and w8_a8 (--int8) from the ONNX model")

    def prepare(self, target: Target, artifact: Artifact, cache: Path) -> Artifact:
        """The ONNX export of the Keras source (checked with ONNX Runtime), shared by all
        precisions."""
        prepared = onnx_artifact(artifact, export_for(artifact, cache))
        prepared.extra["precision"] = PRECISION[artifact.variant]
        return prepared

    def build_rows(self, artifact: Artifact, fields: dict[str, Any]) -> Rows:
        """The ONNX check (max abs difference vs Keras) and size."""
        return onnx_export_rows(artifact.extra["onnx"], fields)

    def probe(self, ctx: TargetContext) -> dict[str, Any]:
        """trtexec: the inventory's path (or the JetPack default), else the one on PATH."""
        trtexec = probe_tool(ctx.transport, ctx.target.trtexec or DEFAULT_TRTEXEC)
        if trtexec is None and ctx.target.trtexec is None:
            trtexec = probe_tool(ctx.transport, "trtexec")
        return {"trtexec": trtexec}

    def execute(self, ctx: TargetContext, job: "Job", artifact: Artifact) -> tuple[Rows, Rows]:
        """Build rows, then trtexec on the device (a missing trtexec is a tool_missing row)."""
        fields = dict(ctx.fields, model=artifact.model, variant=artifact.variant,
                      artifact_sha256=artifact.sha256, runtime="tensorrt")
        rows = self.build_rows(artifact, fields)
        trtexec = self.probed(ctx)["trtexec"]
        if trtexec is None:
            configured = ctx.target.trtexec or DEFAULT_TRTEXEC
            where = "`trtexec:` in inventory.yaml" if ctx.target.trtexec else "the default path"
            return rows + [failure_row(
                measurement="latency", error_kind="tool_missing", phase="probe",
                message=f"{ctx.name}: trtexec not found at {configured} ({where}) nor on PATH; "
                        f"fix: {TRTEXEC_FIX}", **fields)], []
        try:
            measured, series = _run_trtexec(ctx, job, artifact, trtexec, fields)
        except HarnessError as exc:
            return rows + [failure_row(measurement="latency",
                                       error_kind=getattr(exc, "kind", "infra"), message=str(exc),
                                       phase=getattr(exc, "phase", None) or "run", **fields)], []
        return rows + measured, series
