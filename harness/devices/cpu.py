"""CPU targets (x86 host, Raspberry Pi, any Linux box): the standard runner with a TFLite runtime
(or ONNX Runtime for the jobs the plan gives that backend), and per-operator profiles from the
target's own `benchmark_model` when it has one."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.artifacts import Artifact
from harness.devices import runner_exec
from harness.devices.base import DeviceKind, Rows, TargetContext
from harness.devices.tools import find_benchmark_model
from harness.results import profile_rows
from harness.results.schema import failure_row
from harness.runtimes import TFLITE

if TYPE_CHECKING:
    from harness.plan import Job


def benchmark_model_command(binary: str, model: str, threads: int, warmup_runs: int, runs: int,
                            csv_path: str) -> list[str]:
    """The argv for one op-profiled benchmark run (XNNPACK as the tool defaults)."""
    return [binary, f"--graph={model}", f"--num_threads={int(threads)}",
            f"--warmup_runs={int(warmup_runs)}", f"--num_runs={int(runs)}",
            "--enable_op_profiling=true", f"--profiling_output_csv_file={csv_path}"]


def benchmark_model_profile(ctx: TargetContext, model_remote: str,
                            fields: dict[str, Any]) -> Rows:
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


class CpuKind(DeviceKind):
    """`kind: cpu`: every TFLite variant, measured by the runner."""

    name = "cpu"

    def probe(self, ctx: TargetContext) -> dict[str, Any]:
        """The target's benchmark_model binary (None when it has none)."""
        return {"benchmark_model": find_benchmark_model(ctx.target, ctx.transport)}

    def execute(self, ctx: TargetContext, job: "Job", artifact: Artifact) -> tuple[Rows, Rows]:
        """The runner job; then benchmark_model's per-op profile where that is the method."""
        outcome = runner_exec.run_job(ctx, job, artifact)
        if outcome.ok and job.backend == TFLITE and runner_exec.profiles(ctx, job) and \
                runner_exec.profile_method(ctx) == "benchmark_model":
            assert outcome.model_remote is not None
            outcome.rows += benchmark_model_profile(ctx, outcome.model_remote, outcome.fields)
        return outcome.rows, outcome.series
