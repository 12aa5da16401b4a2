"""Coral Edge TPU targets (`kind: edgetpu`): the full-int8 model with int8 I/O, compiled on the
controller by `edgetpu_compiler`, run on the device by the standard runner with the
`libedgetpu.so.1` delegate (`targets/delegate_runner.py`).

Build rows: the int8 model's size, the compiled model's size and what the compiler reported
(`harness.parsers.edgetpu_compiler`: operators on the Edge TPU vs the CPU, on-chip and off-chip
memory, subgraphs; off-chip streaming or CPU operators make those rows invalid, with a hint).

Latency on the device is the `invoke()` time of the compiled model (the standard latency rows,
delegate "edgetpu"); the Python loop rate with pre-processing is a separate metric
(`loop_rate_hz`, method "python_loop").
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.artifacts import Artifact
from harness.config import Target
from harness.devices import runner_exec
from harness.devices.base import DeviceKind, Rows, TargetContext
from harness.errors import HarnessError
from harness.parsers.edgetpu_compiler import METHOD, parse_compilation
from harness.results.rows import rows_from_records
from harness.results.schema import failure_row, make_row

if TYPE_CHECKING:
    from harness.plan import Job

DELEGATE_LIBRARY = "libedgetpu.so.1"
# run on the device with the target's python: can the delegate library be loaded?
LOADABLE = "import ctypes, sys\ntry:\n    ctypes.CDLL(sys.argv[1])\nexcept OSError:\n    sys.exit(1)"


class EdgeTpuKind(DeviceKind):
    """`kind: edgetpu`: the w8_a8 variant with int8 I/O, compiled, run with the delegate."""

    name = "edgetpu"

    def unsupported(self, target: Target, variant: str) -> str | None:
        """The Edge TPU runs full-integer models only."""
        if variant == "w8_a8":
            return None
        if variant == "as_is":
            return ("a .tflite file is measured as is; the Edge TPU needs the w8_a8 variant of a "
                    "Keras model (int8 I/O, compiled by edgetpu_compiler)")
        return f"the Edge TPU runs only full-int8 models (w8_a8), not {variant}"

    def prepare(self, target: Target, artifact: Artifact, cache: Path) -> Artifact:
        """The int8-I/O model (always built) and, where the compiler exists, the compiled model.

        A missing compiler does not raise here: the built int8 model and the error go into
        `extra` and `execute` reports both (the build rows, then the failure row).
        """
        from harness.artifacts.edgetpu_compile import compile_model, require_compiler
        from harness.artifacts.int8_io import int8_io_model

        assert artifact.path is not None
        model = int8_io_model(artifact.path, cache)
        extra: dict[str, Any] = {"int8_model": str(model.path), "int8_sha256": model.sha256,
                                 "int8_size_bytes": model.size_bytes,
                                 "input_shape": model.input_shape}
        prepared = Artifact(artifact.model, artifact.variant, path=model.path, sha256=model.sha256,
                            size_bytes=model.size_bytes, source=artifact.source,
                            eval=artifact.eval, cached=model.cached, extra=extra)
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

    def probe(self, ctx: TargetContext) -> dict[str, Any]:
        """Whether the target's Python can load the Edge TPU delegate library."""
        res = ctx.transport.run([ctx.target.python_exe, "-c", LOADABLE, DELEGATE_LIBRARY],
                                timeout=60)
        return {"delegate_library": DELEGATE_LIBRARY if res.ok else None}

    def build_rows(self, artifact: Artifact, fields: dict[str, Any]) -> Rows:
        """Rows for what prepare() built: the int8 model's size and the compiler's report."""
        extra = artifact.extra
        rows = [make_row(**fields, measurement="size", metric="int8_model_bytes",
                         value=extra.get("int8_size_bytes"), unit="B", n=1, method="int8_io",
                         message=f"int8 input/output, input shape {extra.get('input_shape')}")]
        if extra.get("compiled"):
            rows.append(make_row(**fields, measurement="size", metric="size_bytes",
                                 value=artifact.size_bytes, unit="B", n=1, method=METHOD))
            rows += rows_from_records(parse_compilation(extra.get("compiler_stdout", ""),
                                                        extra.get("compiler_log")), fields)
        return rows

    def execute(self, ctx: TargetContext, job: "Job", artifact: Artifact) -> tuple[Rows, Rows]:
        """Build rows, then (compiled model + device) the runner with the Edge TPU delegate."""
        fields = dict(ctx.fields, model=artifact.model, variant=artifact.variant,
                      artifact_sha256=artifact.sha256, runtime=job.runtime)
        rows = self.build_rows(artifact, fields)
        exc = artifact.extra.get("deferred_error")
        if exc is not None:
            return rows + [failure_row(measurement="build", error_kind=getattr(exc, "kind",
                                                                               "user_error"),
                                       message=str(exc), phase=getattr(exc, "phase", None)
                                       or "build", **fields)], []
        extra: dict[str, Any] = {"loop_rate": True}
        if ctx.target.accelerator in (None, "edgetpu"):  # a compiled model needs the delegate
            extra["delegate"] = {"name": "edgetpu", "library": DELEGATE_LIBRARY}
        measured, series = runner_exec.execute(ctx, job, artifact, extra)
        return rows + measured, series
