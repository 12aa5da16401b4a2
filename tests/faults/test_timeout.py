"""Fault 3: the runner command times out. The job is a `timeout` row (exit 3) and nothing of it is
left running on the device afterwards (a runner left behind would load the CPU while the next job
is measured); with a longer timeout, `--resume` completes the run."""

from __future__ import annotations

import pytest

from faultbench import Bench, assert_complete, latency, pgrep_runner, processes_in

pytestmark = pytest.mark.slow


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
