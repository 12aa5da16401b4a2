"""Arduino boards with TensorFlow Lite Micro (`kind: arduino`).

Inventory fields: `fqbn` (board), `serial_port`, `ram_kb`, `flash_kb`, and `via`: the target the
board is plugged into (an SSH target, or the controller itself); commands run through that
target's transport.

prepare(): the model (w8_a8 → int8 input/output, as on the Edge TPU; convert_only and w8_a16 as
converted), its TFLM arena measured on the controller with `tflite-micro`
(`harness.artifacts.tflm_arena.tflm_arena_bytes`), and a sketch folder (C array, header, .ino with an op
resolver listing exactly the model's operators and the arena = measured + margin).
execute(): build rows; the fit check (arena + model vs the declared RAM and flash) refuses a model
that cannot fit, with the numbers, before anything else; then `arduino-cli compile --fqbn …` and
`arduino-cli upload -p … --fqbn …` on the `via` machine; then `targets/serial_reader.py` there
reads the sketch's serial protocol. Latency samples are the board's `micros()` around `Invoke()`
(method "serial"); a board simulator answers `clock simulated` and its rows are labelled
`simulated` (runtime "tflm_simulated"), never mixed with device figures.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness import stats
from harness.artifacts import Artifact
from harness.artifacts import tflm_arena
from harness.artifacts.cache import code_version, key_of, sha256_file, write_json
from harness.artifacts.int8_io import int8_io_model
from harness.artifacts.tflm_array import TEMPLATE, write_sketch
from harness.config import Target
from harness.devices.base import DeviceKind, Rows, TargetContext
from harness.devices.tools import probe_tool
from harness.errors import HarnessError, InfraError, UserError
from harness.results.rows import LATENCY_METRICS
from harness.results.schema import failure_row, make_row

if TYPE_CHECKING:
    from harness.plan import Job

CLI = "arduino-cli"
CLI_INSTALL = ("install arduino-cli on the machine the board is plugged into: `curl -fsSL "
               "https://raw.githubusercontent.com/arduino/arduino-cli/master/install.sh | "
               "BINDIR=$HOME/.local/bin sh`, then `arduino-cli core update-index && arduino-cli "
               "core install {core}` and the TFLM library: `git clone "
               "https://github.com/tensorflow/tflite-micro-arduino-examples "
               "$HOME/Arduino/libraries/Arduino_TensorFlowLite`")
RUNTIME = "tflm"
SIMULATED_RUNTIME = "tflm_simulated"
PROTOCOL_VERSION = "1"


# --------------------------------------------------------------------------- serial protocol

def parse_serial_lines(lines: list[str]) -> dict[str, Any]:
    """The sketch's protocol lines → {"protocol", "model_sha256", "arena_size_bytes",
    "arena_used_bytes", "clock", "latency_us": [...], "output": [...], "errors": [...], "done"}."""
    out: dict[str, Any] = {"protocol": None, "model_sha256": None, "arena_size_bytes": None,
                           "arena_used_bytes": None, "clock": None, "latency_us": [],
                           "output": [], "errors": [], "done": False, "ignored": 0}
    outputs: dict[int, float] = {}
    for raw in lines:
        parts = raw.strip().split(" ", 2)
        word = parts[0] if parts else ""
        try:
            if word == "harness-tflm" and len(parts) > 1:
                out["protocol"] = parts[1]
            elif word == "model_sha256" and len(parts) > 1:
                out["model_sha256"] = parts[1]
            elif word in ("arena_size_bytes", "arena_used_bytes") and len(parts) > 1:
                out[word] = int(parts[1])
            elif word == "clock" and len(parts) > 1:
                out["clock"] = parts[1]
            elif word == "latency_us" and len(parts) > 1:
                out["latency_us"].append(float(parts[1]))
            elif word == "output" and len(parts) > 2:
                outputs[int(parts[1])] = float(parts[2])
            elif word == "error":
                out["errors"].append({"kind": parts[1] if len(parts) > 1 else "board",
                                      "message": parts[2] if len(parts) > 2 else ""})
            elif word == "done":
                out["done"] = True
            elif word not in ("ready", ""):
                out["ignored"] += 1
        except ValueError:
            out["ignored"] += 1
    out["output"] = [outputs[i] for i in sorted(outputs)]
    return out


def session_rows(session: dict[str, Any], fields: dict[str, Any]) -> tuple[list[dict], list[dict]]:
    """Rows of one parsed serial session: arena used, latency statistics, outputs."""
    simulated = session.get("clock") == "simulated"
    method = "simulated" if simulated else "serial"
    fields = dict(fields, runtime=SIMULATED_RUNTIME if simulated else RUNTIME, threads=1)
    rows: list[dict] = []
    for error in session["errors"]:
        rows.append(failure_row(measurement="latency", error_kind=f"board_{error['kind']}",
                                message=f"the board reported: {error['message']}", phase="run",
                                method=method, **fields))
    memory = dict(fields, measurement="memory", method=method, n=1)
    for metric in ("arena_used_bytes", "arena_size_bytes"):
        if session.get(metric) is not None:
            rows.append(make_row(**memory, metric=metric, value=session[metric], unit="B"))
    series: list[dict] = []
    samples_ms = np.asarray(session["latency_us"], dtype=float) / 1e3
    if samples_ms.size:
        summary = stats.summarize(samples_ms)
        valid, hint = stats.validity(summary)
        if simulated:
            hint = "simulated on the controller (tflite-micro), not board timing" + \
                (f"; {hint}" if hint else "")
        common = dict(fields, measurement="latency", method=method, n=summary.n, valid=valid,
                      hint=hint, delegate="none")
        for metric, attribute in LATENCY_METRICS:
            rows.append(make_row(**common, metric=metric, value=getattr(summary, attribute),
                                 unit="ms"))
        series.append({k: fields.get(k) for k in ("target", "model", "variant", "runtime",
                                                  "threads", "artifact_sha256")}
                      | {"measurement": "latency", "metric": "median_ms", "unit": "ms",
                         "samples": [round(s, 5) for s in samples_ms.tolist()]})
    for index, value in enumerate(session["output"]):
        rows.append(make_row(**dict(fields, measurement="accuracy", method=method, n=1),
                             metric="output", key=str(index), value=value, unit=None))
    return rows, series


# --------------------------------------------------------------------------- device kind

def _model_for(artifact: Artifact, cache: Path) -> Path:
    assert artifact.path is not None
    if artifact.variant == "w8_a8":
        return int8_io_model(artifact.path, cache).path
    return artifact.path


def _input_window(artifact: Artifact) -> np.ndarray | None:
    if artifact.eval is None or not Path(artifact.eval.inputs).is_file():
        return None
    return artifact.eval.middle_input() if np.load(artifact.eval.inputs, mmap_mode="r").size \
        else None


def fit_check(target: Target, name: str, artifact: Artifact) -> tuple[list[dict], str | None]:
    """(fit rows, refusal message or None): arena + model vs the board's RAM and flash."""
    extra = artifact.extra
    if target.ram_kb is None or target.flash_kb is None:
        return [], (f"{name}: set `ram_kb:` and `flash_kb:` for this board in inventory.yaml; "
                    "the harness does not flash a model without checking that it fits")
    fit = tflm_arena.fits(extra["arena_size_bytes"], extra["model_bytes"], target.ram_kb,
                          target.flash_kb)
    rows = [make_row(measurement="memory", method="fit_check", n=1, metric="mcu_fits",
                     value=int(bool(fit["fits"])), unit="bool")]
    for side in ("ram", "flash"):
        rows.append(make_row(measurement="memory", method="fit_check", n=1,
                             metric=f"{side}_margin_bytes", value=fit[f"{side}_margin_bytes"],
                             unit="B"))
        rows.append(make_row(measurement="memory", method="fit_check", n=1,
                             metric=f"{side}_used_pct", value=fit[f"{side}_used_pct"], unit="%"))
    if fit["fits"]:
        return rows, None
    problems = []
    if not fit["ram_fits"]:
        problems.append(f"RAM: tensor arena {extra['arena_size_bytes']} bytes (measured "
                        f"{extra['arena_measured_bytes']} + margin) > ram_kb {target.ram_kb} = "
                        f"{fit['ram_bytes']} bytes, {-fit['ram_margin_bytes']} bytes short")
    if not fit["flash_fits"]:
        problems.append(f"flash: model {extra['model_bytes']} bytes > flash_kb {target.flash_kb} = "
                        f"{fit['flash_bytes']} bytes, {-fit['flash_margin_bytes']} bytes short")
    return rows, (f"{name}: {artifact.model} {artifact.variant} does not fit the board "
                  f"({target.fqbn}); not flashed. " + "; ".join(problems) +
                  ". Use a smaller model or variant (w8_a8) or a board with more memory")


