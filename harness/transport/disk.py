"""A full disk on the device: told apart from a lost connection, named with its host and mount.

SFTP reports a full disk as a bare "Failure", and a runner that cannot write its result dies with
"No space left on device": `full_disk_error` asks the device (`df -Pk`) how much space the work
dir's file system has left, and returns `InfraError(kind="disk_full")` naming the target, its
host, the mount point and the free space, or None when the disk is not what failed.
"""

from __future__ import annotations

import posixpath
import socket
from typing import Any

from harness.errors import InfraError

NO_SPACE = "No space left on device"
LOW_KIB = 64  # this little free space left is a full disk, whatever the write needed


def describe_host(transport: Any) -> str:
    """'rpi4 (pi@10.0.0.5:22)' / 'host (this machine)' for messages."""
    host = getattr(transport, "host", None)
    if getattr(transport, "is_local", False) or not host:
        return f"{transport.name} ({socket.gethostname()}, this machine)"
    return f"{transport.name} ({host}:{getattr(transport, 'port', 22)})"


def free_space(transport: Any, path: str) -> tuple[str, str, int, str] | None:
    """(file system, mount point, free KiB, use %) of the file system holding `path` (or its
    nearest existing parent) on the target, or None when `df` cannot tell."""
    folder = path if path.endswith("/") else posixpath.dirname(path) or "."
    script = 'd=$1; while [ ! -d "$d" ] && [ "$d" != / ]; do d=${d%/*}; d=${d:-/}; done; ' \
             'df -Pk -- "$d"'
    try:
        res = transport.run(["sh", "-c", script, "sh", folder], timeout=30)
    except InfraError:
        return None
    lines = res.stdout.strip().splitlines()
    if not res.ok or len(lines) < 2:
        return None
    fields = lines[-1].split()
    if len(fields) < 6 or not fields[3].isdigit():
        return None
    return fields[0], " ".join(fields[5:]), int(fields[3]), fields[4]


def full_disk_error(transport: Any, path: str, needed: int = 0, detail: str = "",
                    phase: str = "push") -> InfraError | None:
    """`InfraError(kind="disk_full")` when writing `path` (`needed` bytes) failed because the
    target's disk is full (or `detail` says so); None otherwise."""
    space = free_space(transport, path)
    says_full = NO_SPACE in detail
    if space is None:
        if not says_full:
            return None
        where, free = "its file system", "no"
    else:
        fs, mount, free_kib, used = space
        if not says_full and free_kib * 1024 >= max(needed, LOW_KIB * 1024):
            return None
        where, free = f"{mount} ({fs}, {used} used)", f"{free_kib} KiB"
    return InfraError(f"{describe_host(transport)}: the disk is full: {where} has {free} free; "
                      f"writing {path} failed", kind="disk_full", phase=phase,
                      hint=f"free space on that disk of {transport.name} (or point `workdir` "
                           "elsewhere), then `harness run --resume RUN_DIR`")
