"""The A/B latency re-measurement: the baseline's artifact (A) and tonight's (B) measured again on
the same target, in the same session, in rounds of fresh runner processes, until the sequential
decision (`harness.sequential_ab`) says REGRESSED / IMPROVED / SAME, or the budget is spent.

    results = remeasure([ABSeries("host", "cnn", "w8", "ai_edge_litert", 1, base, tonight)],
                        inventory_path=Path("inventory.yaml"))
    results[("host", "cnn", "w8", "ai_edge_litert", 1)].decision      # Decision.SAME

How (the technique of asv `continuous`, Chromium Pinpoint, and Laaber et al. 2019 on cloud VMs):

* One observation = one fresh runner process (`targets/runner.py`, through the target's normal
  transport): fresh processes of the same model differ by ~13 % on the development VM while the
  samples inside one process hardly differ, so a process, not a sample, is the unit of evidence.
  Its summary is the runner's `median_us` at the series' thread count.
* A round = one A process and one B process, in random order (drift cannot fall on one side);
  the pair (a, b) goes to `SequentialAB`, which looks at the planned pair counts and stops as soon
  as it decides. Targets run in parallel, the series of one target one after another.
* The per-process protocol (`PROTOCOL`): 10 warm-up invokes and at least 0.1 s of them, then at
  least 20 timed invokes and 0.2 s. Chosen because the per-process median of a small model is
  stable to well under the 13 % between processes after a few hundred samples, so longer runs buy
  almost nothing, while the fixed cost of a process (interpreter start, numpy and the runtime
  import, ~0.3 s here) is paid either way: a pair costs ~1.2 s on the development VM.
* Every process has its own job id (session token, series, round, side, try) and an `attempt`
  token the result must echo (`runner_exec.run_document`), so a stale result is never read.
  A process that fails is retried once; a second failure ends the series as UNKNOWN with the
  reason. The job files of a series are removed from the target when it ends.
* Quiet measurement: everything the controller must do (validating, hashing, connecting, pushing
  the runner and both artifacts of every series) is done for every target before the first
  measurement starts; while measuring, the controller only writes job documents and reads
  results. Call it when no run is measuring (after `run_plan` returned).
* False alarms: each series' `SequentialAB` holds alpha / number of series (Bonferroni); when every
  series has reached a decision, Holm's step-down (`decide_rows`) may upgrade an UNKNOWN row to
  REGRESSED. When a series was cut short (budget, failure, a target that cannot be reached) the
  Bonferroni decisions stand as they are.
* `budget_seconds` caps the whole call: a round starts only if the time left covers the last
  round's duration; series not reached are UNKNOWN with the reason "budget".

`stretch` (test-only) is the runner's `stretch` job field on the candidate side: a known, injected
slowdown for validating the decision (bench/ab_validation.py); never set it for a real verdict.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from harness import defaults
from harness.artifacts.cache import sha256_file
from harness.config import Suite, load_inventory
from harness.config.inventory import Target
from harness.config.suite import LatencySpec, Measurements
from harness.devices import runner_exec
from harness.devices.base import TargetContext
from harness.errors import HarnessError, UserError
from harness.sequential_ab import DEFAULT_LOOKS, ABResult, Decision, SequentialAB, decide_rows
from harness.transport import Transport, connect

log = logging.getLogger("harness.remeasure")

# one process's latency protocol (the runner's `measure.latency`, threads added per series)
PROTOCOL: dict[str, Any] = {"warmup_runs": 10, "warmup_seconds": 0.1, "runs": 20,
                            "min_seconds": 0.2, "rounds": 1}
RUNNER_KINDS = ("cpu", "edgetpu")      # the kinds whose latency the device-side runner measures
BUDGET = "budget"
SIDES = ("A", "B")


@dataclass(frozen=True)
class ABSeries:
    """One latency series to re-measure: the baseline's artifact file against tonight's."""

    target: str
    model: str
    variant: str
    runtime: str
    threads: int
    baseline: Path          # artifact file of the baseline
    candidate: Path         # artifact file of tonight's run

    @property
    def key(self) -> tuple:
        return (self.target, self.model, self.variant, self.runtime, self.threads)


@dataclass(frozen=True)
class RemeasuredAB(ABResult):
    """An `ABResult` with why a series ended without its decision (None when it decided) and
    the wall time its rounds took."""

    reason: str | None = None
    seconds: float = 0.0

    def describe(self) -> str:
        text = super().describe()
        return f"{text} ({self.reason})" if self.reason else text


@dataclass
class _Series:
    """One series while it is re-measured."""

    index: int
    series: ABSeries
    state: SequentialAB
    remote: dict[str, str] = field(default_factory=dict)     # side -> model path on the target
    reason: str | None = None
    seconds: float = 0.0
    files: list[str] = field(default_factory=list)           # job and result files to remove


class _Clock:
    """The call's time budget."""

    def __init__(self, budget_seconds: float | None) -> None:
        self.deadline = math.inf if budget_seconds is None else \
            time.monotonic() + max(0.0, float(budget_seconds))

    def allows(self, seconds: float) -> bool:
        """Whether `seconds` of work still fit (nothing fits once the budget is spent)."""
        now = time.monotonic()
        return now < self.deadline and now + seconds <= self.deadline


