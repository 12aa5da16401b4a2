"""Arduino boards with TensorFlow Lite Micro (`kind: arduino`).

Inventory fields: `fqbn` (board), `serial_port`, `ram_kb`, `flash_kb`, and `via`: the target the
board is plugged into (an SSH target, or the controller itself); commands run through that
target's transport.

prepare(): the model (w8_a8 → int8 input/output, as on the Edge TPU; convert_only and w8_a16 as
converted), its TFLM arena measured on the controller with `tflite-micro`
(`harness.artifacts.tflm_arena.tflm_arena_bytes`), and a sketch folder (C array, header, .ino with an op
resolver listing exactly the model's operators and the arena = measured + margin + CMSIS-NN
scratch, `harness.artifacts.tflm_array`).
execute(), stopping at the first step that fails, each stop a row that names the fix:
1. the operator check: operators the TFLM Arduino libraries cannot register (GELU,
   BATCH_MATMUL, ...; `tflm_array.TFLM_ARDUINO_OPS`) refuse the model before anything is compiled;
2. the fit estimate (pre-check only, method "fit_check"): arena + model, plus the core's and the
   TFLM library's own size where a reference build of that core is known (`CORE_BASELINE`),
   against `ram_kb` / `flash_kb` and the board's maxima (`BOARD_LIMITS`);
3. `arduino-cli compile --fqbn …` on the `via` machine, with `tflm_library.h` naming the TFLM
   library installed there (`probe`: `arduino-cli lib list`); the real fit is arduino-cli's own
   size report (method "arduino_cli": program and data bytes against the board's maxima, the
   tensor arena's share of the data maximum); a failed build is classified (an operator the
   installed library lacks, a linker region that overflows, a missing library or core);
4. `arduino-cli upload -p … --fqbn …`, then `targets/serial_reader.py` on the `via` machine
   reads the sketch's serial protocol. Latency samples are the board's `micros()` around `Invoke()`
   (method "serial"); a board simulator answers `clock simulated` and its rows are labelled
   `simulated` (runtime "tflm_simulated"), never mixed with device figures. The board's
   `arena_used_bytes` replaces the arena estimate.
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
from harness.artifacts.tflm_array import (LIBRARIES, LIBRARY_HEADER, TEMPLATE, library_header,
                                          missing_ops, model_operators, op_for_method,
                                          write_sketch)
from harness.config import Target
from harness.devices.base import DeviceKind, Rows, TargetContext
from harness.devices.tools import probe_tool
from harness.errors import HarnessError, InfraError, UserError
from harness.parsers import arduino_cli
from harness.results.rows import LATENCY_METRICS, rows_from_records
from harness.results.schema import failure_row, make_row

if TYPE_CHECKING:
    from harness.plan import Job

CLI = "arduino-cli"
CLI_INSTALL = ("install arduino-cli on the machine the board is plugged into: `curl -fsSL "
               "https://raw.githubusercontent.com/arduino/arduino-cli/master/install.sh | "
               "BINDIR=$HOME/.local/bin sh`, then `arduino-cli core update-index && arduino-cli "
               "core install {core}` and a TFLM library: `arduino-cli lib install "
               "Chirale_TensorFlowLite`, or `git clone "
               "https://github.com/tensorflow/tflite-micro-arduino-examples "
               "$HOME/Arduino/libraries/Arduino_TensorFlowLite` (last tested with a 2023 core)")
LIBRARY_INSTALL = ("install a TFLM library where the board is plugged in: `arduino-cli lib "
                   "install Chirale_TensorFlowLite` (Library Manager), or `git clone "
                   "https://github.com/tensorflow/tflite-micro-arduino-examples "
                   "$HOME/Arduino/libraries/Arduino_TensorFlowLite`")
RUNTIME = "tflm"
SIMULATED_RUNTIME = "tflm_simulated"
PROTOCOL_VERSION = "1"
# arduino-cli's own size report of a reference build, per core: (program, data) bytes of an empty
# sketch (arduino-cli compile --fqbn arduino:mbed_nano:nano33ble: "Sketch uses 85328 bytes (8%) of
# program storage space", "Global variables use 44552 bytes (16%) of dynamic memory").
CORE_BASELINE = {"arduino:mbed_nano": (85328, 44552)}
# The TFLM library with a MicroMutableOpResolver on top of that core (program, data), from a
# Nano 33 BLE build: 177472 / 63176 bytes with a 7024-byte model and an 8868-byte arena.
TFLM_OVERHEAD = (177472 - 85328 - 7024, 63176 - 44552 - 8868)
# The boards' real maxima (arduino-cli: "Maximum is 983040 bytes" / "Maximum is 262144 bytes"):
# the Nano 33 BLE keeps 64 KiB of its 1 MiB flash for the bootloader.
BOARD_LIMITS = {"arduino:mbed_nano:nano33ble": (983040, 262144),
                "arduino:mbed_nano:nano33blesense": (983040, 262144)}


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
    if session.get("arena_used_bytes") is not None and session.get("arena_size_bytes"):
        rows.append(make_row(**memory, metric="arena_headroom_bytes", unit="B",
                             value=session["arena_size_bytes"] - session["arena_used_bytes"],
                             message="the sketch's arena minus what the board's TFLM used: "
                                     "replaces the controller's estimate"))
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
    """(estimate rows, refusal message or None): arena + model (+ the core and TFLM library where a
    reference build is known) vs the board's RAM and flash. A pre-check only: the real fit is
    arduino-cli's size report after compiling."""
    extra = artifact.extra
    if target.ram_kb is None or target.flash_kb is None:
        return [], (f"{name}: set `ram_kb:` and `flash_kb:` for this board in inventory.yaml; "
                    "the harness does not flash a model without checking that it fits")
    ram_kb, flash_kb = float(target.ram_kb), float(target.flash_kb)
    program_max, data_max = BOARD_LIMITS.get(target.fqbn or "", (None, None))
    if data_max is not None:
        ram_kb, flash_kb = min(ram_kb, data_max / 1024), min(flash_kb, program_max / 1024)
    baseline = CORE_BASELINE.get(_core(target.fqbn))
    program_reserved, data_reserved = ((baseline[0] + TFLM_OVERHEAD[0],
                                        baseline[1] + TFLM_OVERHEAD[1]) if baseline else (0, 0))
    fit = tflm_arena.fits(extra["arena_size_bytes"], extra["model_bytes"], ram_kb, flash_kb,
                          ram_reserved_bytes=data_reserved, flash_reserved_bytes=program_reserved)
    hint = ("estimate: " + (f"model + arena + {_core(target.fqbn)} core and TFLM library "
                            f"({program_reserved} B program, {data_reserved} B data, from a "
                            "reference build)" if baseline else
                            "model + arena only (the core's and the TFLM library's own size is "
                            "not known for this core)") +
            "; the real fit is arduino-cli's size report (method arduino_cli)")
    common = dict(measurement="memory", method="fit_check", n=1, hint=hint)
    rows = [make_row(**common, metric="mcu_fits", value=int(bool(fit["fits"])), unit="bool")]
    for side in ("ram", "flash"):
        rows.append(make_row(**common, metric=f"{side}_margin_bytes",
                             value=fit[f"{side}_margin_bytes"], unit="B"))
        rows.append(make_row(**common, metric=f"{side}_used_pct", value=fit[f"{side}_used_pct"],
                             unit="%"))
    if fit["fits"]:
        return rows, None
    problems = []
    ram_limit = f"ram_kb {target.ram_kb}" if fit["ram_bytes"] == target.ram_kb * 1024 else \
        "the board's data maximum"
    flash_limit = f"flash_kb {target.flash_kb}" if fit["flash_bytes"] == target.flash_kb * 1024 \
        else "the board's program maximum"
    if not fit["ram_fits"]:
        problems.append(f"RAM: tensor arena {extra['arena_size_bytes']} bytes (measured "
                        f"{extra['arena_measured_bytes']} + margin)"
                        + (f" + {data_reserved} bytes of core and library" if data_reserved
                           else "") +
                        f" > {ram_limit} = {int(fit['ram_bytes'])} bytes, "
                        f"{-fit['ram_margin_bytes']} bytes short")
    if not fit["flash_fits"]:
        problems.append(f"flash: model {extra['model_bytes']} bytes"
                        + (f" + {program_reserved} bytes of core and library" if program_reserved
                           else "") +
                        f" > {flash_limit} = {int(fit['flash_bytes'])} bytes, "
                        f"{-fit['flash_margin_bytes']} bytes short")
    return rows, (f"{name}: {artifact.model} {artifact.variant} does not fit the board "
                  f"({target.fqbn}); not flashed. " + "; ".join(problems) +
                  ". Use a smaller model or variant (w8_a8) or a board with more memory")


