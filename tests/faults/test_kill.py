"""Fault 1: the runner is SIGKILLed mid-job (what the out-of-memory killer does), locally and on a
device over SSH. The job's id is the same in every run and the device keeps its work dir, so the
first run's result file is still there: the killed run must report `runner_crash` with the signal,
never the first run's result, and `--resume` must measure the job again."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from harness.config import Target
from harness.config.suite import load_suite
from harness.devices.base import TargetContext
from harness.devices.runner_exec import new_attempt, run_fresh
from harness.errors import InfraError
from harness.transport import CommandResult, LocalTransport
from harness.transport.groups import describe_exit
from testutil import ROOT
from faultbench import (Bench, assert_complete, finish, job_document, latency, medians,
                        result_document, runners, wait_for, wait_gone)

JOB = "tiny.as_is.auto"


def _stale_result_is_never_read(bench: Bench, target: str, workdir) -> None:
    bench.suite(min_seconds=0.1)
    first = bench.run(target)
    assert first.returncode == 0, first.stderr[-3000:]
    first_dir = bench.only_run()
    first_result = result_document(first_dir, target, JOB)
    first_medians = medians(first_dir)
    assert first_result["attempt"] and first_medians
    assert (workdir / "results" / f"{JOB}.json").is_file()  # what a dead runner leaves behind

    bench.suite(min_seconds=60)  # the same job, long enough to be killed
    proc = bench.start(target)
    pid = wait_for(lambda: runners(workdir, JOB), "the runner of the second run")[0]
    os.kill(pid, signal.SIGKILL)
    code, _out, err = finish(proc)
    assert code == 3, err[-3000:]
    second_dir = next(d for d in bench.runs() if d != first_dir)
    rows = latency(second_dir)
    assert rows and all(r["status"] == "failed" for r in rows), rows
    assert {r["error_kind"] for r in rows} == {"runner_crash"}
    assert all("killed by SIGKILL (exit 137)" in r["message"] for r in rows), rows
    assert not medians(second_dir)
    assert result_document(second_dir, target, JOB) is None  # the old result was not fetched
    assert not any(r.get("value") in first_medians for r in rows)
    wait_gone(workdir)

    bench.suite(min_seconds=0.1)
    resumed = bench.resume(second_dir)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_complete(second_dir)
    fresh = result_document(second_dir, target, JOB)
    assert fresh["attempt"] == job_document(second_dir, target, JOB)["attempt"]
    assert fresh["attempt"] != first_result["attempt"]
    assert medians(first_dir) == first_medians  # the first run is untouched


@pytest.mark.parametrize("code, said", [
    (137, "killed by SIGKILL (exit 137)"), (139, "killed by SIGSEGV (exit 139)"),
    (-9, "killed by SIGKILL (exit -9)"), (130, "killed by SIGINT (exit 130)"),
    (-1, "killed by a signal (no exit status)"), (1, "exit 1"), (2, "exit 2")])
def test_exit_statuses_name_their_signal(code, said):
    assert describe_exit(code) == said


class _EchoingAnother(LocalTransport):
    """A device whose runner exits 0 but leaves a result of another attempt (a fake at the
    Transport seam: a real runner always echoes its own attempt)."""

    def run(self, argv, timeout=None):
        if any(str(a).endswith("runner.py") for a in argv):
            job = json.loads((Path(self.workdir) / argv[-1]).read_text())
            result = Path(self.workdir) / job["result"]
            result.parent.mkdir(parents=True, exist_ok=True)
            result.write_text(json.dumps({"job_id": job["job_id"], "attempt": "an-old-one",
                                          "status": "ok"}))
            return CommandResult(0, "", "")
        return super().run(argv, timeout)


def test_a_result_of_another_attempt_is_refused(tmp_path):
    transport = _EchoingAnother("dev", tmp_path / "work")
    suite = load_suite(ROOT / "suites" / "smoke.yaml")
    ctx = TargetContext("dev", Target(kind="cpu"), transport, suite, tmp_path / "local",
                        tmp_path / "cache", runner_dir="runner")
    document = {"job_id": JOB, "attempt": new_attempt(), "result": f"results/{JOB}.json"}
    (tmp_path / "work" / "jobs").mkdir(parents=True)
    (tmp_path / "work" / "jobs" / f"{JOB}.json").write_text(json.dumps(document))
    with pytest.raises(InfraError) as info:
        run_fresh(ctx, document)
    assert info.value.kind == "runner_crash"
    assert f"stale result for {JOB}" in str(info.value) and "an-old-one" in str(info.value)


@pytest.mark.slow
def test_sigkill_of_the_local_runner_is_a_crash_row_not_the_last_result(bench: Bench):
    workdir = bench.local_target()
    _stale_result_is_never_read(bench, "host", workdir)


@pytest.mark.slow
def test_sigkill_of_the_runner_on_an_ssh_device_is_a_crash_row(bench: Bench, sshd_server):
    workdir = bench.ssh_target(sshd_server)
    _stale_result_is_never_read(bench, "lo", workdir)
