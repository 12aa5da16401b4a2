"""Fault 2: Ctrl-C (SIGINT) to the controller mid-run.

One signal: no further job starts, the running one is stopped, results.csv, report.md and run.json
are written from what was measured, the resume command is printed, exit 130. Two signals: exit 130
at once, the rows already appended are kept, and nothing is left running on the device. Either way
`harness run --resume` completes the run without measuring again what was kept.
"""

from __future__ import annotations

import json
import re
import signal
import threading
import time

import pytest

from harness.errors import InfraError
from faultbench import (Bench, assert_complete, finish, latency, medians, processes_in, rows,
                        runners, sleepers, transport_for, wait_for, wait_gone)

MODELS = ("a", "b")  # two jobs: a.as_is.auto, then b.as_is.auto


@pytest.mark.parametrize("where", ["local", "ssh"])
def test_a_cancelled_command_is_stopped_at_once(where, tmp_path, request):
    """The transport's run loop polls the cancel event: the command's group is stopped."""
    transport, workdir = transport_for(where, tmp_path, request)
    transport.cancel = threading.Event()
    try:
        threading.Timer(0.5, transport.cancel.set).start()
        with pytest.raises(InfraError) as info:
            transport.run(["sh", "-c", "sleep 6021 & sleep 6022"])
        assert info.value.kind == "interrupted" and "was stopped" in info.value.message
        assert sleepers(workdir) == []
        with pytest.raises(InfraError) as info:  # nothing starts once cancelled
            transport.run(["true"])
        assert info.value.kind == "interrupted"
    finally:
        transport.close()
    wait_gone(workdir)


@pytest.mark.slow
@pytest.mark.parametrize("where", ["local", "ssh"])
def test_one_sigint_stops_the_run_writes_the_report_and_resume_completes_it(bench: Bench, where,
                                                                            request):
    if where == "ssh":
        target, workdir = "lo", bench.ssh_target(request.getfixturevalue("sshd_server"))
    else:
        target, workdir = "host", bench.local_target()
    bench.suite(min_seconds=60, models=MODELS)
    run = bench.start(target)
    wait_for(lambda: runners(workdir, "a.as_is.auto"), "the first job's runner")
    signalled = time.monotonic()
    run.proc.send_signal(signal.SIGINT)
    code, out, err = finish(run)
    print(f"one SIGINT ({where}): exit {code} {time.monotonic() - signalled:.1f} s after it")
    assert code == 130, err[-3000:]
    run_dir = bench.only_run()
    assert f"harness run --resume {run_dir}" in " ".join(err.split())
    for name in ("results.csv", "report.md", "run.json"):
        assert (run_dir / name).is_file(), name
    assert json.loads((run_dir / "run.json").read_text())["interrupted"] is True
    stopped = latency(run_dir, "a")
    assert [r["error_kind"] for r in stopped] == ["interrupted"], stopped
    assert re.search(r"its process group (on the device )?was stopped", stopped[0]["message"])
    assert not latency(run_dir, "b")  # never started
    assert not (run_dir / "targets" / target / "jobs" / "b.as_is.auto.json").exists()
    assert not processes_in(workdir)  # the runner was stopped before the controller exited

    bench.suite(min_seconds=0.1, models=MODELS)
    resumed = bench.resume(run_dir)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_complete(run_dir, MODELS)
    assert "interrupted" not in json.loads((run_dir / "run.json").read_text())


@pytest.mark.slow
def test_two_sigints_abort_at_once_and_the_run_stays_resumable(bench: Bench):
    workdir = bench.local_target()
    bench.suite(min_seconds=1, models=MODELS)
    run = bench.start("host")
    wait_for(lambda: runners(workdir, "b.as_is.auto"), "the second job's runner")
    run_dir = bench.only_run()
    kept = medians(run_dir, "a")
    assert kept  # the first job's rows were appended when it finished
    signalled = time.monotonic()
    run.proc.send_signal(signal.SIGINT)
    wait_for(lambda: "interrupted:" in run.err.read_text(), "the first signal to be handled")
    run.proc.send_signal(signal.SIGINT)  # (two at once would be one: signals do not queue)
    code, _out, err = finish(run)
    print(f"two SIGINTs: exit {code} {time.monotonic() - signalled:.1f} s after the signals")
    assert code == 130, err[-3000:]
    assert "aborted" in err and f"harness run --resume {run_dir}" in err
    assert medians(run_dir, "a") == kept
    assert not any(r["model"] == "b" and r["status"] == "ok" for r in rows(run_dir))
    wait_gone(workdir)  # the watchdog stopped the runner when the controller went away

    resumed = bench.resume(run_dir)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_complete(run_dir, MODELS)
    assert medians(run_dir, "a") == kept  # kept, not measured again
