"""The Transport seam: everything device-side goes through run / put / get."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class CommandResult:
    """Outcome of one command on a target."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


class Transport(Protocol):
    """What the orchestrator needs from a target connection.

    `workdir` is the target-side directory the harness owns; `is_local` says whether commands run
    on the controller itself. Commands are argv lists: each transport quotes them for its own shell
    (never a pre-joined string).

    The real transports also run each command in a process group of its own that a timeout, a
    set `cancel` event (assigned by the orchestrator) or the controller's death stops
    (`harness.transport.groups`), and offer `lock_key` / `hold_lock(path, info, timeout, cancel)`
    for the device lock (`harness.transport.lock`); a transport without them is not locked.
    """

    name: str
    workdir: str
    is_local: bool

    def run(self, argv: list[str], timeout: float | None = None) -> CommandResult: ...

    def put(self, local: Path, remote: str) -> None: ...

    def get(self, remote: str, local: Path) -> None: ...

    def close(self) -> None: ...