def remeasure(series: list[ABSeries], *, inventory_path: Path,
              threshold: float | Callable[[ABSeries], float] = 0.10, alpha: float = 0.015,
              budget_seconds: float | None = None, looks: tuple[int, ...] | None = None,
              progress: Callable[[str], None] | None = None,
              stretch: float = 1.0) -> dict[tuple, ABResult]:
    """Re-measure every series A/B in fresh runner processes; {series.key: RemeasuredAB}.

    `threshold`: the relative slowdown to catch (or a function of the series); `alpha`: the
    false-REGRESSED rate across every look and series; `looks`: the pair counts at which a
    decision is attempted (default `sequential_ab.DEFAULT_LOOKS`); `budget_seconds`: a cap on
    the whole call; `progress`: receives one line per look and per outcome (from one thread per
    target); `stretch`
    (test-only) slows the candidate side down by that factor.

    UserError for a missing artifact, an unknown target or a repeated series; a target that
    cannot be reached, a runner that fails twice, or the budget make a series UNKNOWN with the
    reason.
    """
    clock = _Clock(budget_seconds)
    say = progress or (lambda message: None)
    if not isinstance(stretch, (int, float)) or not stretch >= 1.0:
        raise UserError(f"A/B re-measurement: stretch must be a number >= 1.0, got {stretch!r}")
    inventory = load_inventory(Path(inventory_path))
    runs = _validated(series, inventory.targets, threshold, alpha, looks)
    by_target: dict[str, list[_Series]] = {}
    for run in runs:
        by_target.setdefault(run.series.target, []).append(run)
    token = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory(prefix="harness-ab-") as local:
        contexts: dict[str, TargetContext] = {}

        def setup(name: str) -> None:
            ctx = _setup(name, inventory.targets[name], by_target[name], Path(local) / name,
                         Path(inventory_path), clock)
            if ctx is not None:
                contexts[name] = ctx

        def measure(name: str) -> None:
            if name in contexts:
                rng, last_round = random.Random(), 0.0
                for run in by_target[name]:
                    last_round = _measure(contexts[name], run, clock, token, float(stretch), rng,
                                          say, last_round)

        workers = max(1, len(by_target))
        try:
            with ThreadPoolExecutor(max_workers=workers) as pool:   # everything heavy first
                list(pool.map(setup, by_target))
            with ThreadPoolExecutor(max_workers=workers) as pool:   # then only measurements
                list(pool.map(measure, by_target))
        finally:
            for ctx in contexts.values():
                ctx.transport.close()
    return _results(runs, say)


# --------------------------------------------------------------------------- steps

