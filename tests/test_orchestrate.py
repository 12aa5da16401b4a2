"""Orchestration without devices: a fake Transport and a fake DeviceKind (the two seams) drive
`harness.api.run` and the `harness` command, fast (no TensorFlow, no sshd).

Covered: which failures stop a target's later jobs (fatal kinds, with the same cause), which only
mark the target failed (infrastructure), which are results (model kinds); an unexpected exception
in a job or in a device artifact step is that job's row and the run goes on; the exit code of a run
through the CLI (0, 2, 3, 4); `--resume` per job and a cut-short rows.jsonl.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness import api, cli
from harness.artifacts import Artifact
from harness.devices import KINDS
from harness.devices.base import DeviceKind, TargetContext
from harness.errors import ExitCode, InfraError, InternalError, UserError, run_exit_code
from harness.results.rundir import JOBS_FILE, ROWS_FILE, RunDir
from harness.results.schema import failure_row, make_row
from harness.transport.base import CommandResult

MEASURE = "measure"  # the fake kind's one command on the device


class FakeTransport:
    """A target connection whose `measure <model>` command does what the test scripted: return,
    or raise the InfraError given for that model. Everything else succeeds."""

    is_local = False

    def __init__(self, name: str, script: dict[str, Exception] | None = None,
                 close_error: Exception | None = None) -> None:
        self.name = name
        self.workdir = "/fake/work"
        self.script = script or {}
        self.close_error = close_error
        self.measured: list[str] = []

    def run(self, argv: list[str], timeout: float | None = None) -> CommandResult:
        if argv[0] == MEASURE:
            self.measured.append(argv[1])
            if argv[1] in self.script:
                raise self.script[argv[1]]
        return CommandResult(0, "", "")

    def put(self, local: Path, remote: str) -> None:
        pass

    def get(self, remote: str, local: Path) -> None:
        raise InfraError(f"{self.name}: nothing to fetch", kind="runner_crash")

    def close(self) -> None:
        if self.close_error is not None:
            raise self.close_error


class FakeKind(DeviceKind):
    """A device kind whose models say what happens: `ok*` measures (through the transport),
    `load*` is a model the device cannot load (a result), `crash*` is a bug in the kind,
    `broken*` a device artifact step that crashes."""

    name = "cpu"

    def prepare(self, target: Any, artifact: Artifact, cache: Path) -> Artifact:
        if artifact.model.startswith("broken"):
            raise RuntimeError("the compiler segfaulted")
        return artifact

    def execute(self, ctx: TargetContext, job: Any, artifact: Artifact) -> tuple[list, list]:
        fields = dict(ctx.fields, model=job.model, variant=job.variant, runtime="fake",
                      artifact_sha256=artifact.sha256)
        ctx.transport.run([MEASURE, job.model])
        if job.model.startswith("crash"):
            raise ZeroDivisionError("division by zero")
        if job.model.startswith("load"):
            return [failure_row(measurement="latency", error_kind="model_load", phase="run",
                                message="cannot load", **fields)], []
        rows = [make_row(**fields, measurement="latency", metric="median_ms", value=1.0,
                         unit="ms", threads=1, n=3),
                make_row(**fields, measurement="size", metric="size_bytes", value=4, unit="B")]
        series = [{**{k: fields[k] for k in ("target", "model", "variant", "runtime")},
                   "threads": 1, "measurement": "latency", "metric": "median_ms", "unit": "ms",
                   "samples": [1.0, 1.0, 1.0]}]
        return rows, series


@pytest.fixture
def fake_kind(monkeypatch: pytest.MonkeyPatch) -> FakeKind:
    kind = FakeKind()
    monkeypatch.setitem(KINDS, "cpu", kind)
    return kind


@pytest.fixture(autouse=True)
def _restore_logging() -> Any:
    """The CLI adds a console log handler per invocation; take them away again."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), logging.getLogger("harness").level
    yield
    root.handlers[:] = handlers
    logging.getLogger("harness").setLevel(level)


