"""The two error families of the harness, caught once in the CLI.

`UserError` is something the user can fix (a file, a field, a name); its message says where and how.
`InfraError` is the infrastructure failing (unreachable host, timeout, tool missing on a device).
"""

from __future__ import annotations


class HarnessError(Exception):
    """Base of every error the CLI turns into a one-line message."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UserError(HarnessError):
    """Bad input the user can fix: exit code 2."""

    exit_code = 2


class InfraError(HarnessError):
    """A target, transport or tool failed: exit code 3.

    `kind` is a short machine-readable error kind used in result rows
    (unreachable, auth, timeout, runner_crash, runtime_missing, tool_missing, unsupported_op, ...).
    `phase` says where it happened (connect, probe, push, run, fetch).
    """

    exit_code = 3

    def __init__(self, message: str, *, kind: str = "infra", phase: str | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.kind = kind
        self.phase = phase