def _validated(series: list[ABSeries], targets: dict[str, Target],
               threshold: float | Callable[[ABSeries], float], alpha: float,
               looks: tuple[int, ...] | None) -> list[_Series]:
    """One `_Series` per series, each with its SequentialAB; UserError for what cannot run."""
    keys = [s.key for s in series]
    repeated = sorted({str(k) for k in keys if keys.count(k) > 1})
    if repeated:
        raise UserError(f"A/B re-measurement: series given more than once: {', '.join(repeated)}")
    runs = []
    for index, s in enumerate(series):
        if s.target not in targets:
            raise UserError(f"A/B re-measurement of {s.key}: target {s.target!r} is not in the "
                            f"inventory", hint=f"known targets: {', '.join(targets)}")
        for side, path in (("baseline", s.baseline), ("candidate", s.candidate)):
            if not Path(path).is_file():
                raise UserError(f"A/B re-measurement of {s.key}: the {side} artifact {path} does "
                                "not exist", hint="rebuild it (harness run) or set a new "
                                                  "baseline (harness baseline set)")
        limit = threshold(s) if callable(threshold) else threshold
        try:
            state = SequentialAB(limit, alpha, looks or DEFAULT_LOOKS, rows=len(series))
        except ValueError as exc:
            raise UserError(f"A/B re-measurement of {s.key}: {exc}") from exc
        runs.append(_Series(index, s, state))
    return runs


def _setup(name: str, target: Target, runs: list[_Series], local_dir: Path,
           inventory_path: Path, clock: _Clock) -> TargetContext | None:
    """Connect, push the runner and every series' two artifacts; None (the series UNKNOWN with
    the reason) when the target cannot be used."""
    if target.kind not in RUNNER_KINDS:
        for run in runs:
            run.reason = (f"kind {target.kind!r} is not measured by the runner; A/B "
                          f"re-measurement covers {', '.join(RUNNER_KINDS)}")
        return None
    if not clock.allows(0.0):
        for run in runs:
            run.reason = BUDGET
        return None
    transport: Transport | None = None
    try:
        transport = connect(name, target, inventory_path)
        suite = Suite.model_construct(name="ab-remeasure", measurements=Measurements(
            latency=LatencySpec(**PROTOCOL), memory=False))
        ctx = TargetContext(name, target, transport, suite, local_dir, defaults.cache_dir())
        ctx.ensure_runner()
        for run in runs:
            for side, path in zip(SIDES, (run.series.baseline, run.series.candidate)):
                path = Path(path)
                run.remote[side] = ctx.push(path, sha256_file(path), path.suffix.lstrip("."))
        return ctx
    except HarnessError as exc:
        if transport is not None:
            transport.close()
        for run in runs:
            run.reason = f"{getattr(exc, 'kind', 'error')}: {exc}"
        log.warning("%s: A/B re-measurement cannot start: %s", name, exc)
        return None


def _measure(ctx: TargetContext, run: _Series, clock: _Clock, token: str, stretch: float,
             rng: random.Random, say: Callable[[str], None], last_round: float = 0.0) -> float:
    """Rounds of one A and one B process (random order) until the series is decided; returns the
    last round's duration (the estimate a next round must fit in the budget)."""
    if run.reason is not None:
        return last_round
    s, state = run.series, run.state
    label = f"{s.target} {s.model} {s.variant} {s.runtime} t{s.threads}"
    started = time.monotonic()
    try:
        while not state.finished:
            if not clock.allows(last_round):
                run.reason = BUDGET
                break
            round_started = time.monotonic()
            values: dict[str, float] = {}
            for side in rng.sample(SIDES, 2):
                value = _process(ctx, run, token, state.pairs + 1, side,
                                 stretch if side == "B" else 1.0)
                if value is None:
                    break
                values[side] = value
            if run.reason is not None:
                break
            state.add(values["A"], values["B"])
            state.decision()
            last_round = time.monotonic() - round_started
            if state.pairs in state.looks:
                say(f"A/B {label}: {state.result().describe()}")
    finally:
        run.seconds = time.monotonic() - started
        _clean(ctx, run)
    if run.reason is not None:
        say(f"A/B {label}: UNKNOWN after {state.pairs} pairs ({run.reason})")
    return last_round


