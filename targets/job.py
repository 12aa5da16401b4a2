"""Device-side job skeleton: read one job JSON, measure one model, write one result JSON.

    python3 runner.py JOB.json           (backend chosen by the job's fields)
    python3 delegate_runner.py JOB.json  (external delegate; the job has a `delegate` entry)
    python3 ort_runner.py JOB.json       (ONNX Runtime; an .onnx model)

Paths in the job are relative to its work dir (`base`, default: the job file's grandparent).
Steps, whatever the backend: environment, runtime import, first model + one invoke, memory, the
other thread counts, outputs (one per input window, or a window slid over a series), latency,
loop rate, op-split profile; any failure becomes an error
document {kind, message}, never a traceback on stdout. The result is written atomically (a temp
file in the same directory, then os.replace): a killed runner leaves the previous result (or none),
never half a document. SIGTERM/SIGINT stop the job without writing a result; the exit code is then
128 + the signal number. Otherwise: 0 (status ok), 1 (error document), 2 (unusable job file).
Standard library + numpy + the runtime in use only.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import traceback
from pathlib import Path
from typing import IO, Any, Callable, Dict, List, Optional

from backends import Backend, open_backend
from environment import environment
from measure import (loop_rate, measure_latency, peak_rss_kb, run_outputs,
                     run_series_outputs, series_workers)
from runner_error import RunnerError

SCHEMA_VERSION = 1
INTERRUPT_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Interrupted(BaseException):
    """SIGTERM or SIGINT arrived: the job stops and writes no result (not an Exception, so no
    `except Exception` on the way turns it into an error document)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum


# --------------------------------------------------------------------------- job fields

def job_stretch(job: dict) -> float:
    """The test-only `stretch` factor (float >= 1.0, default 1.0), or a `bad_job` RunnerError."""
    stretch = job.get("stretch", 1.0)
    if isinstance(stretch, bool) or not isinstance(stretch, (int, float)) or not stretch >= 1.0:
        raise RunnerError("bad_job", f"job field `stretch` must be a number >= 1.0 (test-only "
                          f"slowdown factor), got {stretch!r}")
    return float(stretch)


def result_header(job: dict) -> Dict[str, Any]:
    """The fields every result document starts with: who it answers (job_id, attempt)."""
    return {"schema_version": SCHEMA_VERSION, "job_id": job.get("job_id"),
            "attempt": job.get("attempt")}


def error_result(job: dict, kind: str, message: str,
                 trace: Optional[str] = None) -> Dict[str, Any]:
    """An error document for `job`."""
    error: Dict[str, Any] = {"kind": kind, "message": message}
    if trace is not None:
        error["traceback"] = trace
    result = result_header(job)
    result.update(status="error", error=error, environment=environment())
    return result


