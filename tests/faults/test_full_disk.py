"""Fault 4: the device's work dir is on a full disk (a tiny tmpfs, mounted as root). The run fails
that target with a clear `disk_full` error naming the host and the disk (exit 3), leaves no
partial file behind, and `--resume` completes the run once space is freed."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest

from faultbench import Bench, assert_complete, latency

pytestmark = [pytest.mark.root, pytest.mark.slow]


@pytest.fixture
def full_tmpfs(tmp_path: Path, need_root):
    """A 1 MiB tmpfs with a work dir, filled to the last byte by `filler`."""
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "harness-full", str(mount)],
                   check=True)
    try:
        (mount / "work").mkdir()
        fd = os.open(mount / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        finally:
            os.close(fd)
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.parametrize("where", ["ssh", "local"])
def test_full_device_disk_is_a_clear_error_and_resume_completes(bench: Bench, full_tmpfs, where,
                                                                request):
    workdir = full_tmpfs / "work"
    if where == "ssh":
        target, host = "lo", "127.0.0.1"
        bench.ssh_target(request.getfixturevalue("sshd_server"), workdir=str(workdir))
    else:
        import socket

        target, host = "host", socket.gethostname()
        bench.local_target(workdir=str(workdir))
    bench.suite(min_seconds=0.1)
    proc = bench.run(target)
    assert proc.returncode == 3, proc.stdout[-2000:] + proc.stderr[-3000:]
    run_dir = bench.only_run()
    rows = latency(run_dir)
    assert [r["error_kind"] for r in rows] == ["disk_full"], rows
    message = rows[0]["message"]
    assert f"{target} ({host}" in message and str(full_tmpfs) in message, message
    assert "the disk is full" in message and "0 KiB free" in message, message
    assert not list(workdir.rglob("*.part*"))  # no half-written file left behind

    (full_tmpfs / "filler").unlink()
    resumed = bench.resume(run_dir)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_complete(run_dir)
