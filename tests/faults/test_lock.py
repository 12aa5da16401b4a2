"""Fault 6: two `harness run` on one target at once. The device lock serialises them: a second
controller with a short `lock_timeout` fails the target with "busy: held by <host> pid <n> since
<time>" (exit 3), one with a long one waits and then measures; the lock is let go when its
controller stops, and even when it is SIGKILLed (its runner then stopped by the watchdog)."""

from __future__ import annotations

import os
import signal
import socket
import threading

import subprocess

import pytest

from harness.errors import InfraError
from harness.transport import LocalTransport, connect, groups, lock
from faultbench import (Bench, assert_complete, finish, latency, runners, transport_for, wait_for,
                        wait_gone)

class RunnerCount:
    """Samples how many runners work in a work dir at once, until stopped."""

    def __init__(self, workdir) -> None:
        self.workdir, self.most = workdir, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.most = max(self.most, len(runners(self.workdir)))

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.most


def _target(bench: Bench, where: str, request, **entry):
    if where == "ssh":
        return "lo", bench.ssh_target(request.getfixturevalue("sshd_server"), **entry)
    return "host", bench.local_target(**entry)


def _second_transport(where: str, tmp_path, request):
    if where == "ssh":
        return connect("lo", request.getfixturevalue("sshd_server").target())
    return LocalTransport("host", tmp_path / "work")


@pytest.mark.parametrize("where", ["local", "ssh"])
def test_a_held_device_lock_is_busy_for_another_holder_until_released(where, tmp_path, request):
    """Two holders of one device's lock (what two controllers do): the second waits its
    timeout, fails naming the first, and gets the lock once the first lets go."""
    first, _workdir = transport_for(where, tmp_path, request)
    second = _second_transport(where, tmp_path, request)
    try:
        held = first.hold_lock(lock.LOCK_FILE, lock.holder_info("t1"), 5, None)
        with pytest.raises(InfraError) as info:
            second.hold_lock(lock.LOCK_FILE, lock.holder_info("t2"), 0.5, None)
        assert info.value.kind == "busy" and info.value.phase == "lock"
        assert f"busy: held by {socket.gethostname()} pid {os.getpid()} since " in str(info.value)
        held.release()
        second.hold_lock(lock.LOCK_FILE, lock.holder_info("t2"), 5, None).release()
    finally:
        first.close()
        second.close()


def test_the_device_side_holder_lets_go_when_its_connection_dies(tmp_path, sshd_server):
    """A controller that dies closes its connections: the lock is free at once (flock is
    released with the holder's process), no stale lock file content blocks anybody."""
    first = connect("lo", sshd_server.target())
    second = connect("lo", sshd_server.target())
    try:
        held = first.hold_lock(lock.LOCK_FILE, lock.holder_info("t1"), 5, None)
        held.chan.get_transport().close()  # the connection drops, as when its process dies
        second.hold_lock(lock.LOCK_FILE, lock.holder_info("t2"), 10, None).release()
    finally:
        first.close()
        second.close()


def test_taking_the_lock_kills_what_a_dead_controller_left_running(tmp_path):
    """A process group with a pid file in the work dir and nobody holding the lock is an orphan
    of a dead controller: it is killed before any job runs."""
    transport = LocalTransport("host", tmp_path / "work")
    (tmp_path / "work" / groups.RUN_DIR).mkdir(parents=True)
    pidfile = tmp_path / "work" / groups.RUN_DIR / "orphan.pid"
    orphan = subprocess.Popen(["sh", "-c", 'echo $$ > "$1"; exec sleep 6031', "sh", str(pidfile)],
                              cwd=transport.workdir, start_new_session=True)
    wait_for(lambda: pidfile.is_file() and pidfile.read_text().strip(), "the pid file")
    held = lock.acquire(transport, "host", 5)
    try:
        assert orphan.wait(timeout=30) == -9
    finally:
        held.release()
        if orphan.poll() is None:
            orphan.kill()
    assert not pidfile.exists()


@pytest.mark.slow
@pytest.mark.parametrize("where", ["local", "ssh"])
def test_second_controller_waits_or_fails_busy_naming_the_holder(bench: Bench, where, request):
    target, workdir = _target(bench, where, request, lock_timeout=600)
    bench.suite(min_seconds=60)
    count = RunnerCount(workdir)
    first = bench.start(target)
    wait_for(lambda: runners(workdir), "the first run's runner")

    bench.suite(min_seconds=0.1)  # what the next two runs measure
    impatient = bench.inventory_variant("impatient.yaml", target, lock_timeout=1)
    busy = bench.start(target, inventory=impatient)
    code, _out, err = finish(busy)
    assert code == 3, err[-3000:]
    busy_dir = next(d for d in bench.runs() if (d / "results.csv").is_file())
    rows = latency(busy_dir)
    assert [r["error_kind"] for r in rows] == ["busy"], rows
    assert f"busy: held by {socket.gethostname()} pid {first.pid} since " in rows[0]["message"]

    waiting = bench.start(target)
    wait_for(lambda: "waiting up to 600 s" in waiting.err.read_text(), "the third run to wait")
    first.proc.send_signal(signal.SIGINT)  # the first run stops and lets go of the device
    assert finish(first)[0] == 130
    code, _out, err = finish(waiting)
    assert code == 0, err[-3000:]
    assert count.stop() == 1  # never two runners on the device at once

    resumed = bench.resume(busy_dir)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_complete(busy_dir)


@pytest.mark.slow
def test_lock_and_runner_of_a_sigkilled_controller_are_released(bench: Bench, sshd_server):
    """kill -9 of the controller: its SSH connections close, the device-side lock holder and the
    runner's watchdog see end of file; the next run gets the device without waiting it out."""
    workdir = bench.ssh_target(sshd_server, lock_timeout=60)
    bench.suite(min_seconds=60)
    doomed = bench.start("lo")
    wait_for(lambda: runners(workdir), "the first run's runner")
    os.kill(doomed.pid, signal.SIGKILL)
    finish(doomed)
    wait_gone(workdir)

    bench.suite(min_seconds=0.1)
    proc = bench.run("lo")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "waiting up to" not in proc.stderr
    killed_dir = next(d for d in bench.runs() if not (d / "results.csv").is_file())
    resumed = bench.resume(killed_dir)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_complete(killed_dir)
