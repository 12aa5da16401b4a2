"""Finding a tool on a target (trtexec, arduino-cli, benchmark_model): shared by the device kinds."""

from __future__ import annotations

import shlex

from harness.config import Target
from harness.errors import InfraError
from harness.transport import Transport


def probe_tool(transport: Transport, path: str) -> str | None:
    """The resolved path of an executable on the target (absolute path or a name on PATH)."""
    script = 'if [ -x "$1" ]; then echo "$1"; else command -v "$1" || true; fi'
    try:
        res = transport.run(["sh", "-c", script, "sh", path], timeout=30)
    except InfraError:
        return None
    found = res.stdout.strip().splitlines()
    return found[-1] if res.ok and found else None


def find_benchmark_model(target: Target, transport: Transport) -> str | None:
    """The `benchmark_model` binary to use on a target, or None when it has none.

    The inventory field `benchmark_model` wins and must be executable there (else InfraError
    tool_missing, since the user asked for it); otherwise `command -v benchmark_model` on the
    target's PATH.
    """
    configured = target.benchmark_model
    if configured:
        result = transport.run(["sh", "-c", f"test -x {shlex.quote(configured)}"], timeout=30)
        if not result.ok:
            raise InfraError(f"{transport.name}: benchmark_model {configured!r} from the inventory "
                             "is not an executable file on the target", kind="tool_missing",
                             phase="probe", hint="fix the `benchmark_model` field of this target, "
                             "or remove it to use the one on PATH or op-split profiling")
        return configured
    result = transport.run(["sh", "-c", "command -v benchmark_model"], timeout=30)
    found = result.stdout.strip().splitlines()
    return found[0] if result.ok and found else None
