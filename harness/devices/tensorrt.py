"""Jetson / TensorRT targets (`kind: tensorrt`): the ONNX export of the Keras model, built into an
engine and timed by `trtexec` on the device.

Variants: convert_only → fp32 engine, f16 → fp16, w8_a8 → int8. How the precision reaches
TensorRT depends on trtexec's major version (read from its banner, `&&&& RUNNING TensorRT.trtexec
[TensorRT v100300]`):

* TensorRT < 11 (weak typing): the float ONNX with `--fp16` / `--int8` (TensorRT's own int8
  without a calibration cache: placeholder dynamic ranges, so every int8 row says so); the
  per-layer profile in trtexec's own separate run (`--exportProfile --separateProfileRun`).
* TensorRT >= 11 (strongly typed only: `--fp16` and `--int8` are rejected as unknown options):
  the ONNX model carries the precision (`harness.artifacts.onnx_export.typed_onnx`: fp16 weights,
  or int8 Q/DQ nodes calibrated on the evaluation windows); `--includeDataTransfers`, since data
  transfers are off by default there and "Latency" would silently be GPU time; the per-layer
  profile in a second trtexec run of the cached engine (`--separateProfileRun` is a no-op).

Engines are cached on the device per ONNX hash, precision and TensorRT version
(`engines/<onnx sha>-<precision>-trt<version>.engine`).

Rows (method "trtexec"): trtexec's summary and per-layer profile as `harness.parsers.trtexec`
reads them from stdout and stderr together (its warnings, such as the GPU-time stability warning,
go to stderr), and the raw per-iteration latencies of `--exportTimes` → the same statistics as
every other target (`median_ms`, `p90_ms`, … via harness.stats, method "trtexec_times"); GPU
compute time per iteration → `gpu_median_ms`, `gpu_p99_ms`, ….
"""

from __future__ import annotations

import math
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import stats
from harness.artifacts import Artifact
from harness.artifacts.onnx_export import TYPED, export_for, onnx_artifact, typed_onnx
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
PRECISION_FLAG = {"fp32": [], "fp16": ["--fp16"], "int8": ["--int8"]}  # TensorRT < 11 only
STRONGLY_TYPED_MAJOR = 11
DEFAULT_TRTEXEC = "/usr/src/tensorrt/bin/trtexec"
TRTEXEC_FIX = ("install TensorRT with JetPack on the Jetson (`sudo apt-get install nvidia-jetpack`, "
               f"which puts trtexec at {DEFAULT_TRTEXEC}) and set `trtexec:` in inventory.yaml to "
               "its path")
INT8_HINT = ("--int8 without a calibration cache: TensorRT uses placeholder dynamic ranges, so "
             "the latency is representative but the outputs are not")
INT8_NOISE_HINT = ("int8 Q/DQ calibrated on seeded noise (the artifact has no evaluation data): "
                   "the latency is representative but the outputs are not")


def strongly_typed(major: int | None) -> bool:
    """TensorRT >= 11: no precision flags; the ONNX model's types decide."""
    return major is not None and major >= STRONGLY_TYPED_MAJOR


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


def version_major(version: str | None) -> int | None:
    """10 for "10.3.0"; None when unknown."""
    try:
        return int((version or "").split(".")[0])
    except ValueError:
        return None


def engine_name(onnx_sha: str, precision: str, trt_version: str) -> str:
    return f"engines/{onnx_sha[:16]}-{precision}-trt{trt_version}.engine"


def trtexec_command(trtexec: str, onnx: str, engine: str, precision: str, *, warmup_ms: int,
                    duration_s: int, iterations: int, times: str, profile: str | None,
                    build: bool, major: int | None = None) -> list[str]:
    """The timing run (build and cache the engine, or load the cached one), for trtexec `major`.

    Below 11: the precision flag, and the per-layer profile in trtexec's own separate run. From
    11: no precision flag (the ONNX is typed), data transfers included, no profile in this run
    (`profile_command`).
    """
    source = [f"--onnx={onnx}", f"--saveEngine={engine}"] if build else [f"--loadEngine={engine}"]
    typed = strongly_typed(major)
    argv = [trtexec, *source, *([] if typed else PRECISION_FLAG[precision]),
            f"--warmUp={warmup_ms}", f"--duration={duration_s}", f"--iterations={iterations}",
            f"--exportTimes={times}"]
    if typed:
        argv.append("--includeDataTransfers")
    elif profile:
        argv += [f"--exportProfile={profile}", "--separateProfileRun"]
    return argv


def profile_command(trtexec: str, engine: str, profile: str, *, warmup_ms: int,
                    iterations: int) -> list[str]:
    """TensorRT >= 11: the per-layer profile in its own run of the cached engine, so profiling
    never slows the timed run (`--separateProfileRun` is a no-op there)."""
    return [trtexec, f"--loadEngine={engine}", f"--warmUp={warmup_ms}", "--duration=0",
            f"--iterations={iterations}", f"--exportProfile={profile}"]