def write_suite(tmp: Path, models: list[str], targets: list[str]) -> tuple[Path, Path]:
    """A suite of .tflite files measured as is (nothing to convert) and an inventory."""
    entries = []
    for name in models:
        (tmp / f"{name}.tflite").write_bytes(name.encode())
        entries.append({"name": name, "path": f"{name}.tflite"})
    suite = tmp / "suite.yaml"
    suite.write_text(yaml.safe_dump({"name": "fake", "models": entries,
                                     "measurements": {"latency": {"runs": 3}}}))
    inventory = tmp / "inventory.yaml"
    inventory.write_text(yaml.safe_dump({"targets": {
        name: {"kind": "cpu", "workdir": str(tmp / "work" / name)} for name in targets}}))
    return suite, inventory


class Fleet:
    """FakeTransports by target name, made on connect; a target in `unreachable` fails there."""

    def __init__(self, scripts: dict[str, dict[str, Exception]] | None = None,
                 connect_errors: dict[str, Exception] | None = None,
                 close_errors: dict[str, Exception] | None = None) -> None:
        self.scripts = scripts or {}
        self.connect_errors = connect_errors or {}
        self.close_errors = close_errors or {}
        self.transports: dict[str, FakeTransport] = {}
        self.lock = threading.Lock()

    def connect(self, name: str, target: Any, *_: Any) -> FakeTransport:
        if name in self.connect_errors:
            raise self.connect_errors[name]
        with self.lock:
            self.transports[name] = FakeTransport(name, self.scripts.get(name),
                                                  self.close_errors.get(name))
        return self.transports[name]


def run(tmp: Path, models: list[str], targets: list[str], fleet: Fleet,
        resume: Path | None = None) -> api.RunResult:
    suite, inventory = write_suite(tmp, models, targets)
    return api.run(suite, ",".join(targets), inventory, tmp / "out", resume=resume,
                   cache=tmp / "cache", connect=fleet.connect)


def rows_of(result: api.RunResult, target: str) -> list[dict]:
    frame = result.frame[result.frame.target == target]
    return frame[["model", "status", "error_kind", "message"]].to_dict("records")


def test_a_fatal_failure_stops_the_later_jobs_of_its_target_only(tmp_path: Path,
                                                                  fake_kind: FakeKind) -> None:
    lost = InfraError("a: connection lost", kind="unreachable", phase="run")
    fleet = Fleet(scripts={"a": {"ok2": lost}})
    result = run(tmp_path, ["ok1", "ok2", "ok3", "ok4"], ["a", "b"], fleet)
    assert fleet.transports["a"].measured == ["ok1", "ok2"]       # ok3, ok4 never tried
    assert fleet.transports["b"].measured == ["ok1", "ok2", "ok3", "ok4"]
    failed = [r for r in rows_of(result, "a") if r["status"] == "failed"]
    assert [r["model"] for r in failed] == ["ok2", "ok3", "ok4"]
    assert {r["error_kind"] for r in failed} == {"unreachable"}
    assert {r["message"] for r in failed} == {"a: connection lost"}  # the same cause
    assert result.failed_targets == ["a"]
    assert all(r["status"] == "ok" for r in rows_of(result, "b"))
    assert run_exit_code(result.frame.error_kind[result.frame.status == "failed"]) == 3


def test_a_target_unreachable_at_connect_records_every_job(tmp_path: Path,
                                                            fake_kind: FakeKind) -> None:
    fleet = Fleet(connect_errors={"a": InfraError("a: no route", kind="unreachable")})
    result = run(tmp_path, ["ok1", "ok2"], ["a", "b"], fleet)
    assert "a" not in fleet.transports
    failed = rows_of(result, "a")
    assert [(r["model"], r["error_kind"]) for r in failed] == [("ok1", "unreachable"),
                                                               ("ok2", "unreachable")]
    assert set(result.frame[result.frame.target == "a"].phase) == {"connect"}
    assert result.failed_targets == ["a"]


def test_an_infrastructure_failure_marks_the_target_failed_and_the_run_goes_on(
        tmp_path: Path, fake_kind: FakeKind) -> None:
    fleet = Fleet(scripts={"a": {"ok1": InfraError("a: took too long", kind="timeout")}})
    result = run(tmp_path, ["ok1", "ok2"], ["a"], fleet)
    assert fleet.transports["a"].measured == ["ok1", "ok2"]   # timeout is not fatal
    assert [(r["model"], r["status"]) for r in rows_of(result, "a")] == [
        ("ok1", "failed"), ("ok2", "ok"), ("ok2", "ok")]
    assert result.failed_targets == ["a"]


