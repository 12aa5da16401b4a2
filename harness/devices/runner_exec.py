"""Jobs measured by the device-side runner (`targets/runner.py`), for every kind that runs it.

One job: push the artifact (and the evaluation inputs), write the job document, run the runner in
a fresh process, fetch the result document (and the outputs), turn it into rows. The job's
backend (chosen by the plan) says what runs: "tflite", the artifact with a TFLite runtime (or an
external delegate the kind asks for), or "onnxruntime", the artifact's ONNX export with ONNX
Runtime (`targets/ort_runner.py`): a float model, the export checked against Keras first.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.artifacts import Artifact
from harness.artifacts.onnx_export import export_for, onnx_artifact
from harness.artifacts.tflm_arena import tflm_can_run
from harness.config import Suite
from harness.devices.base import Rows, TargetContext
from harness.devices.tools import find_benchmark_model
from harness.errors import InfraError
from harness.results import profile_rows
from harness.results import rows as result_rows
from harness.results.schema import failure_row, make_row
from harness.runtimes import ONNXRUNTIME, backend_unsupported
from harness.transport import disk, groups

if TYPE_CHECKING:
    from harness.plan import Job



@dataclass
class RunnerOutcome:
    """The rows of one runner job, the columns they share, and whether the runner succeeded."""

    rows: Rows = field(default_factory=list)
    series: Rows = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)
    ok: bool = False
    model_remote: str | None = None  # where the measured model is on the target


def profiles(ctx: TargetContext, job: "Job") -> bool:
    """Whether the suite asks for a per-operator profile of this job's model."""
    spec = ctx.profile_spec
    return spec is not None and (spec.get("models") is None or job.model in spec["models"])


def profile_method(ctx: TargetContext) -> str | None:
    """How this target profiles per operator: benchmark_model if it has one, else op-split."""
    spec = ctx.profile_spec
    if spec is None:
        return None
    if "profile_method" not in ctx.state:
        method = spec["method"]
        if method in ("auto", "benchmark_model"):
            binary = find_benchmark_model(ctx.target, ctx.transport)
            if binary is None and method == "benchmark_model":
                raise InfraError(f"{ctx.name}: profile method benchmark_model, but the target has "
                                 "none on PATH", kind="tool_missing", phase="probe",
                                 hint="set `benchmark_model:` in the inventory, or use "
                                      "method: op_split")
            ctx.state["benchmark_model"] = binary
            method = "benchmark_model" if binary else "op_split"
        ctx.state["profile_method"] = method
    return ctx.state["profile_method"]