def _timing(ctx: TargetContext) -> tuple[int, int, int]:
    """(warm-up ms, duration s, iterations) from the suite's latency spec."""
    spec = ctx.suite.measurements.latency
    warmup_ms = int(round(1000 * (spec.warmup_seconds if spec else 0.2))) or 200
    duration_s = max(1, math.ceil(spec.min_seconds if spec else 3))
    iterations = spec.runs if spec else 10
    return warmup_ms, duration_s, iterations


def command_for(ctx: TargetContext, job: "Job", onnx_remote: str, engine: str, precision: str,
                build: bool, trtexec: str, major: int | None = None) -> list[str]:
    """trtexec argv from the suite's latency spec."""
    warmup_ms, duration_s, iterations = _timing(ctx)
    return trtexec_command(trtexec, onnx_remote, engine, precision, warmup_ms=warmup_ms,
                           duration_s=duration_s, iterations=iterations,
                           times=f"results/{job.job_id}.times.json",
                           profile=f"results/{job.job_id}.profile.json", build=build, major=major)


def _onnx_for(artifact: Artifact, precision: str, major: int | None) -> tuple[Path, str, dict]:
    """(ONNX file, its sha256, its typed meta or {}) that this TensorRT version builds from."""
    assert artifact.path is not None and artifact.sha256 is not None
    if precision == "fp32" or not strongly_typed(major):
        return artifact.path, artifact.sha256, {}
    typed = artifact.extra.get("typed", {}).get(precision)
    if typed is None:
        error = artifact.extra.get("typed_error")
        raise InfraError(f"TensorRT {major} builds strongly typed networks only and needs the "
                         f"{precision} ONNX model, which was not built: "
                         f"{error or 'unknown error'}",
                         kind=getattr(error, "kind", "compile_failed"), phase="build",
                         hint="pip install 'harness[onnx]' (onnx, onnxruntime) on the controller")
    return Path(typed["path"]), typed["sha256"], typed


def _add_hint(rows: list[dict], hint: str) -> list[dict]:
    for row in rows:
        row["hint"] = hint if not row.get("hint") else f"{row['hint']}; {hint}"
    return rows


def _fetch(ctx: TargetContext, name: str) -> str | None:
    local = ctx.local_dir / "results" / name
    try:
        ctx.transport.get(f"results/{name}", local)
    except (OSError, InfraError):
        return None
    return local.read_text()


def _run_trtexec(ctx: TargetContext, job: "Job", artifact: Artifact, trtexec: str,
                 version: str, fields: dict[str, Any]) -> tuple[list[dict], list[dict]]:
    major = version_major(version)
    precision = artifact.extra.get("precision", PRECISION[artifact.variant])
    onnx_path, onnx_sha, typed = _onnx_for(artifact, precision, major)
    onnx_remote = ctx.push(onnx_path, onnx_sha, "onnx")
    engine = engine_name(onnx_sha, precision, version)
    ctx.transport.run(["mkdir", "-p", "engines", "results"], timeout=30)
    cached = ctx.transport.run(["test", "-s", engine], timeout=30).ok
    argv = command_for(ctx, job, onnx_remote, engine, precision, not cached, trtexec, major)
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
    output = res.stdout + "\n" + res.stderr  # the stability warning is on stderr
    (local / f"{job.job_id}.trtexec.txt").write_text(output)
    rows = rows_from_records(parser.parse_summary(output), fields)
    series: list[dict] = []
    times = _fetch(ctx, f"{job.job_id}.times.json")
    if times is not None:
        rows += rows_from_records(times_rows(times), fields)
        samples = parser.times_samples(times)["latency"]
        series.append({k: fields.get(k) for k in ("target", "model", "variant", "runtime",
                                                  "artifact_sha256")}
                      | {"threads": None, "measurement": "latency", "metric": "median_ms",
                         "unit": "ms", "samples": [round(float(s), 5) for s in samples]})
    rows += _profile_rows(ctx, job, trtexec, engine, major, fields)
    rows.append(make_row(**fields, measurement="build", metric="engine_cached",
                         value=int(cached), unit="bool", method=METHOD, key=engine,
                         message=f"built from {onnx_path.name}" + (
                             f" ({precision} ONNX, calibration: {typed['calibration']})"
                             if typed.get("calibration") else "")))
    if precision == "int8":
        hint = INT8_HINT if not typed else (
            INT8_NOISE_HINT if "noise" in (typed.get("calibration") or "") else None)
        if hint:
            _add_hint(rows, hint)
    return rows, series


def _profile_rows(ctx: TargetContext, job: "Job", trtexec: str, engine: str, major: int | None,
                  fields: dict[str, Any]) -> list[dict]:
    name = f"{job.job_id}.profile.json"
    if strongly_typed(major):
        warmup_ms, _, iterations = _timing(ctx)
        argv = profile_command(trtexec, engine, f"results/{name}", warmup_ms=warmup_ms,
                               iterations=iterations)
        res = ctx.transport.run(argv, timeout=ctx.target.command_timeout)
        if not res.ok:
            tail = " | ".join((res.stdout + res.stderr).strip().splitlines()[-3:])
            return [failure_row(measurement="profile", error_kind="trtexec_failed", phase="run",
                                message=f"{ctx.name}: trtexec profile run failed (exit "
                                        f"{res.exit_code}): {tail}", method=METHOD, **fields)]
    text = _fetch(ctx, name)
    return rows_from_records(parser.parse_profile_json(text), fields) if text else []


