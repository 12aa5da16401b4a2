"""Edge TPU artifacts: the full-int8 model with int8 input/output and a static batch of 1, compiled
by `edgetpu_compiler` on the controller (x86-64 Linux only).

The int8-I/O model is made from the suite's `w8_a8` artifact by TensorFlow Lite's own
`modify_model_interface` (the tool behind `inference_input_type=tf.int8`): it drops the float
QUANTIZE at the input and the DEQUANTIZE at the output and keeps every other tensor and its
quantization parameters. So the Edge TPU model is exactly the model measured as `w8_a8` on the CPUs
(same calibration from the same representative data), with integer I/O as the Edge TPU requires.
"""

from __future__ import annotations

import logging
import os
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from harness.artifacts.cache import code_version, key_of, package_version, sha256_file, write_json
from harness.errors import InfraError, UserError

log = logging.getLogger("harness.artifacts.edgetpu")

TFLITE_INT8 = 9  # tflite::TensorType_INT8
COMPILER = "edgetpu_compiler"
COMPILER_ENV = "HARNESS_EDGETPU_COMPILER"
INSTALL_HINT = ("install the Edge TPU compiler on this x86-64 Linux controller from the Coral apt "
                "repository: `echo \"deb https://packages.cloud.google.com/apt coral-edgetpu-stable "
                "main\" | sudo tee /etc/apt/sources.list.d/coral-edgetpu.list && curl "
                "https://packages.cloud.google.com/apt/doc/apt-key.gpg | sudo apt-key add - && "
                "sudo apt-get update && sudo apt-get install edgetpu-compiler` (or set "
                f"{COMPILER_ENV}=/path/to/edgetpu_compiler)")
VERSION_RE = re.compile(r"Edge TPU Compiler version\s+(\S+)")


@dataclass
class Int8Model:
    """The int8-I/O model and what was checked about it."""

    path: Path
    sha256: str
    size_bytes: int
    input_shape: list[int]
    input_dtype: str
    output_dtype: str
    input_quantization: tuple[float, int]
    cached: bool = False


@dataclass
class Compiled:
    """What `edgetpu_compiler` made of one model."""

    path: Path
    sha256: str
    size_bytes: int
    compiler_version: str | None
    stdout: str
    log: str
    argv: list[str] = field(default_factory=list)
    cached: bool = False


def _interface_info(path: Path) -> tuple[list[int], list[int], str, str, tuple[float, int]]:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interp = Interpreter(model_path=str(path),
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    signature = [int(d) for d in inp.get("shape_signature", inp["shape"])]
    return ([int(d) for d in inp["shape"]], signature, inp["dtype"].__name__,
            out["dtype"].__name__, tuple(inp["quantization"]))


def int8_io_model(w8_a8_model: Path, cache: Path) -> Int8Model:
    """The int8-input/int8-output version of a full-integer (`w8_a8`) model, cached by content.

    UserError when the model has no static batch of 1 or is not full-integer inside.
    """
    source_sha = sha256_file(w8_a8_model)
    key = key_of("int8io", source_sha, code_version("artifacts/edgetpu_compile.py"),
                 package_version("tensorflow-cpu", "tensorflow"))
    out = cache / "edgetpu" / f"{key}.int8io.tflite"
    cached = out.is_file()
    if not cached:
        try:
            from tensorflow.lite.tools.optimize.python import (
                _pywrap_modify_model_interface as modify)
        except ImportError as exc:
            raise InfraError(f"cannot make the int8-I/O Edge TPU model: TensorFlow's "
                             f"modify_model_interface is not importable ({exc})",
                             kind="tool_missing", phase="build",
                             hint="pip install 'harness[convert]' (tensorflow-cpu)") from exc
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + f".{os.getpid()}.part")
        status = modify.modify_model_interface(str(w8_a8_model), str(tmp), TFLITE_INT8, TFLITE_INT8)
        if status != 0 or not tmp.is_file():
            tmp.unlink(missing_ok=True)
            raise UserError(f"{w8_a8_model}: cannot give the model int8 input/output "
                            f"(modify_model_interface status {status})",
                            hint="the Edge TPU needs a full-integer model: the w8_a8 variant of a "
                                 "Keras model with a representative dataset")
        os.replace(tmp, out)
    shape, signature, in_dtype, out_dtype, quant = _interface_info(out)
    if in_dtype != "int8" or out_dtype != "int8":
        raise UserError(f"{w8_a8_model}: the Edge TPU model has {in_dtype} input and {out_dtype} "
                        "output, not int8", hint="quantize fully (variant w8_a8)")
    if not signature or signature[0] != 1:
        raise UserError(f"{w8_a8_model}: input shape {signature} has no static batch of 1",
                        hint="convert from a concrete function or SavedModel signature with a "
                             "(1, ...) input; the Edge TPU compiler needs static shapes")
    return Int8Model(out, sha256_file(out), out.stat().st_size, shape, in_dtype, out_dtype,
                     (float(quant[0]), int(quant[1])), cached)


