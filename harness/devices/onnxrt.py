"""ONNX Runtime as a runtime on any runner target (`runtime: onnxruntime` or `runtimes: [onnxruntime]`).

The plan makes one job per runtime; for an onnxruntime job `cpu.execute` calls `execute` here. ONNX
models are float: the `convert_only` variant maps to the ONNX export of the Keras source model
(`harness.artifacts.onnx_export`, checked against Keras with ONNX Runtime); every other variant
is recorded as skipped for this runtime. The device-side runner runs the `.onnx` with
`targets/ort_runner.py`, so the latency rows are the same measurement as the TFLite rows beside
them (runtime column "onnxruntime").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.artifacts import Artifact
from harness.config import Target
from harness.results.schema import failure_row, make_row

if TYPE_CHECKING:
    from harness.artifacts.onnx_export import OnnxExport
    from harness.orchestrate import TargetContext
    from harness.plan import Job

RUNTIME = "onnxruntime"


def unsupported(target: Target | None, variant: str) -> str | None:
    """Reason the onnxruntime runtime cannot run a variant, or None."""
    if variant == "convert_only":
        return None
    if variant == "as_is":
        return ("ONNX Runtime needs the Keras source model to export ONNX; a .tflite file given "
                "as is has none")
    return (f"ONNX Runtime runs the float ONNX export of the Keras model (convert_only); "
            f"{variant} is a TFLite quantization with no ONNX counterpart here")


def onnx_artifact(artifact: Artifact, export: "OnnxExport") -> Artifact:
    """The ONNX export as an Artifact of the same model and variant."""
    return Artifact(artifact.model, artifact.variant, path=export.path, sha256=export.sha256,
                    size_bytes=export.size_bytes, cached=export.cached, source=artifact.source,
                    eval=artifact.eval, extra={"onnx": export.meta()})


def export_for(artifact: Artifact, cache: Any) -> "OnnxExport":
    """Export (or reuse) the checked ONNX model of an artifact's Keras source."""
    from harness.artifacts.onnx_export import export_onnx
    from harness.errors import UserError

    if artifact.source is None:
        raise UserError(f"{artifact.model}: no Keras source model to export ONNX from",
                        hint="give a .keras file or SavedModel in the suite, not a .tflite")
    return export_onnx(artifact.source, cache,
                       artifact.eval.inputs if artifact.eval is not None else None)


def build_rows(export: "OnnxExport", fields: dict[str, Any]) -> list[dict]:
    """The export's check against Keras and its size."""
    common = dict(fields, measurement="build", method="onnxruntime_check", n=export.checked_inputs)
    return [make_row(**common, metric="onnx_max_abs_diff", value=export.max_abs_diff, unit="abs",
                     message=f"tf2onnx {export.tf2onnx_version}, opset {export.opset}, checked "
                             f"with onnxruntime {export.onnxruntime_version} on "
                             f"{export.checked_inputs} inputs"),
            make_row(**dict(fields, measurement="size", method="onnx", n=1), metric="onnx_bytes",
                     value=export.size_bytes, unit="B")]


def skipped_row(reason: str, fields: dict[str, Any]) -> dict:
    return make_row(**fields, measurement="latency", metric="status", status="skipped",
                    error_kind="unsupported", message=reason)


def execute(ctx: "TargetContext", job: "Job", artifact: Artifact) -> tuple[list[dict], list[dict]]:
    """Run the ONNX export of the artifact's model with onnxruntime on the target."""
    from harness.devices.cpu import run_runner
    from harness.results import rows as result_rows

    fields = dict(ctx.fields, model=artifact.model, variant=artifact.variant, runtime=RUNTIME)
    reason = unsupported(ctx.target, artifact.variant)
    if reason is None and artifact.source is None:
        reason = unsupported(ctx.target, "as_is")
    if reason:
        return [skipped_row(reason, fields)], []
    export = export_for(artifact, ctx.cache)
    onnx = onnx_artifact(artifact, export)
    fields["artifact_sha256"] = onnx.sha256
    rows = build_rows(export, fields)
    result, outputs = run_runner(ctx, job, onnx)
    fields = result_rows.base_fields(ctx.fields, onnx, result)
    fields.setdefault("runtime", RUNTIME)
    ctx.record_environment(result)
    if result.get("status") != "ok":
        return rows + [result_rows.error_row(result, fields)], []
    measured, series = result_rows.latency_rows(result, fields)
    measured += memory_rows(result.get("memory"), fields)
    if outputs is not None and onnx.eval is not None:
        try:
            measured += result_rows.accuracy_rows(outputs, onnx, fields)
        except (ValueError, OSError) as exc:
            measured.append(failure_row(measurement="accuracy", error_kind="accuracy_failed",
                                        message=str(exc), **fields))
    return rows + measured, series


def memory_rows(memory: dict | None, fields: dict[str, Any]) -> list[dict]:
    """RSS footprint, peak RSS and session creation time of the ONNX Runtime process."""
    if not memory:
        return []
    common = dict(fields, measurement="memory", method="runner", n=1)
    rows = [make_row(**common, metric="peak_rss_mb", value=memory["peak_rss_kb"] / 1024,
                     unit="MB"),
            make_row(**common, metric="init_ms", value=memory["init_ms"], unit="ms")]
    if memory.get("rss_baseline_kb") is not None:
        rows.insert(0, make_row(**common, metric="rss_footprint_mb",
                                value=(memory["peak_rss_kb"] - memory["rss_baseline_kb"]) / 1024,
                                unit="MB"))
    return rows