def compile_command(fqbn: str, sketch_dir: str, build_dir: str) -> list[str]:
    return [CLI, "compile", "--fqbn", fqbn, "--output-dir", build_dir, sketch_dir]


def upload_command(fqbn: str, port: str, sketch_dir: str, build_dir: str) -> list[str]:
    return [CLI, "upload", "-p", port, "--fqbn", fqbn, "--input-dir", build_dir, sketch_dir]


def _core(fqbn: str | None) -> str:
    return ":".join((fqbn or "arduino:mbed_nano:nano33ble").split(":")[:2])


class ArduinoKind(DeviceKind):
    """`kind: arduino`: a TFLM sketch per model, flashed and read over serial on the `via` host."""

    name = "arduino"

    def unsupported(self, target: Target, variant: str) -> str | None:
        """TFLM runs float32 and full-integer models (int8, int16x8); not hybrid or float16."""
        if variant == "as_is":
            return None
        reason = tflm_arena.why_not(variant)
        return f"TFLite Micro cannot run {variant}: {reason}" if reason else None

    def prepare(self, target: Target, artifact: Artifact, cache: Path) -> Artifact:
        """Model, measured arena and sketch folder (cached by content); errors deferred to
        execute."""
        model = _model_for(artifact, cache)
        sha = sha256_file(model)
        prepared = Artifact(artifact.model, artifact.variant, path=model, sha256=sha,
                            size_bytes=model.stat().st_size, source=artifact.source,
                            eval=artifact.eval, extra={})
        window = _input_window(artifact)
        key = key_of("sketch", sha, code_version("artifacts/tflm_array.py"),
                     TEMPLATE.read_text(), None if window is None else window.tolist()[:8])
        folder = cache / "arduino" / key
        meta_path = folder / "sketch.json"
        if meta_path.is_file():
            prepared.extra.update(json.loads(meta_path.read_text()), cached=True)
            return prepared
        try:
            arena = tflm_arena.tflm_arena_bytes(model)
            sketch = write_sketch(model, folder, arena, window)
        except HarnessError as exc:
            prepared.extra["deferred_error"] = exc
            return prepared
        meta = {"sketch_dir": str(sketch.folder), "operators": sketch.operators,
                "arena_measured_bytes": sketch.arena_measured_bytes,
                "arena_size_bytes": sketch.arena_size_bytes, "model_bytes": sketch.model_bytes,
                "model_sha256": sketch.model_sha256, "key": key}
        write_json(meta_path, meta)
        prepared.extra.update(meta)
        return prepared

    def build_rows(self, artifact: Artifact, fields: dict[str, Any]) -> Rows:
        """What prepare() built: model size, TFLM arena (measured and declared), operators."""
        extra = artifact.extra
        if "sketch_dir" not in extra:
            return [make_row(**fields, measurement="size", metric="size_bytes",
                             value=artifact.size_bytes, unit="B", n=1, method="flatbuffer")]
        common = dict(fields, n=1)
        return [
            make_row(**common, measurement="size", metric="size_bytes",
                     value=extra["model_bytes"], unit="B", method="c_array",
                     message=f"{extra['sketch_dir']}"),
            make_row(**common, measurement="memory", metric="tflm_arena_bytes",
                     value=extra["arena_measured_bytes"], unit="B", method="tflm"),
            make_row(**common, measurement="memory", metric="arena_size_bytes",
                     value=extra["arena_size_bytes"], unit="B", method="sketch",
                     message="measured TFLM arena + max(10 %, 1 KiB), 16-byte aligned"),
            make_row(**common, measurement="build", metric="tflm_operators",
                     value=len(extra["operators"]), unit="count", method="sketch",
                     key=",".join(extra["operators"])),
        ]

    def probe(self, ctx: TargetContext) -> dict[str, Any]:
        """arduino-cli on the machine the board is plugged into."""
        return {"arduino_cli": probe_tool(ctx.transport, CLI)}

    def execute(self, ctx: TargetContext, job: "Job", artifact: Artifact) -> tuple[Rows, Rows]:
        """Fit check, compile, upload, read the serial protocol; every stop is an actionable row."""
        fields = dict(ctx.fields, model=artifact.model, variant=artifact.variant,
                      artifact_sha256=artifact.sha256, runtime=RUNTIME)
        rows = self.build_rows(artifact, fields)
        deferred = artifact.extra.get("deferred_error")
        if deferred is not None:
            return rows + [failure_row(measurement="build",
                                       error_kind=getattr(deferred, "kind", "user_error"),
                                       message=str(deferred), phase="build", **fields)], []
        fit_rows, refusal = fit_check(ctx.target, ctx.name, artifact)
        rows += [dict(r, **{k: v for k, v in fields.items() if r.get(k) is None})
                 for r in fit_rows]
        if refusal:
            return rows + [failure_row(measurement="memory", error_kind="does_not_fit",
                                       message=refusal, phase="fit_check", **fields)], []
        try:
            measured, series = self._flash_and_read(ctx, job, artifact, fields)
        except HarnessError as exc:
            return rows + [failure_row(measurement="latency",
                                       error_kind=getattr(exc, "kind", "user_error"),
                                       message=str(exc), phase=getattr(exc, "phase", None)
                                       or "run", **fields)], []
        return rows + measured, series

    def _flash_and_read(self, ctx: TargetContext, job: "Job", artifact: Artifact,
                        fields: dict[str, Any]) -> tuple[Rows, Rows]:
        target, via = ctx.target, ctx.target.via or "the controller"
        if not target.fqbn or not target.serial_port:
            raise UserError(f"{ctx.name}: set `fqbn:` and `serial_port:` in inventory.yaml",
                            hint="e.g. fqbn: arduino:mbed_nano:nano33ble, serial_port: /dev/ttyACM0")
        cli = self.probed(ctx)["arduino_cli"]
        if cli is None:
            raise InfraError(f"{ctx.name}: {CLI} not found on {via}", kind="tool_missing",
                             phase="probe", hint=CLI_INSTALL.format(core=_core(target.fqbn)))
        extra = artifact.extra
        remote = f"arduino/{extra['key']}"
        sketch_remote, build_remote = f"{remote}/harness_tflm", f"{remote}/build"
        for path in sorted(Path(extra["sketch_dir"]).iterdir()):
            ctx.transport.put(path, f"{sketch_remote}/{path.name}")
        for stage, argv in (("compile", compile_command(target.fqbn, sketch_remote, build_remote)),
                            ("upload", upload_command(target.fqbn, target.serial_port,
                                                      sketch_remote, build_remote))):
            argv[0] = cli
            res = ctx.transport.run(argv, timeout=target.command_timeout)
            if not res.ok:
                text = (res.stdout + res.stderr).strip()
                hint = CLI_INSTALL.format(core=_core(target.fqbn)) if "TensorFlowLite.h" in text \
                    or "platform not installed" in text.lower() else None
                raise InfraError(f"{ctx.name}: {' '.join(argv[:2])} failed on {via} (exit "
                                 f"{res.exit_code}): {' | '.join(text.splitlines()[-3:])}",
                                 kind="device_missing" if stage == "upload" else "compile_failed",
                                 phase=stage, hint=hint)
        spec = ctx.suite.measurements.latency
        runs, warmup = (spec.runs, spec.warmup_runs) if spec else (50, 5)
        python = target.python or (sys.executable if ctx.transport.is_local else "python3")
        out = f"results/{job.job_id}.serial.json"
        ctx.transport.run([python, f"{ctx.runner_dir}/serial_reader.py", "--port",
                           target.serial_port, "--runs", str(runs), "--warmup", str(warmup),
                           "--out", out], timeout=target.command_timeout)
        local = ctx.local_dir / "results" / f"{job.job_id}.serial.json"
        ctx.transport.get(out, local)
        document = json.loads(local.read_text())
        if document["status"] != "ok":
            raise InfraError(f"{ctx.name}: {document['error']['message']}",
                             kind=document["error"]["kind"], phase="run")
        session = parse_serial_lines(document["lines"])
        if session["model_sha256"] and not extra["model_sha256"].startswith(session["model_sha256"]):
            raise InfraError(f"{ctx.name}: the board runs model {session['model_sha256']}, not "
                             f"{extra['model_sha256'][:16]} (upload did not take?)",
                             kind="device_mismatch", phase="run")
        return session_rows(session, fields)