def test_model_results_do_not_stop_anything_and_do_not_fail_the_target(
        tmp_path: Path, fake_kind: FakeKind) -> None:
    fleet = Fleet()
    result = run(tmp_path, ["load1", "ok2"], ["a"], fleet)
    assert fleet.transports["a"].measured == ["load1", "ok2"]
    assert rows_of(result, "a")[0]["error_kind"] == "model_load"
    assert result.failed_targets == []
    assert run_exit_code(result.frame.error_kind[result.frame.status == "failed"]) == 0


def test_a_crash_in_a_job_or_in_a_device_artifact_step_is_a_row_and_the_run_goes_on(
        tmp_path: Path, fake_kind: FakeKind) -> None:
    fleet = Fleet()
    result = run(tmp_path, ["crash1", "broken2", "ok3"], ["a"], fleet)
    rows = rows_of(result, "a")
    assert [(r["model"], r["error_kind"]) for r in rows if r["status"] == "failed"] == [
        ("crash1", "internal_error"), ("broken2", "build_failed")]
    assert "ZeroDivisionError: division by zero" in rows[0]["message"]
    assert fleet.transports["a"].measured == ["crash1", "ok3"]    # broken2 never got there
    log = (result.run_dir / "harness.log").read_text()
    assert "Traceback" in log and "ZeroDivisionError" in log and "the compiler segfaulted" in log
    assert run_exit_code(result.frame.error_kind[result.frame.status == "failed"]) == 4


def test_after_a_fatal_failure_a_crashing_device_artifact_step_is_still_a_row(
        tmp_path: Path, fake_kind: FakeKind) -> None:
    fleet = Fleet(scripts={"a": {"ok1": InfraError("a: gone", kind="unreachable")}})
    result = run(tmp_path, ["ok1", "broken2"], ["a"], fleet)
    broken = result.frame[result.frame.model == "broken2"]
    assert list(zip(broken.measurement, broken.error_kind)) == [("build", "build_failed"),
                                                                ("latency", "unreachable")]
    assert "the compiler segfaulted" in broken.message.iloc[0]


def test_an_unexpected_exception_outside_the_jobs_is_an_internal_error_naming_the_log(
        tmp_path: Path, fake_kind: FakeKind) -> None:
    fleet = Fleet(close_errors={"a": KeyError("transport state")})
    with pytest.raises(InternalError) as caught:
        run(tmp_path, ["ok1"], ["a"], fleet)
    assert caught.value.exit_code == ExitCode.INTERNAL
    log = Path(caught.value.log)
    assert log.name == "harness.log" and str(log) in str(caught.value)
    assert "KeyError: 'transport state'" in log.read_text()
    assert json.loads(log.with_name(ROWS_FILE).read_text().splitlines()[0])["model"] == "ok1"


# --------------------------------------------------------------------------- exit codes (CLI)

def cli_run(tmp: Path, models: list[str], monkeypatch: pytest.MonkeyPatch, fleet: Fleet,
            capsys: pytest.CaptureFixture, *extra: str) -> tuple[int, str]:
    """`harness run` in this process (its real entry point): (exit code, stderr)."""
    suite, inventory = write_suite(tmp, models, ["host"])
    monkeypatch.setattr("harness.transport.connect", fleet.connect)
    monkeypatch.setenv("HARNESS_CACHE", str(tmp / "cache"))
    monkeypatch.setattr(sys, "argv", ["harness", "run", str(suite), "--targets", "host",
                                      "--inventory", str(inventory), "--out", str(tmp / "out"),
                                      *extra])
    with pytest.raises(SystemExit) as caught:
        cli.entry()
    return caught.value.code, capsys.readouterr().err


@pytest.mark.parametrize("models, script, code", [
    (["ok1", "load2"], {}, ExitCode.OK),
    (["ok1"], {"ok1": UserError("host: fix your inventory")}, ExitCode.USER),
    (["ok1", "ok2"], {"ok1": InfraError("host: disk full", kind="push_corrupt")}, ExitCode.INFRA),
    (["ok1", "ok2"], {"ok1": InfraError("host: read-only", kind="workdir")}, ExitCode.INFRA),
    (["crash1", "ok2", "ok3"], {"ok2": InfraError("host: slow", kind="timeout")},
     ExitCode.INTERNAL),
], ids=["model-result", "user", "push-corrupt", "workdir", "internal-over-infra"])
def test_exit_code_of_a_run_follows_its_failed_rows(
        tmp_path: Path, fake_kind: FakeKind, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture, models: list[str], script: dict, code: int) -> None:
    got, err = cli_run(tmp_path, models, monkeypatch, Fleet(scripts={"host": script}), capsys)
    assert got == code, err
    if code == ExitCode.INTERNAL:
        assert "internal error" in err and "harness.log" in err