def runner_document(ctx: TargetContext, job: "Job", model_remote: str, inputs_remote: str | None,
                    extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The job document the device-side runner reads (docs/CONTRACTS.md)."""
    spec = ctx.suite.measurements
    measure: dict[str, Any] = {"memory": spec.memory}
    if spec.latency is not None:
        measure["latency"] = spec.latency.model_dump()
    if inputs_remote:
        measure["outputs"] = {"inputs": inputs_remote}
    if profiles(ctx, job) and profile_method(ctx) == "op_split":
        measure["profile"] = ctx.profile_spec
    return {"schema_version": 1, "job_id": job.job_id, "model": model_remote,
            "runtime": job.runtime, "measure": measure, "result": f"results/{job.job_id}.json",
            **(extra or {})}


def run_runner(ctx: TargetContext, job: "Job", artifact: Artifact,
               extra: dict[str, Any] | None = None) -> tuple[dict, Path | None, str]:
    """Push the artifact (and eval inputs), run the runner in a fresh process, fetch the result.

    Returns (result document, local outputs file or None, the model's path on the target).
    """
    assert artifact.path is not None and artifact.sha256 is not None
    model_remote = ctx.push(artifact.path, artifact.sha256, artifact.path.suffix.lstrip("."))
    inputs_remote = None
    if ctx.suite.measurements.accuracy and artifact.eval is not None:
        inputs_remote = ctx.push(artifact.eval.inputs, artifact.eval.inputs_sha256, "npy")
    document = runner_document(ctx, job, model_remote, inputs_remote,
                               dict(extra or {}, attempt=new_attempt()))
    if inputs_remote and artifact.eval is not None and artifact.eval.window is not None:
        document["measure"]["outputs"] = {"series": inputs_remote, "window": artifact.eval.window,
                                          "max_seconds": artifact.eval.max_seconds}
    local_job = ctx.local_dir / "jobs" / f"{job.job_id}.json"
    local_job.parent.mkdir(parents=True, exist_ok=True)
    local_job.write_text(json.dumps(document, indent=1))
    ctx.transport.put(local_job, f"jobs/{job.job_id}.json")
    result = run_fresh(ctx, document)
    outputs = None
    if result.get("outputs"):
        outputs = ctx.local_dir / "results" / Path(result["outputs"]).name
        ctx.transport.get(result["outputs"], outputs)
    return result, outputs, model_remote


def new_attempt() -> str:
    """A job attempt id, unique per run and attempt (the runner echoes it in its result)."""
    return secrets.token_hex(8)


def run_fresh(ctx: TargetContext, document: dict[str, Any]) -> dict:
    """Run the runner on a job document (already on the target) and return this attempt's result.

    The previous result files of the job are removed first; a runner that ends otherwise than
    with 0 (ok) or 1 (error document), or a result document of another job or attempt, is an
    `InfraError(kind="runner_crash")` saying how it ended: never someone else's result.
    """
    job_id, attempt = document["job_id"], document["attempt"]
    outputs = f"results/{job_id}.outputs.npy"
    cleared = ctx.transport.run(["rm", "-f", "--", document["result"], outputs], timeout=60)
    if not cleared.ok:
        raise InfraError(f"{ctx.name}: cannot remove the old result of {job_id}: "
                         f"{cleared.stderr.strip()}", kind="workdir", phase="run")
    local_result = ctx.local_dir / "results" / f"{job_id}.json"
    for stale in (local_result, local_result.with_name(f"{job_id}.outputs.npy")):
        stale.unlink(missing_ok=True)
    outcome = ctx.transport.run([ctx.target.python_exe, f"{ctx.runner_dir}/runner.py",
                                 f"jobs/{job_id}.json"], timeout=ctx.target.command_timeout)
    detail = (outcome.stderr.strip().splitlines() or ["no output"])[-1]
    if outcome.exit_code not in (0, 1):
        how = ("refused the job file" if outcome.exit_code == 2
               else groups.describe_exit(outcome.exit_code))
        raise InfraError(f"{ctx.name}: runner {how} on {job_id}: {detail}", kind="runner_crash",
                         phase="run", hint=_crash_hint(outcome.exit_code))
    try:
        ctx.transport.get(document["result"], local_result)
        result = json.loads(local_result.read_text())
    except (OSError, InfraError, ValueError) as exc:
        if disk.NO_SPACE in outcome.stderr:
            raise disk.full_disk_error(ctx.transport, document["result"], 0, outcome.stderr,
                                       phase="run") from exc  # type: ignore[misc]
        raise InfraError(f"{ctx.name}: runner produced no result for {job_id} (exit "
                         f"{outcome.exit_code}): {detail}", kind="runner_crash",
                         phase="run") from exc
    got = (result.get("job_id"), result.get("attempt")) if isinstance(result, dict) else None
    if got != (job_id, attempt):
        raise InfraError(f"{ctx.name}: stale result for {job_id}: it answers {got}, not attempt "
                         f"{attempt}", kind="runner_crash", phase="run")
    return result


def _crash_hint(code: int) -> str | None:
    if code in (137, -9):
        return "SIGKILL often means the out-of-memory killer: check `dmesg` on the device"
    return None


def run_job(ctx: TargetContext, job: "Job", artifact: Artifact,
            extra: dict[str, Any] | None = None) -> RunnerOutcome:
    """One runner job with the job's backend: all its rows (a failed runner is a row)."""
    if job.backend != ONNXRUNTIME:
        return _run(ctx, job, artifact, extra)
    if artifact.source is None:  # a convert_only artifact without its Keras model
        fields = dict(ctx.fields, model=artifact.model, variant=artifact.variant,
                      runtime=job.runtime)
        return RunnerOutcome([make_row(**fields, measurement="latency", metric="status",
                                       status="skipped", error_kind="unsupported",
                                       message=backend_unsupported(ONNXRUNTIME, "as_is"))],
                             fields=fields)
    onnx = onnx_artifact(artifact, export_for(artifact, ctx.cache))
    build = profile_rows.onnx_export_rows(onnx.extra["onnx"], dict(
        ctx.fields, model=artifact.model, variant=artifact.variant, runtime=job.runtime,
        artifact_sha256=onnx.sha256))
    outcome = _run(ctx, job, onnx, extra)
    outcome.rows = build + outcome.rows
    return outcome


def _run(ctx: TargetContext, job: "Job", artifact: Artifact,
         extra: dict[str, Any] | None) -> RunnerOutcome:
    result, outputs, model_remote = run_runner(ctx, job, artifact, extra)
    fields = result_rows.base_fields(ctx.fields, artifact, result)
    fields.setdefault("runtime", job.runtime)
    ctx.record_environment(result)
    if result.get("status") != "ok":
        return RunnerOutcome([result_rows.error_row(result, fields)], [], fields, False,
                             model_remote)
    tflite = job.backend != ONNXRUNTIME  # an .onnx has no flatbuffer, TFLM arena or op-split
    memory = result.get("memory")
    rows, series = result_rows.latency_rows(result, fields)
    rows += profile_rows.memory_rows(memory, fields)
    if tflite:
        rows += profile_rows.size_rows(artifact.path, fields,
                                       size_bytes=memory.get("model_bytes") if memory else None)
        if ctx.suite.measurements.memory and artifact.path is not None:
            rows += profile_rows.tflm_rows(artifact.path, artifact.variant, fields,
                                           ctx.target.ram_kb, ctx.target.flash_kb,
                                           cache=ctx.cache)
    if outputs is not None and artifact.eval is not None:
        rows += _accuracy_rows(outputs, artifact, fields)
    rows += series_output_rows(result, fields)
    if tflite and result.get("profile"):
        rows += profile_rows.op_split_rows(result["profile"], fields)
    rows += loop_rate_rows(result, fields)
    return RunnerOutcome(rows, series, fields, True, model_remote)


def _accuracy_rows(outputs: Path, artifact: Artifact, fields: dict[str, Any]) -> Rows:
    try:
        return result_rows.accuracy_rows(outputs, artifact, fields)
    except (ValueError, OSError) as exc:
        return [failure_row(measurement="accuracy", error_kind="accuracy_failed",
                            message=str(exc), **fields)]


def series_output_rows(result: dict, fields: dict[str, Any]) -> Rows:
    """Speed of the sliding-window evaluation, or the row saying why it was refused."""
    stats = result.get("series_outputs")
    if not stats:
        return []
    common = dict(fields, measurement="accuracy", method="sliding_window",
                  threads=stats.get("threads"))
    if stats.get("refused"):
        return [make_row(**common, metric="status", status="skipped", error_kind="eval_too_long",
                         message=stats["refused"], n=stats.get("predictions"))]
    workers = stats.get("workers") or 1
    return [make_row(**common, metric="predictions_per_s", value=stats["predictions_per_second"],
                     unit="1/s", n=stats["predictions"],
                     hint=f"{workers} interpreters in parallel" if workers > 1 else None),
            make_row(**common, metric="eval_s", value=stats["seconds"], unit="s",
                     n=stats["predictions"])]


def loop_rate_rows(result: dict, fields: dict[str, Any]) -> Rows:
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


def execute(ctx: TargetContext, job: "Job", artifact: Artifact,
            extra: dict[str, Any] | None = None) -> tuple[Rows, Rows]:
    """`run_job` as a kind's (rows, series)."""
    outcome = run_job(ctx, job, artifact, extra)
    return outcome.rows, outcome.series


def controller_work(suite: Suite, job: "Job", artifact: Artifact, cache: Path) -> None:
    """Do ahead what `run_job` would compute on the controller for this (prepared) artifact, so
    that nothing heavy runs on the controller while a target measures: the checked ONNX export of
    an onnxruntime job, the TFLM arena of a TFLite job that measures memory. Both are cached on
    disk, so `run_job` then only reads them. Errors are left for `run_job` to report."""
    if job.backend == ONNXRUNTIME:
        if artifact.source is not None:
            export_for(artifact, cache)
        return
    if suite.measurements.memory and artifact.path is not None \
            and artifact.path.suffix == ".tflite" and tflm_can_run(artifact.variant):
        profile_rows.tflm_arena_cached(artifact.path, cache)


def run_document(ctx: TargetContext, document: dict[str, Any],
                 timeout: float | None = None) -> dict[str, Any]:
    """One fresh runner process on a job document the caller wrote (a unique `job_id` and an
    `attempt` token, the model already pushed): put the document, run, fetch the result.

    Only the result of this very job is accepted: its `job_id` and `attempt` must echo the
    document's, so a stale result left by an earlier process can never be read. InfraError
    (runner_crash) when no such result came; an error document is returned as it is.
    """
    job_id = document["job_id"]
    local_job = ctx.local_dir / "jobs" / f"{job_id}.json"
    local_job.parent.mkdir(parents=True, exist_ok=True)
    local_job.write_text(json.dumps(document))
    local_result = ctx.local_dir / "results" / f"{job_id}.json"
    local_result.unlink(missing_ok=True)
    ctx.transport.put(local_job, f"jobs/{job_id}.json")
    outcome = ctx.transport.run([ctx.target.python_exe, f"{ctx.runner_dir}/runner.py",
                                 f"jobs/{job_id}.json"],
                                timeout=timeout or ctx.target.command_timeout)
    detail = (outcome.stderr.strip().splitlines() or ["no output"])[-1]
    try:
        ctx.transport.get(document["result"], local_result)
        result = json.loads(local_result.read_text())
    except (OSError, ValueError, InfraError) as exc:
        raise InfraError(f"{ctx.name}: runner produced no result for {job_id} (exit "
                         f"{outcome.exit_code}): {detail}", kind="runner_crash",
                         phase="run") from exc
    if not isinstance(result, dict) or (result.get("job_id"), result.get("attempt")) != \
            (job_id, document.get("attempt")):
        got = (result.get("job_id"), result.get("attempt")) if isinstance(result, dict) else None
        raise InfraError(f"{ctx.name}: the result for {job_id} answers another job or attempt "
                         f"({got}; exit {outcome.exit_code}: {detail})", kind="runner_crash",
                         phase="run")
    return result
