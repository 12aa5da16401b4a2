"""Local transport: the host target, run as a fresh subprocess in a work directory."""

from __future__ import annotations

import os
import shutil
import threading
import subprocess
from pathlib import Path

from harness.errors import InfraError
from harness.transport.base import CommandResult


class LocalTransport:
    """Runs commands on this machine, in `workdir`, each in a fresh process."""

    is_local = True

    def __init__(self, name: str, workdir: str | os.PathLike[str]) -> None:
        self.name = name
        self.workdir = str(Path(workdir).expanduser().resolve())
        Path(self.workdir).mkdir(parents=True, exist_ok=True)

    def run(self, argv: list[str], timeout: float | None = None) -> CommandResult:
        """Run `argv` (no shell) in the work dir; a timeout is an InfraError."""
        try:
            proc = subprocess.run(argv, cwd=self.workdir, capture_output=True, text=True,
                                  timeout=timeout, stdin=subprocess.DEVNULL, check=False)
        except subprocess.TimeoutExpired as exc:
            raise InfraError(f"{self.name}: command timed out after {timeout:.0f} s: {argv[0]}",
                             kind="timeout", phase="run") from exc
        except FileNotFoundError as exc:
            raise InfraError(f"{self.name}: command not found: {argv[0]}", kind="tool_missing",
                             phase="run") from exc
        return CommandResult(proc.returncode, proc.stdout, proc.stderr)

    def _path(self, remote: str) -> Path:
        path = Path(remote)
        return path if path.is_absolute() else Path(self.workdir) / path

    def put(self, local: Path, remote: str) -> None:
        """Copy a file into the work dir (atomically: copy then rename)."""
        dest = self._path(remote)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f"{dest.name}.{os.getpid()}.{threading.get_ident()}.part")
        shutil.copyfile(local, tmp)
        os.replace(tmp, dest)

    def get(self, remote: str, local: Path) -> None:
        """Copy a file out of the work dir."""
        local.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self._path(remote), local)

    def close(self) -> None:
        """Nothing to release locally."""