def _say(job: dict, what: str) -> None:
    """One progress line on stderr (the controller shows the last one when no result came)."""
    print(f"runner {job.get('job_id')}: {what}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- the job

def run_job(job: dict, base: Path, backend_kind: Optional[str] = None) -> Dict[str, Any]:
    """Execute one job and return its ok result; failures raise RunnerError."""
    import numpy as np

    if not job.get("job_id") or not job.get("model"):
        raise RunnerError("bad_job", "the job needs `job_id` and `model`")
    stretch = job_stretch(job)
    result = result_header(job)
    result.update(status="ok", error=None, latency=[], outputs=None, memory=None, profile=None)
    if stretch != 1.0:
        result["stretch"] = stretch
    rss_before_runtime = peak_rss_kb()
    result["environment"] = environment()
    backend: Backend = open_backend(job, backend_kind)
    result["runtime"] = {"name": backend.name, "version": backend.version}
    rss_baseline = peak_rss_kb()
    backend.check_model(job["model"])
    model_path = str(base / job["model"])
    measure = job.get("measure") or {}
    latency = measure.get("latency") or {}
    threads = backend.thread_counts(list(latency.get("threads") or [1]))

    def load(count: int) -> Any:
        model = backend.load(model_path, count)
        model.set_input(np.random.RandomState(0).standard_normal(model.input["shape"]))
        return model

    _say(job, f"{backend.name} {backend.version}: loading {job['model']}")
    first = load(threads[0])
    first.invoke()
    if measure.get("memory"):
        result["memory"] = {"rss_baseline_kb": rss_baseline,
                            "rss_before_runtime_kb": rss_before_runtime,
                            "peak_rss_kb": peak_rss_kb(), "init_ms": round(first.init_ms, 3),
                            "model_bytes": os.path.getsize(model_path)}
    models: List[Any] = [first] + [load(count) for count in threads[1:]]
    if measure.get("outputs"):
        _say(job, "outputs")
        out_rel = f"results/{job['job_id']}.outputs.npy"
        spec = measure["outputs"]
        if spec.get("series"):
            # interpreters side by side, when the model runs on one CPU thread
            parallel = backend.parallel_outputs and first.threads == 1
            workers = series_workers(spec.get("workers")) if parallel else 1
            copies = [load(threads[0]) for _ in range(workers - 1)]
            outputs, result["series_outputs"] = run_series_outputs(
                [first] + copies, base / spec["series"], int(spec["window"]),
                spec.get("max_seconds"))
            del copies
        else:
            outputs = run_outputs(first, base / spec["inputs"])
        if outputs is not None:
            write_atomically(base / out_rel, lambda f: np.save(f, outputs), binary=True)
            result["outputs"] = out_rel
    if latency:
        _say(job, f"latency, threads {[m.threads for m in models]}")
        result["latency"] = measure_latency(models, latency, stretch)
    if job.get("loop_rate"):
        _say(job, "loop rate")
        result["loop_rate"] = loop_rate(first, latency)
    if measure.get("profile") and backend.profiles:
        _say(job, "op-split profile")
        from opsplit import profile_model  # shipped beside this file; only profiling jobs pay

        result["profile"] = profile_model(backend.module, model_path, measure["profile"])
    return result


def execute(job: dict, base: Path, backend_kind: Optional[str] = None) -> Dict[str, Any]:
    """run_job with every failure (but an interrupt) turned into an error document."""
    try:
        return run_job(job, base, backend_kind)
    except RunnerError as exc:
        return error_result(job, exc.kind, str(exc))
    except Exception as exc:  # noqa: BLE001 - any crash must become a result document
        return error_result(job, "runner_crash", f"{type(exc).__name__}: {exc}",
                            traceback.format_exc())


# --------------------------------------------------------------------------- files and signals

def write_atomically(path: Path, write: Callable[[IO], None], binary: bool = False) -> None:
    """Write `path` through a temp file in the same directory and os.replace: whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=str(path.parent), prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a result is an ordinary file
        os.replace(tmp, str(path))
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_result(path: Path, result: Dict[str, Any]) -> None:
    """The result document, atomically."""
    write_atomically(path, lambda f: f.write(json.dumps(result)))


def _interrupt(signum: int, frame: Any) -> None:
    for each in INTERRUPT_SIGNALS:  # a second signal takes the default action (terminate)
        signal.signal(each, signal.SIG_DFL)
    raise Interrupted(signum)


def _trap_signals() -> Dict[int, Any]:
    """Turn SIGTERM/SIGINT into Interrupted; the previous handlers, to restore."""
    previous = {}
    for each in INTERRUPT_SIGNALS:
        try:
            previous[each] = signal.signal(each, _interrupt)
        except ValueError:  # not the main thread: leave signals alone
            pass
    return previous


def _restore_signals(previous: Dict[int, Any]) -> None:
    for each, handler in previous.items():
        signal.signal(each, handler)


def main(argv: List[str], backend_kind: Optional[str] = None) -> int:
    """Entry point: `<entry>.py JOB.json`; `backend_kind` forces a backend (default: the job's)."""
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    job_path = Path(argv[1]).resolve()
    try:
        job = json.loads(job_path.read_text())
        base = Path(job.get("base", job_path.parent.parent)).resolve()
        out = base / job["result"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        print(f"runner: unusable job file {argv[1]}: {type(exc).__name__}: {exc}",
              file=sys.stderr)
        return 2
    previous = _trap_signals()
    try:
        result = execute(job, base, backend_kind)
        write_result(out, result)
    except Interrupted as exc:
        _say(job, f"stopped by signal {exc.signum}, no result written")
        return 128 + exc.signum
    finally:
        _restore_signals(previous)
    return 0 if result["status"] == "ok" else 1
