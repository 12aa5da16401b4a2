"""Fault 3: the runner command times out. The job is a `timeout` row (exit 3) and nothing of it is
left running on the device afterwards (a runner left behind would load the CPU while the next job
is measured); with a longer timeout, `--resume` completes the run."""

from __future__ import annotations

import time

import pytest

from harness.errors import InfraError
from faultbench import (Bench, assert_complete, latency, pgrep_runner, processes_in, sleepers,
                        transport_for, wait_gone)


@pytest.mark.parametrize("where", ["local", "ssh"])
@pytest.mark.parametrize("command", [
    "sleep 6011 & sleep 6012",                 # children of the command too
    "trap '' TERM; sleep 6013 & sleep 6014"])  # deaf to SIGTERM: SIGKILL 2 s later
def test_a_timed_out_command_is_stopped_with_its_whole_group(where, command, tmp_path, request):
    transport, workdir = transport_for(where, tmp_path, request)
    try:
        started = time.monotonic()
        with pytest.raises(InfraError) as info:
            transport.run(["sh", "-c", command], timeout=1)
        print(f"{where}: timeout error {time.monotonic() - started:.2f} s after the start "
              f"({info.value})")
        assert info.value.kind == "timeout" and info.value.phase == "run"
        assert "was stopped" in info.value.message
        assert sleepers(workdir) == []  # checked before the error was raised
        assert transport.run(["true"]).ok
    finally:
        transport.close()
    wait_gone(workdir)  # and the wrapper and its watchdog end too


@pytest.mark.slow
@pytest.mark.parametrize("where", ["ssh", "local"])
def test_timed_out_runner_leaves_no_process_on_the_device(bench: Bench, where, request):
    if where == "ssh":
        server = request.getfixturevalue("sshd_server")
        target, make = "lo", lambda **kw: bench.ssh_target(server, **kw)
    else:
        target, make = "host", lambda **kw: bench.local_target(**kw)
    workdir = make(command_timeout=4)
    bench.suite(min_seconds=60)
    proc = bench.run(target)
    assert proc.returncode == 3, proc.stderr[-3000:]
    run_dir = bench.only_run()
    rows = latency(run_dir)
    assert [r["error_kind"] for r in rows] == ["timeout"], rows
    assert rows[0]["phase"] == "run"
    assert "timed out after 4 s" in rows[0]["message"]
    assert "was stopped" in rows[0]["message"], rows[0]["message"]
    # the device side, as ps sees it: no runner, no wrapper, no lock holder in the work dir
    assert pgrep_runner(workdir) == ""
    assert processes_in(workdir) == {}

    make(command_timeout=300)
    bench.suite(min_seconds=0.1)
    resumed = bench.resume(run_dir)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_complete(run_dir)
