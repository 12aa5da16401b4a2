"""Local transport: the host target, run as a fresh subprocess in a work directory."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

from harness.errors import InfraError
from harness.transport import disk, groups, lock
from harness.transport.base import CommandResult

log = logging.getLogger("harness.transport.local")
POLL_S = 0.1


class LocalTransport:
    """Runs commands on this machine, in `workdir`, each in a fresh process group.

    `cancel` (set by the orchestrator) is polled while a command runs: once it is set, the command's
    process group is stopped and `run` raises `InfraError(kind="interrupted")`.
    """

    is_local = True

    def __init__(self, name: str, workdir: str | os.PathLike[str]) -> None:
        self.name = name
        self.workdir = str(Path(workdir).expanduser().resolve())
        self.cancel: threading.Event | None = None
        Path(self.workdir).mkdir(parents=True, exist_ok=True)

    def run(self, argv: list[str], timeout: float | None = None) -> CommandResult:
        """Run `argv` (no shell) in the work dir, in its own process group; a timeout is an
        InfraError (the group is stopped first)."""
        self._check_command(argv[0])
        if self.cancel is not None and self.cancel.is_set():
            raise groups.interrupted_error(self.name)
        pidfile = groups.new_pidfile()
        watch_r, watch_w = os.pipe()  # the wrapper's watchdog: EOF when we close it or die
        try:
            proc = subprocess.Popen(groups.wrapped(argv, pidfile), cwd=self.workdir, stdin=watch_r,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    errors="replace", start_new_session=True)
        except BaseException:
            os.close(watch_w)
            raise
        finally:
            os.close(watch_r)
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                try:
                    stdout, stderr = proc.communicate(timeout=POLL_S)
                    return CommandResult(proc.returncode, stdout, stderr)
                except subprocess.TimeoutExpired:
                    pass
                if self.cancel is not None and self.cancel.is_set():
                    raise self._stop(proc, pidfile, watch_w, groups.interrupted_error(self.name))
                if deadline is not None and time.monotonic() >= deadline:
                    raise self._stop(proc, pidfile, watch_w, InfraError(
                        f"{self.name}: command timed out after {timeout:g} s: {argv[0]}",
                        kind="timeout", phase="run"))
        finally:
            try:
                os.close(watch_w)
            except OSError:
                pass

    def _check_command(self, command: str) -> None:
        found = (os.access(Path(self.workdir) / command, os.X_OK) if "/" in command
                 else shutil.which(command) is not None)
        if not found:
            raise InfraError(f"{self.name}: command not found: {command}", kind="tool_missing",
                             phase="run")

    def _stop(self, proc: subprocess.Popen, pidfile: str, watch_w: int,
              error: InfraError) -> InfraError:
        """Stop the command's process group, check it is gone; `error`, saying how it went."""
        started = time.monotonic()
        gone = stop_group(Path(self.workdir) / pidfile)
        os.close(watch_w)  # the watchdog stops whatever is left, and the wrapper ends
        try:
            proc.communicate(timeout=groups.GRACE_S + 3)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
        seconds = time.monotonic() - started
        if gone:
            log.info("%s: stopped the command's process group in %.2f s", self.name, seconds)
            error.message += f"; its process group was stopped ({seconds:.1f} s)"
        else:
            log.error("%s: the command's process group is still running after SIGKILL",
                      self.name)
            error.message += "; its process group is STILL RUNNING after SIGKILL"
        return error

    def _path(self, remote: str) -> Path:
        path = Path(remote)
        return path if path.is_absolute() else Path(self.workdir) / path

    def put(self, local: Path, remote: str) -> None:
        """Copy a file into the work dir (atomically: copy then rename)."""
        dest = self._path(remote)
        tmp = dest.with_name(f"{dest.name}.{os.getpid()}.{threading.get_ident()}.part")
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(local, tmp)
            os.replace(tmp, dest)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            full = disk.full_disk_error(self, str(dest), Path(local).stat().st_size, str(exc))
            if full is not None:
                raise full from exc
            raise InfraError(f"{self.name}: cannot write {dest}: {exc}", kind="workdir",
                             phase="push", hint=f"check `workdir` of target {self.name}") from exc

    def get(self, remote: str, local: Path) -> None:
        """Copy a file out of the work dir."""
        local.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self._path(remote), local)

    @property
    def lock_key(self) -> tuple[str, str]:
        """What identifies this device for the device lock."""
        return ("local", self.workdir)

    def hold_lock(self, path: str, info: str, timeout: float,
                  cancel: threading.Event | None) -> lock.LocalHold:
        """Take the device lock (`harness.transport.lock`): flock in this process."""
        return lock.hold_local(self.name, self._path(path), info, timeout, cancel)

    def close(self) -> None:
        """Nothing to release locally."""


def group_alive(pgid: int) -> bool:
    """Whether a process of group `pgid` is alive (zombies waiting for a slow init do not count;
    without /proc, `killpg(pgid, 0)` decides)."""
    proc = Path("/proc")
    if (proc / "self" / "stat").is_file():
        for entry in proc.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
        return False
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_group(pidfile: Path, grace: float = groups.GRACE_S) -> bool:
    """SIGTERM the process group named in `pidfile`, SIGKILL it after `grace` s; whether it is
    gone (True also when there is no pid file: the command had not started or has ended)."""
    try:
        pgid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return True
    sent_kill = False
    started = time.monotonic()
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    while group_alive(pgid):
        waited = time.monotonic() - started
        if waited >= grace and not sent_kill:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                return True
            sent_kill = True
        if waited >= grace + 3:
            return False
        time.sleep(0.02)
    return True