def size_rows(output: str, arena_bytes: int) -> list[dict]:
    """The real fit from arduino-cli's size report: its records, whether the build fits the
    board (`mcu_fits`, method arduino_cli) and the tensor arena's share of the data maximum
    (the arena is a global array, part of `data_bytes`)."""
    records = arduino_cli.parse_size_report(output)
    found = {r["metric"]: r["value"] for r in records}
    rows = rows_from_records(records, {})
    common = dict(measurement="memory", method=arduino_cli.METHOD, n=1)
    if "program_bytes" in found and "data_max_bytes" in found:
        fits = found["program_bytes"] <= found["program_max_bytes"] and \
            found["data_bytes"] <= found["data_max_bytes"]
        rows.append(make_row(**common, metric="mcu_fits", value=int(fits), unit="bool",
                             message="arduino-cli's size report of the linked sketch"))
        rows.append(make_row(**common, metric="arena_of_data_max_pct", unit="%",
                             value=round(100.0 * arena_bytes / found["data_max_bytes"], 2),
                             message=f"tensor arena {arena_bytes} bytes (a global, part of "
                                     "data_bytes) against the board's data maximum"))
    return rows


def compile_failure(ctx: TargetContext, output: str, exit_code: int, library: str) -> InfraError:
    """The error a failed `arduino-cli compile` stands for, with its fix."""
    via = ctx.target.via or "the controller"
    failure = arduino_cli.build_failure(output)
    tail = " | ".join(output.strip().splitlines()[-3:])
    if failure["missing_methods"]:
        ops = [op_for_method(m) for m in failure["missing_methods"]]
        return InfraError(f"{ctx.name}: the TFLM library on {via} ({library}) cannot register "
                          f"{', '.join(ops)} (no {', '.join(failure['missing_methods'])} in its "
                          "MicroMutableOpResolver); not flashed", kind="unsupported_op",
                          phase="compile", hint="update the library to a newer TFLM, or use a "
                          "model without these operators")
    if failure["overflows"] or failure["sections"]:
        regions = [f"region {r} overflowed by {n} bytes" if n is not None else
                   f"region {r} overflowed" for r, n in failure["overflows"].items()]
        regions += [f"{s} section exceeds the board's maximum" for s in failure["sections"]]
        return InfraError(f"{ctx.name}: the linked sketch does not fit the board "
                          f"({ctx.target.fqbn}): {'; '.join(regions)}; not flashed",
                          kind="does_not_fit", phase="compile",
                          hint="the fit estimate passed: the core and the TFLM library take the "
                               "rest; use a smaller model or variant (w8_a8) or a larger board")
    if failure["missing_headers"] or failure["platform"]:
        missing = failure["platform"] or ", ".join(failure["missing_headers"])
        return InfraError(f"{ctx.name}: arduino-cli compile on {via} cannot find {missing}",
                          kind="tool_missing", phase="compile",
                          hint=CLI_INSTALL.format(core=_core(ctx.target.fqbn))
                          if failure["platform"] else LIBRARY_INSTALL)
    return InfraError(f"{ctx.name}: arduino-cli compile failed on {via} (exit {exit_code}): "
                      f"{tail}", kind="compile_failed", phase="compile")


