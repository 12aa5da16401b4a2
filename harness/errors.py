"""The error families of the harness and the one classification of error kinds.

`UserError` is something the user can fix (a file, a field, a name); its message says where and how.
`InfraError` is the infrastructure failing (unreachable host, timeout, tool missing on a device).
`InternalError` is a bug in the harness (an exception nobody expected); its message names the log
that holds the traceback.

Every failure row carries an `error_kind`, one of `ErrorKind`; each kind has its exit-code class
(`ExitCode`): a model result (a row only, exit 0), a user error (2), an infrastructure or tool
failure (3), an internal error (4), a job stopped by Ctrl-C (130). The orchestrator (which failures stop a target's later jobs)
and the CLI (the run's exit code) both ask `exit_code_of` / `is_fatal` / `run_exit_code`; the kinds
are listed with their meaning in docs/CONTRACTS.md ("Error kinds").
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Iterable


class ExitCode(IntEnum):
    """Exit codes of the `harness` command."""

    OK = 0
    REGRESSION = 1
    USER = 2
    INFRA = 3
    INTERNAL = 4
    INTERRUPTED = 130  # Ctrl-C: 128 + SIGINT, as a shell reports it


_MODEL, _USER, _INFRA, _INTERNAL = ExitCode.OK, ExitCode.USER, ExitCode.INFRA, ExitCode.INTERNAL


class ErrorKind(StrEnum):
    """Every error kind a row, an error or a device-side error document may carry.

    Each member has `exit_code` (its class) and `fatal` (no later job of the target can run either,
    so they are recorded with the same cause instead of being tried).
    """

    exit_code: ExitCode
    fatal: bool

    def __new__(cls, value: str, exit_code: ExitCode, fatal: bool = False) -> "ErrorKind":
        member = str.__new__(cls, value)
        member._value_ = value
        member.exit_code = exit_code
        member.fatal = fatal
        return member

    # a model result: the device or the converter cannot do this model (a row, exit 0)
    CONVERSION_FAILED = "conversion_failed", _MODEL
    NOT_APPLICABLE = "not_applicable", _MODEL
    UNSUPPORTED = "unsupported", _MODEL
    UNSUPPORTED_OP = "unsupported_op", _MODEL
    MODEL_LOAD = "model_load", _MODEL
    DOES_NOT_FIT = "does_not_fit", _MODEL
    ARENA = "arena", _MODEL
    ACCURACY_FAILED = "accuracy_failed", _MODEL
    OP_SPLIT = "op_split", _MODEL
    OP_SPLIT_OP = "op_split_op", _MODEL
    CAPTURE = "capture", _MODEL
    MISSING_INTERMEDIATE = "missing_intermediate", _MODEL
    BOARD_ARENA = "board_arena", _MODEL
    BOARD_INVOKE = "board_invoke", _MODEL
    EVAL_TOO_LONG = "eval_too_long", _MODEL
    # something the user can fix (exit 2)
    USER_ERROR = "user_error", _USER
    # the infrastructure or a tool failed (exit 3)
    UNREACHABLE = "unreachable", _INFRA, True
    AUTH = "auth", _INFRA, True
    HOSTKEY = "hostkey", _INFRA, True
    WORKDIR = "workdir", _INFRA, True
    RUNTIME_MISSING = "runtime_missing", _INFRA, True
    TOOL_MISSING = "tool_missing", _INFRA, True
    TIMEOUT = "timeout", _INFRA
    RUNNER_CRASH = "runner_crash", _INFRA
    BAD_JOB = "bad_job", _INFRA
    PUSH_CORRUPT = "push_corrupt", _INFRA
    DEVICE_MISSING = "device_missing", _INFRA
    DEVICE_MISMATCH = "device_mismatch", _INFRA
    ONNXRUNTIME_MISSING = "onnxruntime_missing", _INFRA
    FLATBUFFER_TOOLS_MISSING = "flatbuffer_tools_missing", _INFRA
    TOOL_FAILED = "tool_failed", _INFRA
    COMPILE_FAILED = "compile_failed", _INFRA
    TRTEXEC_FAILED = "trtexec_failed", _INFRA
    BUILD_FAILED = "build_failed", _INFRA
    BOARD_MODEL_VERSION = "board_model_version", _INFRA
    BOARD_COMMAND = "board_command", _INFRA
    PYTHON_MISSING = "python_missing", _INFRA, True
    VENV_MISSING = "venv_missing", _INFRA, True
    NO_WHEEL = "no_wheel", _INFRA
    VERIFY_FAILED = "verify_failed", _INFRA
    DISK_FULL = "disk_full", _INFRA, True
    NO_NETWORK = "no_network", _INFRA
    BUSY = "busy", _INFRA, True
    INFRA = "infra", _INFRA
    # a bug in the harness (exit 4)
    INTERNAL_ERROR = "internal_error", _INTERNAL
    # the run was stopped by Ctrl-C before this job finished (`--resume` runs it again)
    INTERRUPTED = "interrupted", ExitCode.INTERRUPTED


def error_kind(kind: str | None) -> ErrorKind | None:
    """The ErrorKind named `kind`, or None for a kind this harness does not know."""
    try:
        return ErrorKind(kind)
    except ValueError:
        return None


def exit_code_of(kind: str | None) -> ExitCode:
    """The exit-code class of a failure of this kind. A kind this harness does not know (a newer
    device runner, a board sketch) counts as an infrastructure failure: nothing is hidden."""
    known = error_kind(kind)
    return known.exit_code if known is not None else ExitCode.INFRA


def is_fatal(kind: str | None) -> bool:
    """Whether a failure of this kind stops every later job of its target."""
    known = error_kind(kind)
    return known is not None and known.fatal


def run_exit_code(failed_kinds: Iterable[str | None]) -> ExitCode:
    """The exit code of a run whose failed rows have these kinds: the highest class among them
    (interrupted 130 > internal 4 > infrastructure 3 > user 2 > model results 0)."""
    return max((exit_code_of(kind) for kind in failed_kinds), default=ExitCode.OK)


def _checked(kind: str) -> str:
    known = error_kind(kind)
    if known is None:
        raise ValueError(f"unknown error kind {kind!r}: add it to harness.errors.ErrorKind and "
                         "docs/CONTRACTS.md")
    return known.value


class HarnessError(Exception):
    """Base of every error the CLI turns into a one-line message.

    `kind` is the error kind a row records when the error stops a job (one of `ErrorKind`).
    """

    exit_code: int = ExitCode.USER
    default_kind: str = ErrorKind.USER_ERROR

    def __init__(self, message: str, *, hint: str | None = None, kind: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.kind = _checked(kind or self.default_kind)

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UserError(HarnessError):
    """Bad input the user can fix: exit code 2."""

    exit_code = ExitCode.USER


class InfraError(HarnessError):
    """A target, transport or tool failed: exit code 3.

    `kind` is the error kind recorded in result rows (unreachable, auth, timeout, runner_crash,
    runtime_missing, tool_missing, ...; `ErrorKind`). `phase` says where it happened (connect,
    probe, push, run, fetch, build).
    """

    exit_code = ExitCode.INFRA
    default_kind = ErrorKind.INFRA

    def __init__(self, message: str, *, kind: str = ErrorKind.INFRA, phase: str | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint, kind=kind)
        self.phase = phase


class InternalError(HarnessError):
    """An unexpected exception (a bug in the harness): exit code 4; `log` holds the traceback."""

    exit_code = ExitCode.INTERNAL
    default_kind = ErrorKind.INTERNAL_ERROR

    def __init__(self, message: str, *, log: str | None = None) -> None:
        super().__init__(message, hint=f"traceback in {log}" if log else None)
        self.log = log