def compiler_path() -> str | None:
    """The edgetpu_compiler to use: $HARNESS_EDGETPU_COMPILER, else the one on PATH."""
    configured = os.environ.get(COMPILER_ENV)
    if configured:
        return configured if Path(configured).is_file() else None
    return shutil.which(COMPILER)


def require_compiler() -> str:
    """The compiler's path, or an InfraError(tool_missing) naming the package to install."""
    system, machine = platform.system(), platform.machine().lower()
    found = compiler_path()
    if found:
        return found
    where = f"this controller ({system} {machine})"
    if system != "Linux" or machine not in ("x86_64", "amd64"):
        raise InfraError(f"{COMPILER} is not available on {where}: it runs on x86-64 Linux only",
                         kind="tool_missing", phase="build",
                         hint="run the harness controller on an x86-64 Linux machine with the "
                              "Coral apt package edgetpu-compiler installed")
    raise InfraError(f"{COMPILER} not found on {where}", kind="tool_missing", phase="build",
                     hint=INSTALL_HINT)


def compile_command(compiler: str, model: Path, out_dir: Path) -> list[str]:
    """The compiler command line: show the operation table, write into `out_dir`."""
    return [compiler, "--show_operations", "--out_dir", str(out_dir), str(model)]


def compile_model(model: Int8Model, cache: Path, compiler: str | None = None,
                  timeout: float = 600.0) -> Compiled:
    """Compile the int8 model with edgetpu_compiler (cached by model hash + compiler version)."""
    compiler = compiler or require_compiler()
    try:
        version_out = subprocess.run([compiler, "--version"], capture_output=True, text=True,
                                     timeout=60, check=False)
    except OSError as exc:
        raise InfraError(f"{compiler} cannot be started: {exc}", kind="tool_missing",
                         phase="build", hint=INSTALL_HINT) from exc
    match = VERSION_RE.search(version_out.stdout + version_out.stderr)
    version = match.group(1) if match else None
    key = key_of("edgetpu", model.sha256, version)
    out_dir = cache / "edgetpu" / key
    compiled = out_dir / f"{model.path.stem}_edgetpu.tflite"
    stdout_file, log_file = out_dir / "compiler_stdout.txt", out_dir / f"{model.path.stem}_edgetpu.log"
    argv = compile_command(compiler, model.path, out_dir)
    if compiled.is_file() and stdout_file.is_file():
        return Compiled(compiled, sha256_file(compiled), compiled.stat().st_size, version,
                        stdout_file.read_text(), log_file.read_text() if log_file.is_file() else "",
                        argv, cached=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise InfraError(f"{COMPILER} timed out after {timeout:.0f} s on {model.path.name}",
                         kind="timeout", phase="build") from exc
    if proc.returncode != 0 or not compiled.is_file():
        detail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
        raise InfraError(f"{COMPILER} failed on {model.path.name} (exit {proc.returncode}): "
                         f"{' | '.join(detail) or 'no output'}", kind="compile_failed",
                         phase="build", hint="see the operation log; the Edge TPU needs a "
                                             "full-int8 model with static shapes")
    stdout_file.write_text(proc.stdout)
    write_json(out_dir / "compile.json", {"argv": argv, "version": version})
    return Compiled(compiled, sha256_file(compiled), compiled.stat().st_size, version,
                    proc.stdout, log_file.read_text() if log_file.is_file() else "", argv)
