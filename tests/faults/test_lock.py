"""Fault 6: two `harness run` on one target at once. The device lock serialises them: a second
controller with a short `lock_timeout` fails the target with "busy: held by <host> pid <n> since
<time>" (exit 3), one with a long one waits and then measures; the lock is let go when its
controller stops, and even when it is SIGKILLed (its runner then stopped by the watchdog)."""

from __future__ import annotations

import os
import signal
import socket
import threading

import pytest

from faultbench import (Bench, assert_complete, finish, latency, runners, wait_for, wait_gone)

pytestmark = pytest.mark.slow


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
