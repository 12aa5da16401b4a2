"""The device lock: one controller measures on a device at a time.

A target's jobs run while its controller holds `flock` on `<workdir>/.harness/lock`; the holder
writes who it is into the file (host, pid, since, target). Another controller waits up to the
target's `lock_timeout`, then fails the target with "busy: held by <host> pid <n> since <time>".

- local targets: `fcntl.flock` in this process;
- SSH targets: a small Python program on the device (`LOCK_SCRIPT`, on a connection of its own)
  takes the lock and holds it while its stdin is open; the controller sends a heartbeat line
  every few seconds. It lets go when the controller closes the channel, when the controller dies
  (the connection closes), or when no heartbeat came for `STALE_S` (the link died silently).

flock is released by the kernel when the holding process dies, so a dead controller never leaves
a stale lock. Within one controller the lock is re-entrant: targets that share a device (a board
reached `via` a host, two names for one machine) share one hold. When the lock is really taken,
process groups an earlier controller left in the work dir are killed (`groups.REAP_SCRIPT`).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import select
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Hashable, Protocol

from harness.errors import InfraError
from harness.transport import groups

log = logging.getLogger("harness.transport.lock")
LOCK_FILE = ".harness/lock"  # relative to the work dir
POLL_S = 0.2
HEARTBEAT_S = 5.0
STALE_S = 120.0  # a device-side holder without heartbeat for this long lets go

# argv: lock path, holder info (one JSON line), timeout s, stale s. Prints "WAIT <holder>" once
# while it waits, then "LOCKED" or "BUSY <holder>" (exit 75). Python 3.7+, standard library only.
LOCK_SCRIPT = r'''
import fcntl, os, select, sys, time
path, info, timeout, stale = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
folder = os.path.dirname(path)
if folder and not os.path.isdir(folder):
    os.makedirs(folder)
f = open(path, "a+")
def holder():
    f.seek(0)
    return f.read().strip().replace("\n", " ")
def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
def closed(wait):
    ready = select.select([0], [], [], wait)[0]
    return bool(ready) and not os.read(0, 4096)
deadline, waited = time.time() + timeout, False
while True:
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        break
    except (IOError, OSError):
        if not waited:
            say("WAIT " + holder())
            waited = True
        if time.time() >= deadline:
            say("BUSY " + holder())
            sys.exit(75)
        if closed(0.2):
            sys.exit(0)
try:  # who holds it is advisory: a full disk must not stop the lock
    os.ftruncate(f.fileno(), 0)
    os.pwrite(f.fileno(), (info + "\n").encode(), 0)
except OSError:
    pass
say("LOCKED")
while select.select([0], [], [], stale)[0] and os.read(0, 4096):
    pass
'''


class Held(Protocol):
    """A lock a transport took; `release()` lets go (idempotent)."""

    def release(self) -> None: ...


def holder_info(target: str) -> str:
    """Who holds the lock: one JSON line written into the lock file."""
    return json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                       "since": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                       "target": target})


def describe_holder(text: str) -> str:
    """'held by <host> pid <n> since <time>' from the lock file's contents."""
    try:
        info = json.loads(text)
        return f"held by {info['host']} pid {info['pid']} since {info['since']}"
    except (ValueError, KeyError, TypeError):
        return f"held by an unknown holder ({text[:200]!r})" if text else \
            "held by a holder that wrote nothing"


def busy_error(name: str, holder_text: str, timeout: float) -> InfraError:
    """The error of a target whose device another controller holds."""
    return InfraError(f"{name}: busy: {describe_holder(holder_text)}", kind="busy", phase="lock",
                      hint=f"another harness run is measuring on this device (waited {timeout:g} "
                           f"s); let it finish, or raise lock_timeout of target {name}")


def _waiting(name: str, holder_text: str, timeout: float) -> None:
    log.warning("%s: device lock %s; waiting up to %g s", name, describe_holder(holder_text),
                timeout)


# --------------------------------------------------------------------------- local: fcntl


@dataclass
class LocalHold:
    """flock held by this process on a local lock file."""

    handle: Any

    def release(self) -> None:
        if self.handle is not None:
            self.handle.close()  # closing the file releases the flock
            self.handle = None