def installed_libraries(text: str) -> dict[str, str | None]:
    """TFLM libraries (name as in LIBRARIES → version) in `arduino-cli lib list --format json`
    output (1.x: {"installed_libraries": [...]}, 0.x: a list); Chirale's library.properties
    spells its name Chirale_TensorFLowLite."""
    try:
        document = json.loads(text)
    except ValueError:
        return {}
    entries = document.get("installed_libraries", []) if isinstance(document, dict) else document
    found: dict[str, str | None] = {}
    for entry in entries or []:
        library = (entry or {}).get("library") or {}
        name = str(library.get("name", "")).lower()
        for known in LIBRARIES:
            if name == known.lower():
                found[known] = library.get("version")
    return found


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
        """Model, its operators, measured arena and sketch folder (cached by content); errors
        deferred to execute (the operators are read first, so execute can name unsupported ones
        even when TFLM on the controller cannot load the model)."""
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
            prepared.extra["operators"] = model_operators(model)
            arena = tflm_arena.tflm_arena_bytes(model)
            sketch = write_sketch(model, folder, arena, window)
        except HarnessError as exc:
            prepared.extra["deferred_error"] = exc
            return prepared
        meta = {"sketch_dir": str(sketch.folder), "operators": sketch.operators,
                "arena_measured_bytes": sketch.arena_measured_bytes,
                "arena_size_bytes": sketch.arena_size_bytes,
                "cmsis_scratch_bytes": sketch.cmsis_scratch_bytes,
                "model_bytes": sketch.model_bytes, "model_sha256": sketch.model_sha256,
                "key": key}
        write_json(meta_path, meta)
        prepared.extra.update(meta)
        return prepared

    def build_rows(self, artifact: Artifact, fields: dict[str, Any]) -> Rows:
        """What prepare() built: model size, TFLM arena (measured and declared, an estimate until
        the board reports what it used), CMSIS-NN scratch, operators."""
        extra = artifact.extra
        if "sketch_dir" not in extra:
            return [make_row(**fields, measurement="size", metric="size_bytes",
                             value=artifact.size_bytes, unit="B", n=1, method="flatbuffer")]
        common = dict(fields, n=1)
        estimate = "an estimate until the board reports arena_used_bytes"
        return [
            make_row(**common, measurement="size", metric="size_bytes",
                     value=extra["model_bytes"], unit="B", method="c_array",
                     message=f"{extra['sketch_dir']}"),
            make_row(**common, measurement="memory", metric="tflm_arena_bytes",
                     value=extra["arena_measured_bytes"], unit="B", method="tflm",
                     message="tflite-micro on the controller, reference kernels"),
            make_row(**common, measurement="memory", metric="cmsis_nn_scratch_bytes",
                     value=extra.get("cmsis_scratch_bytes", 0), unit="B", method="sketch",
                     hint=estimate, message="largest CMSIS-NN convolution scratch buffer "
                                            "(Cortex-M with DSP)"),
            make_row(**common, measurement="memory", metric="arena_size_bytes",
                     value=extra["arena_size_bytes"], unit="B", method="sketch", hint=estimate,
                     message="measured TFLM arena + max(10 %, 1 KiB) + CMSIS-NN scratch, "
                             "16-byte aligned"),
            make_row(**common, measurement="build", metric="tflm_operators",
                     value=len(extra["operators"]), unit="count", method="sketch",
                     key=",".join(extra["operators"])),
        ]

    def probe(self, ctx: TargetContext) -> dict[str, Any]:
        """arduino-cli on the machine the board is plugged into, its version, and the TFLM
        libraries installed there (`arduino-cli lib list`)."""
        cli = probe_tool(ctx.transport, CLI)
        found: dict[str, Any] = {"arduino_cli": cli, "arduino_cli_version": None,
                                 "tflm_libraries": {}, "tflm_library": None}
        if cli is None:
            found["hints"] = [f"{CLI} not found: {CLI_INSTALL.format(core=_core(ctx.target.fqbn))}"]
            return found
        version = ctx.transport.run([cli, "version"], timeout=60)
        found["arduino_cli_version"] = arduino_cli.parse_version(version.stdout)
        listed = ctx.transport.run([cli, "lib", "list", "--format", "json"], timeout=120)
        libraries = installed_libraries(listed.stdout) if listed.ok else {}
        found["tflm_libraries"] = libraries
        found["tflm_library"] = next((name for name in ("Chirale_TensorFlowLite",
                                                        "Arduino_TensorFlowLite")
                                      if name in libraries), None)
        library = found["tflm_library"]
        found["summary"] = (f"{CLI} {found['arduino_cli_version'] or '?'}; TFLM library "
                            + (f"{library} {libraries[library] or ''}".strip() if library
                               else "none"))
        found["hints"] = [] if library else [f"no TFLM library installed: {LIBRARY_INSTALL}"]
        return found

    def execute(self, ctx: TargetContext, job: "Job", artifact: Artifact) -> tuple[Rows, Rows]:
        """Operator check, fit estimate, compile (real fit), upload, read the serial protocol;
        every stop is an actionable row."""
        fields = dict(ctx.fields, model=artifact.model, variant=artifact.variant,
                      artifact_sha256=artifact.sha256, runtime=RUNTIME)
        rows = self.build_rows(artifact, fields)
        missing = missing_ops(artifact.extra.get("operators") or [])
        if missing:
            return rows + [failure_row(
                measurement="build", error_kind="unsupported_op", phase="op_check",
                message=f"{ctx.name}: {artifact.model} {artifact.variant} uses {', '.join(missing)}"
                        ", which the TFLM Arduino libraries' MicroMutableOpResolver cannot "
                        "register; not compiled. Use a model without these operators, or run it "
                        "on another target", **fields)], []
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
        measured: list[dict] = []
        try:
            series = self._flash_and_read(ctx, job, artifact, fields, measured)
        except HarnessError as exc:
            return rows + measured + [failure_row(
                measurement="memory" if getattr(exc, "kind", "") == "does_not_fit" else "latency",
                error_kind=getattr(exc, "kind", "user_error"), message=str(exc),
                phase=getattr(exc, "phase", None) or "run", **fields)], []
        return rows + measured, series

    def _compile(self, ctx: TargetContext, artifact: Artifact, fields: dict[str, Any],
                 cli: str, rows: list[dict]) -> tuple[str, str]:
        """Push the sketch (with `tflm_library.h` for the library installed there) and compile it;
        the size report's rows go into `rows`. Returns (sketch dir, build dir) on the target."""
        target, via = ctx.target, ctx.target.via or "the controller"
        library = self.probed(ctx).get("tflm_library")
        if library is None:
            raise InfraError(f"{ctx.name}: no TFLite Micro library installed for {CLI} on {via}",
                             kind="tool_missing", phase="probe", hint=LIBRARY_INSTALL)
        extra = artifact.extra
        remote = f"arduino/{extra['key']}"
        sketch_remote, build_remote = f"{remote}/harness_tflm", f"{remote}/build"
        for path in sorted(Path(extra["sketch_dir"]).iterdir()):
            if path.name != LIBRARY_HEADER:
                ctx.transport.put(path, f"{sketch_remote}/{path.name}")
        header = ctx.local_dir / "arduino" / library / LIBRARY_HEADER
        header.parent.mkdir(parents=True, exist_ok=True)
        header.write_text(library_header(library))
        ctx.transport.put(header, f"{sketch_remote}/{LIBRARY_HEADER}")
        argv = compile_command(target.fqbn or "", sketch_remote, build_remote)
        argv[0] = cli
        res = ctx.transport.run(argv, timeout=target.command_timeout)
        output = res.stdout + "\n" + res.stderr
        (ctx.local_dir / "arduino" / f"{extra['key'][:16]}.compile.txt").write_text(output)
        rows += [dict(r, **{k: v for k, v in fields.items() if r.get(k) is None})
                 for r in size_rows(output, extra["arena_size_bytes"])]
        if not res.ok:
            raise compile_failure(ctx, output, res.exit_code, library)
        return sketch_remote, build_remote

    def _flash_and_read(self, ctx: TargetContext, job: "Job", artifact: Artifact,
                        fields: dict[str, Any], rows: list[dict]) -> list[dict]:
        target, via = ctx.target, ctx.target.via or "the controller"
        if not target.fqbn or not target.serial_port:
            raise UserError(f"{ctx.name}: set `fqbn:` and `serial_port:` in inventory.yaml",
                            hint="e.g. fqbn: arduino:mbed_nano:nano33ble, "
                                 "serial_port: /dev/ttyACM0")
        cli = self.probed(ctx)["arduino_cli"]
        if cli is None:
            raise InfraError(f"{ctx.name}: {CLI} not found on {via}", kind="tool_missing",
                             phase="probe", hint=CLI_INSTALL.format(core=_core(target.fqbn)))
        sketch_remote, build_remote = self._compile(ctx, artifact, fields, cli, rows)
        argv = upload_command(target.fqbn, target.serial_port, sketch_remote, build_remote)
        argv[0] = cli
        res = ctx.transport.run(argv, timeout=target.command_timeout)
        if not res.ok:
            text = (res.stdout + res.stderr).strip()
            hint = CLI_INSTALL.format(core=_core(target.fqbn)) \
                if "platform not installed" in text.lower() else \
                f"check that the board is plugged in at {target.serial_port} on {via} " \
                "(`arduino-cli board list`), and double-tap reset for the bootloader"
            raise InfraError(f"{ctx.name}: {' '.join(argv[:2])} failed on {via} (exit "
                             f"{res.exit_code}): {' | '.join(text.splitlines()[-3:])}",
                             kind="device_missing", phase="upload", hint=hint)
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
        extra = artifact.extra
        board_sha = session["model_sha256"]
        if board_sha and not extra["model_sha256"].startswith(board_sha):
            raise InfraError(f"{ctx.name}: the board runs model {board_sha}, not "
                             f"{extra['model_sha256'][:16]} (upload did not take?)",
                             kind="device_mismatch", phase="run")
        measured, series = session_rows(session, fields)
        rows += measured
        return series
