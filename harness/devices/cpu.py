"""CPU targets (x86 host, Raspberry Pi, any Linux box): the standard runner with a TFLite runtime."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.artifacts import Artifact
from harness.config import Target
from harness.errors import InfraError
from harness.devices.benchmark_model import benchmark_model_command, find_benchmark_model
from harness.results import profile_rows
from harness.results import rows as result_rows
from harness.results.schema import failure_row

if TYPE_CHECKING:
    from harness.orchestrate import TargetContext
    from harness.plan import Job


def unsupported(target: Target, variant: str) -> str | None:
    """A CPU runs every TFLite variant."""
    return None


def prepare(target: Target, artifact: Artifact, cache: Path) -> Artifact:
    """No device-specific compile for CPUs."""
    return artifact


def profile_method(ctx: "TargetContext") -> str | None:
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


def _profiles(ctx: "TargetContext", job: "Job") -> bool:
    spec = ctx.profile_spec
    return spec is not None and (spec.get("models") is None or job.model in spec["models"])


def runner_job(ctx: "TargetContext", job: "Job", model_remote: str,
               inputs_remote: str | None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The job document the device-side runner reads."""
    spec = ctx.suite.measurements
    measure: dict[str, Any] = {"memory": spec.memory}
    if spec.latency is not None:
        measure["latency"] = spec.latency.model_dump()
    if inputs_remote:
        measure["outputs"] = {"inputs": inputs_remote}
    if _profiles(ctx, job) and profile_method(ctx) == "op_split":
        measure["profile"] = ctx.profile_spec
    return {"schema_version": 1, "job_id": job.job_id, "model": model_remote,
            "runtime": job.runtime, "measure": measure, "result": f"results/{job.job_id}.json",
            **(extra or {})}


def run_runner(ctx: "TargetContext", job: "Job", artifact: Artifact,
               extra: dict[str, Any] | None = None) -> tuple[dict, Path | None]:
    """Push the artifact (and eval inputs), run the runner in a fresh process, fetch the result."""
    assert artifact.path is not None and artifact.sha256 is not None
    model_remote = ctx.push(artifact.path, artifact.sha256, artifact.path.suffix.lstrip("."))
    inputs_remote = None
    if ctx.suite.measurements.accuracy and artifact.eval is not None:
        inputs_remote = ctx.push(artifact.eval.inputs, artifact.eval.inputs_sha256, "npy")
    document = runner_job(ctx, job, model_remote, inputs_remote, extra)
    local_job = ctx.local_dir / "jobs" / f"{job.job_id}.json"
    local_job.parent.mkdir(parents=True, exist_ok=True)
    local_job.write_text(json.dumps(document, indent=1))
    ctx.transport.put(local_job, f"jobs/{job.job_id}.json")
    outcome = ctx.transport.run([ctx.target.python_exe, f"{ctx.runner_dir}/runner.py",
                                 f"jobs/{job.job_id}.json"], timeout=ctx.target.command_timeout)
    local_result = ctx.local_dir / "results" / f"{job.job_id}.json"
    try:
        ctx.transport.get(document["result"], local_result)
    except (OSError, InfraError) as exc:
        detail = (outcome.stderr.strip().splitlines() or ["no output"])[-1]
        raise InfraError(f"{ctx.name}: runner produced no result for {job.job_id} (exit "
                         f"{outcome.exit_code}): {detail}", kind="runner_crash", phase="run") from exc
    result = json.loads(local_result.read_text())
    outputs = None
    if result.get("outputs"):
        outputs = ctx.local_dir / "results" / Path(result["outputs"]).name
        ctx.transport.get(result["outputs"], outputs)
    return result, outputs


def execute(ctx: "TargetContext", job: "Job", artifact: Artifact) -> tuple[list[dict], list[dict]]:
    """Measure one artifact on the target: rows and raw sample series."""
    if job.runtime == "onnxruntime":
        from harness.devices import onnxrt

        return onnxrt.execute(ctx, job, artifact)
    result, outputs = run_runner(ctx, job, artifact)
    fields = result_rows.base_fields(ctx.fields, artifact, result)
    fields.setdefault("runtime", job.runtime)
    ctx.record_environment(result)
    if result.get("status") != "ok":
        return [result_rows.error_row(result, fields)], []
    rows, series = collect_rows(ctx, result, outputs, artifact, fields)
    if _profiles(ctx, job) and profile_method(ctx) == "benchmark_model":
        assert artifact.path is not None
        remote = f"artifacts/{artifact.sha256}{artifact.path.suffix}"  # where ctx.push put it
        rows += benchmark_model_profile(ctx, remote, fields)
    return rows, series


def collect_rows(ctx: "TargetContext", result: dict, outputs: Path | None, artifact: Artifact,
                 fields: dict[str, Any]) -> tuple[list[dict], list[dict]]:
    """All rows of one successful runner result."""
    rows, series = result_rows.latency_rows(result, fields)
    rows += profile_rows.memory_rows(result.get("memory"), fields, artifact.path)
    if ctx.suite.measurements.memory and artifact.path is not None:
        rows += profile_rows.tflm_rows(artifact.path, artifact.variant, fields,
                                       ctx.target.ram_kb, ctx.target.flash_kb)
    if outputs is not None:
        try:
            rows += result_rows.accuracy_rows(outputs, artifact, fields)
        except (ValueError, OSError) as exc:
            rows.append(failure_row(measurement="accuracy", error_kind="accuracy_failed",
                                    message=str(exc), **fields))
    if result.get("profile"):
        rows += profile_rows.op_split_rows(result["profile"], fields)
    return rows, series


def benchmark_model_profile(ctx: "TargetContext", model_remote: str,
                            fields: dict[str, Any]) -> list[dict]:
    """Per-op profile with the target's own benchmark_model binary (CSV + console parsed)."""
    spec = ctx.profile_spec or {}
    csv_remote = f"results/{Path(model_remote).stem}.profile.csv"
    argv = benchmark_model_command(ctx.state["benchmark_model"], model_remote, spec["threads"],
                                   spec["warmup_runs"], spec["runs"], csv_remote)
    outcome = ctx.transport.run(argv, timeout=ctx.target.command_timeout)
    if not outcome.ok:
        return [failure_row(measurement="profile", error_kind="tool_failed", phase="profile",
                            message=f"benchmark_model exit {outcome.exit_code}: "
                                    f"{(outcome.stderr.strip().splitlines() or [''])[-1]}",
                            **fields)]
    local_csv = ctx.local_dir / csv_remote
    ctx.transport.get(csv_remote, local_csv)
    return profile_rows.benchmark_model_rows(local_csv.read_text(),
                                             outcome.stdout + outcome.stderr, fields)
