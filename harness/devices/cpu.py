"""CPU targets (x86 host, Raspberry Pi, any Linux box): the standard runner with a TFLite runtime."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.artifacts import Artifact
from harness.config import Target
from harness.errors import InfraError
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


def runner_job(ctx: "TargetContext", job: "Job", model_remote: str,
               inputs_remote: str | None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The job document the device-side runner reads."""
    spec = ctx.suite.measurements
    measure: dict[str, Any] = {"memory": spec.memory}
    if spec.latency is not None:
        measure["latency"] = spec.latency.model_dump()
    if inputs_remote:
        measure["outputs"] = {"inputs": inputs_remote}
    if ctx.profile_spec is not None:
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
    result, outputs = run_runner(ctx, job, artifact)
    fields = result_rows.base_fields(ctx.fields, artifact, result)
    fields.setdefault("runtime", job.runtime)
    ctx.record_environment(result)
    if result.get("status") != "ok":
        return [result_rows.error_row(result, fields)], []
    return collect_rows(ctx, result, outputs, artifact, fields)


def collect_rows(ctx: "TargetContext", result: dict, outputs: Path | None, artifact: Artifact,
                 fields: dict[str, Any]) -> tuple[list[dict], list[dict]]:
    """All rows of one successful runner result."""
    rows, series = result_rows.latency_rows(result, fields)
    rows += result_rows.memory_rows(result, fields)
    rows += result_rows.size_rows(artifact, fields)
    if outputs is not None:
        try:
            rows += result_rows.accuracy_rows(outputs, artifact, fields)
        except (ValueError, OSError) as exc:
            rows.append(failure_row(measurement="accuracy", error_kind="accuracy_failed",
                                    message=str(exc), **fields))
    if result.get("profile"):
        from harness.results.profile_rows import profile_rows

        rows += profile_rows(result["profile"], fields)
    return rows, series