def _process(ctx: TargetContext, run: _Series, token: str, round_no: int, side: str,
             stretch: float) -> float | None:
    """One fresh runner process of one side, retried once: its median in µs, or None (the
    series' reason is set)."""
    s = run.series
    errors = []
    for attempt in (1, 2):
        job_id = f"ab-{token}-s{run.index:02d}-r{round_no:03d}-{side}{attempt}"
        document = job_document(job_id, f"{token}/{run.index}/{round_no}/{side}/{attempt}",
                                run.remote[side], s.runtime, s.threads, stretch,
                                delegate=_delegate(ctx.target))
        run.files += [f"jobs/{job_id}.json", document["result"]]
        try:
            result = runner_exec.run_document(ctx, document)
            return process_median(result, s.threads)
        except (HarnessError, ValueError) as exc:
            errors.append(str(exc))
            log.warning("%s: A/B process %s failed: %s", ctx.name, job_id, exc)
    run.reason = f"side {side} ({'baseline' if side == 'A' else 'candidate'}) failed twice: " \
                 f"{errors[-1]}"
    return None


def job_document(job_id: str, attempt: str, model_remote: str, runtime: str, threads: int,
                 stretch: float = 1.0, delegate: dict[str, str] | None = None) -> dict[str, Any]:
    """The runner job of one A/B process: latency only, at one thread count (`PROTOCOL`)."""
    document: dict[str, Any] = {
        "schema_version": 1, "job_id": job_id, "attempt": attempt, "model": model_remote,
        "runtime": runtime, "measure": {"latency": dict(PROTOCOL, threads=[int(threads)]),
                                        "memory": False},
        "result": f"results/{job_id}.json"}
    if stretch != 1.0:
        document["stretch"] = float(stretch)
    if delegate:
        document["delegate"] = delegate
    return document


def process_median(result: dict[str, Any], threads: int) -> float:
    """A process's summary: the runner's `median_us` at the series' thread count (the only
    entry; a delegate may report another count). ValueError for an error document."""
    if result.get("status") != "ok":
        error = result.get("error") or {}
        raise ValueError(f"runner error {error.get('kind')}: {error.get('message')}")
    entries = result.get("latency") or []
    entry = next((e for e in entries if e.get("threads") == threads), entries[0] if entries
                 else None)
    median = entry.get("median_us") if entry else None
    if not isinstance(median, (int, float)) or not math.isfinite(median) or median <= 0:
        raise ValueError(f"the result has no positive median latency ({entry})")
    return float(median)


def _delegate(target: Target) -> dict[str, str] | None:
    """The external delegate an Edge TPU target's runner job names (as `EdgeTpuKind` does)."""
    if target.kind == "edgetpu" and target.accelerator in (None, "edgetpu"):
        from harness.devices.edgetpu import DELEGATE_LIBRARY

        return {"name": "edgetpu", "library": DELEGATE_LIBRARY}
    return None


def _clean(ctx: TargetContext, run: _Series) -> None:
    """Remove the series' job and result files from the target (best effort)."""
    if not run.files:
        return
    try:
        ctx.transport.run(["rm", "-f", "--", *run.files], timeout=60)
    except HarnessError as exc:
        log.info("%s: could not remove A/B job files: %s", ctx.name, exc)
    run.files = []


def _results(runs: list[_Series], say: Callable[[str], None]) -> dict[tuple, ABResult]:
    """Every series' result: Holm across the series when all decided, else each as it stands."""
    states = {run.series.key: run.state for run in runs}
    if runs and all(run.reason is None and run.state.finished for run in runs):
        decided = decide_rows(states)
    else:
        decided = {run.series.key: run.state.result(Decision.UNKNOWN if run.reason else None)
                   for run in runs}
    out: dict[tuple, ABResult] = {}
    for run in runs:
        result = decided[run.series.key]
        out[run.series.key] = RemeasuredAB(**{f.name: getattr(result, f.name)
                                              for f in dataclasses.fields(ABResult)},
                                           reason=run.reason, seconds=round(run.seconds, 3))
        if run.reason is None:
            say(f"A/B {' '.join(map(str, run.series.key))}: {out[run.series.key].describe()}")
    return out