class TensorRtKind(DeviceKind):
    """`kind: tensorrt`: engines built from the ONNX export, timed by trtexec on the device."""

    name = "tensorrt"

    def unsupported(self, target: Target, variant: str) -> str | None:
        """TensorRT builds fp32, fp16 and int8 engines from the ONNX export."""
        if variant in PRECISION:
            return None
        if variant == "as_is":
            return ("a .tflite file is measured as is; TensorRT builds engines from the ONNX "
                    "export of a Keras model")
        return (f"{variant} is a TFLite quantization; TensorRT runs convert_only (fp32), f16 "
                "(fp16) and w8_a8 (int8) from the ONNX model")

    def prepare(self, target: Target, artifact: Artifact, cache: Path) -> Artifact:
        """The float ONNX export of the Keras source (checked with ONNX Runtime), and for f16 and
        w8_a8 the typed ONNX model TensorRT >= 11 needs (an error there is kept for execute: only
        TensorRT >= 11 needs it)."""
        export = export_for(artifact, cache)
        prepared = onnx_artifact(artifact, export)
        precision = PRECISION[artifact.variant]
        prepared.extra["precision"] = precision
        if precision in TYPED:
            try:
                typed = typed_onnx(export, precision, cache,
                                   artifact.eval.inputs if artifact.eval is not None else None)
                prepared.extra["typed"] = {precision: typed.meta()}
            except HarnessError as exc:
                prepared.extra["typed_error"] = exc
        return prepared

    def build_rows(self, artifact: Artifact, fields: dict[str, Any]) -> Rows:
        """The ONNX check (max abs difference vs Keras) and size; the typed ONNX model's size and
        difference from the float export."""
        rows = onnx_export_rows(artifact.extra["onnx"], fields)
        for precision, meta in artifact.extra.get("typed", {}).items():
            common = dict(fields, key=precision, n=1)
            rows.append(make_row(**common, measurement="size", method="onnx", unit="B",
                                 metric="typed_onnx_bytes", value=meta["size_bytes"],
                                 message="the ONNX model TensorRT >= 11 builds from"))
            rows.append(make_row(**common, measurement="build", method="onnxruntime_check",
                                 unit="abs", metric="typed_onnx_max_abs_diff",
                                 value=meta["max_abs_diff"],
                                 message=f"vs the float ONNX; calibration: {meta['calibration']}"
                                 if meta.get("calibration") else "vs the float ONNX"))
        return rows

    def probe(self, ctx: TargetContext) -> dict[str, Any]:
        """trtexec (the inventory's path, or the JetPack default, else the one on PATH) and the
        TensorRT version its banner names."""
        trtexec = probe_tool(ctx.transport, ctx.target.trtexec or DEFAULT_TRTEXEC)
        if trtexec is None and ctx.target.trtexec is None:
            trtexec = probe_tool(ctx.transport, "trtexec")
        if trtexec is None:
            configured = ctx.target.trtexec or DEFAULT_TRTEXEC
            return {"trtexec": None, "tensorrt_version": None,
                    "hints": [f"trtexec not found at {configured} nor on PATH: {TRTEXEC_FIX}"]}
        version = trtexec_version(ctx.transport, trtexec)
        major = version_major(version)
        how = ("strongly typed: precision from the ONNX model, --includeDataTransfers"
               if strongly_typed(major) else "--fp16/--int8 on the float ONNX model")
        return {"trtexec": trtexec, "tensorrt_version": version,
                "summary": f"trtexec {trtexec} (TensorRT {version}; {how})"}

    def execute(self, ctx: TargetContext, job: "Job", artifact: Artifact) -> tuple[Rows, Rows]:
        """Build rows, then trtexec on the device (a missing trtexec is a tool_missing row)."""
        fields = dict(ctx.fields, model=artifact.model, variant=artifact.variant,
                      artifact_sha256=artifact.sha256, runtime="tensorrt")
        rows = self.build_rows(artifact, fields)
        found = self.probed(ctx)
        trtexec = found["trtexec"]
        if trtexec is None:
            configured = ctx.target.trtexec or DEFAULT_TRTEXEC
            where = "`trtexec:` in inventory.yaml" if ctx.target.trtexec else "the default path"
            return rows + [failure_row(
                measurement="latency", error_kind="tool_missing", phase="probe",
                message=f"{ctx.name}: trtexec not found at {configured} ({where}) nor on PATH; "
                        f"fix: {TRTEXEC_FIX}", **fields)], []
        try:
            measured, series = _run_trtexec(ctx, job, artifact, trtexec,
                                            found.get("tensorrt_version") or "unknown", fields)
        except HarnessError as exc:
            return rows + [failure_row(measurement="latency",
                                       error_kind=getattr(exc, "kind", "infra"), message=str(exc),
                                       phase=getattr(exc, "phase", None) or "run", **fields)], []
        return rows + measured, series
