"""Edge TPU artifacts: the int8-I/O model (`harness.artifacts.int8_io`) compiled by
`edgetpu_compiler` on the controller (x86-64 Linux only), cached by model hash and compiler version.
"""

from __future__ import annotations

import logging
import os
import platform
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from harness.artifacts.cache import key_of, sha256_file, write_json
from harness.artifacts.int8_io import Int8Model
from harness.errors import InfraError
from harness.parsers.edgetpu_compiler import compiler_version

log = logging.getLogger("harness.artifacts.edgetpu")

COMPILER = "edgetpu_compiler"
COMPILER_ENV = "HARNESS_EDGETPU_COMPILER"
INSTALL_HINT = ("install the Edge TPU compiler on this x86-64 Linux controller from the Coral apt "
                "repository: `echo \"deb https://packages.cloud.google.com/apt coral-edgetpu-stable "
                "main\" | sudo tee /etc/apt/sources.list.d/coral-edgetpu.list && curl "
                "https://packages.cloud.google.com/apt/doc/apt-key.gpg | sudo apt-key add - && "
                "sudo apt-get update && sudo apt-get install edgetpu-compiler` (or set "
                f"{COMPILER_ENV}=/path/to/edgetpu_compiler)")


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
    version = compiler_version(version_out.stdout + version_out.stderr)
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