def test_exit_code_4_for_a_crash_outside_a_run_names_a_crash_log(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    class Exploding(FakeKind):
        def unsupported(self, target: Any, variant: str) -> str | None:
            raise AttributeError("no such thing")

    monkeypatch.setitem(KINDS, "cpu", Exploding())
    code, err = cli_run(tmp_path, ["ok1"], monkeypatch, Fleet(), capsys)
    assert code == ExitCode.INTERNAL
    log = Path(err.split("traceback in ")[1].split(")")[0].strip())
    assert "AttributeError: no such thing" in log.read_text()
    log.unlink()


def test_exit_code_4_for_a_crash_inside_a_run_names_its_log(
        tmp_path: Path, fake_kind: FakeKind, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture) -> None:
    fleet = Fleet(close_errors={"host": KeyError("transport state")})
    code, err = cli_run(tmp_path, ["ok1"], monkeypatch, fleet, capsys)
    assert code == ExitCode.INTERNAL
    assert "harness.log" in err and "KeyError" in err


def test_exit_code_2_for_a_user_error_before_the_run(
        tmp_path: Path, fake_kind: FakeKind, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture) -> None:
    code, err = cli_run(tmp_path, ["ok1"], monkeypatch, Fleet(), capsys, "--resume",
                        str(tmp_path / "nowhere"))
    assert code == ExitCode.USER and "is not a run directory" in err


# --------------------------------------------------------------------------- resume per job

def test_resume_runs_only_the_jobs_not_done_and_keeps_the_others(
        tmp_path: Path, fake_kind: FakeKind) -> None:
    first = run(tmp_path, ["ok1", "ok2", "ok3"], ["a"],
                Fleet(scripts={"a": {"ok2": InfraError("a: slow", kind="timeout")}}))
    before = RunDir(first.run_dir).rows()
    again = Fleet()
    second = run(tmp_path, ["ok1", "ok2", "ok3"], ["a"], again, resume=first.run_dir)
    assert second.run_dir == first.run_dir
    assert again.transports["a"].measured == ["ok2"]
    after = RunDir(first.run_dir).rows()
    kept = [r for r in before if r["model"] != "ok2"]
    assert [r for r in after if r["model"] != "ok2"] == kept            # untouched
    assert {(r["model"], r["status"]) for r in after if r["model"] == "ok2"} == {("ok2", "ok")}
    assert len(RunDir(first.run_dir).samples()) == 3                   # one series per job
    assert all(r["status"] == "ok" for r in after)
    assert len(second.frame) == len(after)


def test_a_cut_short_last_row_is_dropped_with_one_warning_and_resume_completes(
        tmp_path: Path, fake_kind: FakeKind, caplog: pytest.LogCaptureFixture) -> None:
    first = run(tmp_path, ["ok1", "ok2"], ["a"], Fleet())
    rows_file = first.run_dir / ROWS_FILE
    complete = rows_file.read_text()
    rows_file.write_text(complete[:-25])          # killed while writing ok2's last row
    (first.run_dir / "results.csv").unlink()
    run_dir = RunDir(first.run_dir)
    with caplog.at_level(logging.WARNING, logger="harness"):
        assert len(run_dir.rows()) == len(complete.splitlines()) - 1
        run_dir.rows()
    assert len([r for r in caplog.records if "cut short" in r.getMessage()]) == 1
    again = Fleet()
    second = run(tmp_path, ["ok1", "ok2"], ["a"], again, resume=first.run_dir)
    assert again.transports["a"].measured == ["ok2"]
    assert sorted((r["model"], r["metric"]) for r in run_dir.rows() if r.get("target")) == [
        ("ok1", "median_ms"), ("ok1", "size_bytes"), ("ok2", "median_ms"), ("ok2", "size_bytes")]
    assert rows_file.read_text().endswith("\n") and len(second.frame) == 4
    assert len((first.run_dir / JOBS_FILE).read_text().splitlines()) == 2