def hold_local(name: str, path: Path, info: str, timeout: float,
               cancel: threading.Event | None) -> LocalHold:
    """Take flock on `path`, waiting up to `timeout` s (or until `cancel` is set)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")
    deadline = time.monotonic() + timeout
    waited = False
    try:
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip()
                if not waited:
                    _waiting(name, holder, timeout)
                    waited = True
                if time.monotonic() >= deadline:
                    raise busy_error(name, holder, timeout) from None
                if cancel is not None and cancel.wait(POLL_S):
                    raise groups.interrupted_error(name)
                if cancel is None:
                    time.sleep(POLL_S)
        try:  # who holds it is advisory: a full disk must not stop the lock
            os.ftruncate(handle.fileno(), 0)
            os.pwrite(handle.fileno(), (info + "\n").encode(), 0)
        except OSError as exc:
            log.warning("%s: cannot write the lock holder into %s: %s", name, path, exc)
    except BaseException:
        handle.close()
        raise
    return LocalHold(handle)


# --------------------------------------------------------------------------- SSH: holder on device


@dataclass
class ChannelHold:
    """The device-side holder on its own SSH channel, kept alive by a heartbeat thread."""

    chan: Any
    close: Callable[[], None]  # closes the holder's connection
    _stop: threading.Event = field(default_factory=threading.Event)

    def start_heartbeat(self) -> None:
        threading.Thread(target=self._beat, name="lock-heartbeat", daemon=True).start()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                self.chan.sendall(b"\n")
            except Exception:  # noqa: BLE001 - a dead link: the device side lets go by itself
                return

    def release(self) -> None:
        if not self._stop.is_set():
            self._stop.set()
            try:
                self.chan.close()
            finally:
                self.close()


def hold_on_channel(name: str, chan: Any, close: Callable[[], None], timeout: float,
                    cancel: threading.Event | None) -> ChannelHold:
    """Wait for `LOCK_SCRIPT`, already started on `chan`, to say LOCKED; BUSY is a busy error."""
    hold = ChannelHold(chan, close)
    out, err = b"", b""
    deadline = time.monotonic() + timeout + 30  # the script gives up by itself after `timeout`
    try:
        while True:
            while chan.recv_ready():
                out += chan.recv(4096)
            while chan.recv_stderr_ready():
                err += chan.recv_stderr(4096)
            *lines, rest = out.decode("utf-8", "replace").split("\n")
            for line in lines:
                if line == "LOCKED":
                    hold.start_heartbeat()
                    return hold
                if line.startswith("WAIT "):
                    _waiting(name, line[5:], timeout)
                elif line.startswith("BUSY "):
                    raise busy_error(name, line[5:], timeout)
            out = rest.encode()
            if chan.exit_status_ready() or chan.closed:
                raise InfraError(f"{name}: cannot take the device lock {LOCK_FILE}: "
                                 f"{err.decode('utf-8', 'replace').strip()[-500:] or 'no output'}",
                                 kind="workdir", phase="lock",
                                 hint="the device needs python3 and a writable work dir")
            if cancel is not None and cancel.is_set():
                raise groups.interrupted_error(name)
            if time.monotonic() >= deadline:
                raise busy_error(name, "", timeout)
            select.select([chan], [], [], POLL_S)
    except BaseException:
        hold.release()
        raise


# --------------------------------------------------------------------------- one hold per device


@dataclass
class _Shared:
    hold: Held | None = None
    count: int = 0
    guard: threading.Lock = field(default_factory=threading.Lock)


_SHARED: dict[Hashable, _Shared] = {}
_SHARED_GUARD = threading.Lock()


@dataclass
class DeviceLock:
    """This target's share of a device lock; `release()` once its jobs are done."""

    key: Hashable
    name: str
    released: bool = False

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        shared = _SHARED[self.key]
        with shared.guard:
            shared.count -= 1
            if shared.count == 0 and shared.hold is not None:
                shared.hold.release()
                shared.hold = None
                log.info("%s: device lock released", self.name)


def acquire(transport: Any, name: str, timeout: float,
            cancel: threading.Event | None = None) -> DeviceLock | None:
    """Hold the device lock of `transport` for target `name` (None: the transport has no lock).

    Raises `InfraError(kind="busy", phase="lock")` when another controller keeps it longer than
    `timeout` s, `InfraError(kind="interrupted")` when `cancel` is set while waiting.
    """
    hold_lock = getattr(transport, "hold_lock", None)
    if hold_lock is None:  # a fake transport of the tests: nothing to lock
        return None
    key = transport.lock_key
    with _SHARED_GUARD:
        shared = _SHARED.setdefault(key, _Shared())
    with shared.guard:
        if shared.count == 0:
            started = time.monotonic()
            shared.hold = hold_lock(LOCK_FILE, holder_info(name), timeout, cancel)
            log.info("%s: device lock taken in %.2f s", name, time.monotonic() - started)
            try:
                reap(transport, name)
            except BaseException:
                shared.hold.release()
                shared.hold = None
                raise
        shared.count += 1
    return DeviceLock(key, name)


def reap(transport: Any, name: str) -> list[str]:
    """Kill process groups that a controller which is gone left running in the work dir."""
    res = transport.run(["sh", "-c", groups.REAP_SCRIPT, "sh", groups.RUN_DIR], timeout=60)
    reaped = [line for line in res.stdout.splitlines() if line.strip()]
    for line in reaped:
        log.warning("%s: killed process group %s, left running on the device by an earlier "
                    "run", name, line)
    return reaped
