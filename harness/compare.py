"""Compare a run with a baseline: pair rows, judge each metric, marks and the verdict.

Pure: frames in, a `Comparison` out; no I/O. The latency verdict itself comes from an A/B
re-measurement (`harness.sequential_ab`), merged in with `apply_ab`.

What is under test: the artifact (a new sha256 is tonight's build), the runtime version, the
environment. They are shown in the `changed` column (and the reason) as *what changed*; they never
make a row incomparable. Two rows are comparable when they have the same key - (target, model,
variant, runtime as resolved on both sides, threads, measurement, metric, key) - and their
measurement was taken with the same protocol (the suite's latency / profile / accuracy settings,
`measurement_protocol`). A failure row of a target whose runtime is `auto` pairs with the other
side's rows of that job whatever runtime they resolved to.

Marks (`mark`) and states (`state`)
    +  regressed        a deterministic metric beyond its threshold, or latency REGRESSED by A/B
    -  improved         the same, the other way
    ~  same             within the threshold; or A/B SAME; or nothing under test changed;
       still_failing    (failed on both sides)
    !  newly_failing    failed now, ok in the baseline (the error kind and message are shown)
    *  fixed            ok now, failed in the baseline
    x  not_comparable   a row on one side only, or the measurement protocol changed
    ?  remeasure        a timing change seen only through stored runs (or through an untrustworthy
                        measurement): needs the A/B re-measurement (`Comparison.remeasure`)
       unknown          the A/B re-measurement spent its budget without a decision

Deterministic metrics (size, parameters, TFLM arena, MCU fit, op and delegate coverage, accuracy
with a tolerance, peak RSS) are judged directly against their threshold (`policy_for`): no
statistics for numbers that do not vary. Timing metrics (latency, per-op profile, init time,
rates) are never judged REGRESSED from stored runs: the samples of one run come from one process
and are not independent evidence (a Mann-Whitney test on them gives p ~ 0 for an unchanged
rerun), and whole runs differ by ~13 % on a shared machine. A stored-run comparison of a timing
row can only say
  ~  when nothing under test changed (same artifact, runtime version, environment), or when the
     row's known run-to-run noise (`series_noise`) rules out a change of the threshold's size:
     |log change| + 2.054 * sqrt(2) * sd < log(1 + threshold), or
  ?  otherwise: suspect, needs A/B.

The `ab` column says, for each counted latency median row, whether the A/B re-measurement decided
it (`A/B-tested`), ran out of budget midway (`A/B stopped: budget`) or never ran for it
(`not A/B-tested: <why>`, set by `note_ab`: budget, same artifact on both sides, artifact not in
the store, target unreachable, A/B off).

The verdict (`Comparison.regressed`, exit code 1): any counted `+` (a deterministic metric, or a
latency row whose A/B decision is REGRESSED) or any `!`. `?` and UNKNOWN are reported and do not
fail. Which rows count: latency `median_ms`, peak RSS, TFLM arena, MCU fit, every size metric,
coverage (`delegated_nodes`, `undelegated_ops`, `ops_on_cpu_total`), accuracy `mae*` and `f1*`,
every `!`, and any metric named in the suite's `thresholds:`. The rest are compared and marked
the same way but are informational; spread and count rows (iqr, outliers) are not compared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

import numpy as np
import pandas as pd

from harness.results.schema import KEY_COLUMNS
from harness.sequential_ab import DEFAULT_ALPHA, ABResult, Decision

NOISE_MIN_RUNS = 4
NOISE_CONFIDENCE = 0.90
Z_SAME = 2.054                 # one-sided 2 %: how far beyond the known noise "same" must hold
FINGERPRINT_KEYS = ("runtime", "runtime_version", "cpu_model", "governor", "os")
AUTO_RUNTIME = "auto"
# spread and count rows are descriptions of one distribution, not verdicts: left out of comparisons
NOT_COMPARED_PREFIXES = ("iqr", "rel_iqr", "outliers", "cv", "std", "stdev")
# deterministic coverage of a latency row, derived from its delegated_nodes / undelegated_ops
COVERAGE_METRICS = ("delegated_nodes", "undelegated_ops")
TIME_UNITS = ("ms", "us", "µs", "s", "hz", "qps", "fps", "1/s")
TIME_SUFFIXES = ("_ms", "_us", "_s", "_hz", "_qps", "_fps", "_per_s")
# which section of the measurement protocol a timing row depends on
PROTOCOL_SECTIONS = {"latency": "latency", "profile": "profile", "accuracy": "accuracy"}

MARKS = {
    "+": "regressed",
    "-": "improved",
    "~": "same",
    "!": "newly failing",
    "*": "fixed",
    "x": "not comparable",
    "?": "re-measure (A/B) or undecided",
}

REGRESSED, IMPROVED, SAME, STILL_FAILING = "regressed", "improved", "same", "still_failing"
NEWLY_FAILING, FIXED, NOT_COMPARABLE = "newly_failing", "fixed", "not_comparable"
REMEASURE, UNKNOWN = "remeasure", "unknown"
STATES = (REGRESSED, IMPROVED, SAME, STILL_FAILING, NEWLY_FAILING, FIXED, NOT_COMPARABLE,
          REMEASURE, UNKNOWN)
_AB_STATE = {Decision.REGRESSED: ("+", REGRESSED), Decision.IMPROVED: ("-", IMPROVED),
             Decision.SAME: ("~", SAME), Decision.UNKNOWN: ("?", UNKNOWN)}

HIGHER_IS_BETTER_PREFIXES = ("f1", "acc", "accuracy", "mcc", "precision", "recall", "sqnr", "r2",
                             "throughput", "fps")
HIGHER_IS_BETTER_SUFFIXES = ("_per_s", "_fps", "_hz")
ABSOLUTE_PREFIXES = ("f1", "acc", "accuracy", "mcc", "precision", "recall", "r2")

OUTPUT_COLUMNS = KEY_COLUMNS + [
    "mark", "state", "counts", "baseline_value", "value", "unit", "change", "change_pct",
    "threshold", "relative", "ratio", "ci_low", "ci_high", "pairs", "p_value", "n_baseline", "n",
    "changed", "reason", "baseline_artifact_sha256", "artifact_sha256",
    "baseline_runtime_version", "runtime_version", "status", "error_kind", "valid", "ab",
]
AB_TESTED = "A/B-tested"
AB_STOPPED = "A/B stopped: budget"
NOT_AB_TESTED = "not A/B-tested"

SeriesKey = tuple[str, str, str, str, str]     # (target, model, variant, runtime, threads)


# --------------------------------------------------------------------------- policies

@dataclass(frozen=True)
class Policy:
    """How one metric is judged."""

    threshold: float            # fraction of the baseline (relative) or absolute units
    relative: bool = True
    higher_is_better: bool = False
    counts: bool = True         # towards Comparison.regressed


def default_policy(measurement: str, metric: str) -> Policy:
    """The built-in policy of a metric (before the suite's `thresholds:` are applied)."""
    m = (metric or "").lower()
    higher = m.startswith(HIGHER_IS_BETTER_PREFIXES) or m.endswith(HIGHER_IS_BETTER_SUFFIXES)
    absolute = m.startswith(ABSOLUTE_PREFIXES)
    if m == "delegated_nodes":
        return Policy(0.0, relative=False, higher_is_better=True)
    if m in ("undelegated_ops", "ops_on_cpu_total"):
        return Policy(0.0, relative=False)
    if measurement == "latency":
        return Policy(0.10, counts=m.startswith("median"), higher_is_better=higher)
    if measurement == "memory":
        if "arena" in m:
            return Policy(0.01)
        if m == "mcu_fits":
            return Policy(0.5, relative=False, higher_is_better=True)
        return Policy(0.05, counts=m.startswith("peak_rss"), higher_is_better=higher)
    if measurement == "size":
        if m == "weight_sparsity":  # fraction of zero kernel weights: pruning lost is a regression
            return Policy(0.02, relative=False, higher_is_better=True)
        if m == "int4_tensors":
            return Policy(0.0, relative=False, higher_is_better=True)
        if m.startswith("distinct_weights"):  # clustered kernels: any new value is a regression
            return Policy(0.0, relative=False)
        return Policy(0.01, counts=True, higher_is_better=higher)
    if measurement == "accuracy":
        if m.startswith("f1"):
            return Policy(0.02, relative=False, higher_is_better=True, counts=True)
        if m.startswith("mae"):
            return Policy(0.05, counts=True)
        if absolute:
            return Policy(0.02, relative=False, higher_is_better=True, counts=False)
        return Policy(0.05, higher_is_better=higher, counts=False)
    return Policy(0.02 if absolute else 0.10, relative=not absolute, higher_is_better=higher,
                  counts=False)


def policy_for(measurement: str, metric: str, thresholds: dict[str, float] | None) -> Policy:
    """Default policy with the suite's `thresholds:` applied.

    Keys: a metric name (`median_ms: 0.05`, `f1: 0.01`) - which also makes that metric count
    towards the verdict - or a measurement name (`latency: 0.05`, `size: 0.02`) for every metric of
    it that has no key of its own. Values are fractions for relative metrics (0.05 = 5 %) and
    absolute amounts for scores in [0, 1] (f1, accuracy, mcc, precision, recall) and counts.
    `alpha` is the A/B false-alarm rate, not a threshold.
    """
    base = default_policy(measurement, metric)
    thresholds = thresholds or {}
    if metric in thresholds:
        return Policy(float(thresholds[metric]), base.relative, base.higher_is_better, True)
    if measurement in thresholds:
        return Policy(float(thresholds[measurement]), base.relative, base.higher_is_better,
                      base.counts)
    return base


def is_timing(measurement: str, metric: str, unit: str = "") -> bool:
    """A time or a rate (varies from run to run): judged by A/B, never from stored runs."""
    m, u = (metric or "").lower(), (unit or "").lower()
    if m in COVERAGE_METRICS:
        return False
    if measurement in ("latency", "profile"):
        return True
    return u in TIME_UNITS or m.endswith(TIME_SUFFIXES)


# --------------------------------------------------------------------------- protocol

def measurement_protocol(suite: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The measurement protocol of a suite (run.json `suite`, as loaded): what must be equal for
    two runs' timing and accuracy rows to be comparable.

    {"latency": latency settings without `threads` (a thread count is part of the row key),
     "profile": profile settings without `models`, "accuracy": the evaluation data
     (workload dataset and max_eval_windows), or None for a section the suite does not measure}.
    None when the suite is unknown (no suite, or one recorded without its `measurements`, as an
    imported run's).
    """
    if not isinstance(suite, Mapping) or "measurements" not in suite:
        return None
    measurements = suite.get("measurements") or {}
    latency = measurements.get("latency")
    profile = measurements.get("profile")
    workload = suite.get("workload") or {}
    accuracy = None
    if measurements.get("accuracy"):
        accuracy = {"dataset": workload.get("dataset"),
                    "max_eval_windows": (workload.get("training") or {}).get("max_eval_windows"),
                    "evaluation": workload.get("evaluation")}
    return {
        "latency": {k: v for k, v in latency.items() if k != "threads"} if latency else None,
        "profile": {k: v for k, v in profile.items() if k != "models"} if profile else None,
        "accuracy": accuracy,
    }


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def protocol_diff(baseline: Mapping[str, Any] | None, current: Mapping[str, Any] | None,
                  section: str) -> dict[str, tuple[Any, Any]]:
    """Settings of one protocol section that differ: {dotted name: (baseline, current)}.

    Empty when either side does not know the section (nothing to tell).
    """
    if not baseline or not current or section not in baseline or section not in current:
        return {}
    before, after = baseline[section], current[section]
    if before is None or after is None:
        return {} if before == after else {section: (before, after)}
    a, b = _flatten(before), _flatten(after)
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


# --------------------------------------------------------------------------- the result

@dataclass
class Comparison:
    """The compared rows (tidy, one per key) and the overall verdict.

    `alpha` is the A/B re-measurement's overall false-REGRESSED rate (suite `thresholds: alpha`).
    """

    rows: pd.DataFrame
    alpha: float = DEFAULT_ALPHA
    missing_targets: list[str] = field(default_factory=list)   # in this run, not in the baseline
    absent_targets: list[str] = field(default_factory=list)    # in the baseline, not in this run
    environment_diffs: dict[str, dict[str, tuple[Any, Any]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)    # about the A/B re-measurement, for reports

    @property
    def regressed(self) -> bool:
        """Any counted `+` or any `!`."""
        rows = self.rows
        return bool((((rows["mark"] == "+") & rows["counts"]) | (rows["mark"] == "!")).any())

    def count(self, mark: str, counted_only: bool = False) -> int:
        rows = self.rows[self.rows["counts"]] if counted_only else self.rows
        return int((rows["mark"] == mark).sum())

    @property
    def newly_failing(self) -> bool:
        return self.count("!") > 0

    def exit_code(self) -> int:
        """1 on a regression (counted `+` or `!`), else 0."""
        return 1 if self.regressed else 0

    @property
    def remeasure(self) -> pd.DataFrame:
        """The counted rows that need the A/B re-measurement (state `remeasure`)."""
        return self.rows[(self.rows["state"] == REMEASURE) & self.rows["counts"]]

    def remeasure_series(self) -> list[SeriesKey]:
        """(target, model, variant, runtime, threads) of every row to re-measure, once each."""
        return list(dict.fromkeys(series_key(r) for r in self.remeasure.to_dict("records")))

    @property
    def informational_changes(self) -> int:
        """Rows that do not count (p90, p99, init time, ...) marked + or -."""
        rows = self.rows[~self.rows["counts"]]
        return int(rows["mark"].isin(["+", "-"]).sum())

    def summary(self) -> str:
        """One line: the verdict, the marks of the counted rows (plus ! * x of all rows)."""
        counted = {"+": self.count("+", True), "-": self.count("-", True),
                   "~": self.count("~", True), "!": self.count("!"), "*": self.count("*"),
                   "x": self.count("x")}
        parts = [f"{n} {m} {MARKS[m]}" for m, n in counted.items() if n]
        pending = len(self.remeasure)
        unknown = int(((self.rows["state"] == UNKNOWN) & self.rows["counts"]).sum())
        if pending:
            parts.append(f"{pending} ? to re-measure (A/B)")
        if unknown:
            parts.append(f"{unknown} ? undecided by A/B")
        verdict = "REGRESSION" if self.regressed else "no regression"
        text = f"{verdict}: " + (", ".join(parts) if parts else "nothing compared")
        if self.informational_changes:
            text += f"; {self.informational_changes} informational rows changed (not counted)"
        if self.missing_targets:
            text += f"; not in baseline: {', '.join(self.missing_targets)}"
        if self.absent_targets:
            text += f"; in baseline but not in this run: {', '.join(self.absent_targets)}"
        return text


# --------------------------------------------------------------------------- helpers

def _norm(value: Any) -> str:
    """Key values as comparable strings: None/NaN -> '', 2.0 -> '2'."""
    if value is None:
        return ""
    try:
        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def row_key(record: Mapping[str, Any]) -> tuple[str, ...]:
    """The normalized pairing key of a row (a dict): the keys of `noise` dicts."""
    return tuple(_norm(record.get(c)) for c in KEY_COLUMNS)


def series_key(record: Mapping[str, Any]) -> SeriesKey:
    """(target, model, variant, runtime, threads) of a row: what one A/B re-measurement covers."""
    target, model, variant, runtime, threads = (_norm(record.get(c)) for c in KEY_COLUMNS[:5])
    return (target, model, variant, runtime, threads)


def _is_false(value: Any) -> bool:
    return value is False or _norm(value).lower() in ("false", "0")


def _with_coverage(frame: pd.DataFrame) -> pd.DataFrame:
    """Latency coverage as deterministic rows: `delegated_nodes` and `undelegated_ops` of every ok
    median latency row (the per-run `undelegated_ops` rows, keyed by the op list, are replaced:
    a key that changes with the value cannot pair)."""
    if frame.empty:
        return frame
    status = frame["status"].map(_norm).replace("", "ok")
    listed = (frame["metric"] == "undelegated_ops") & (frame["measurement"] == "latency")
    ops_by_series = {series_key(r): _norm(r.get("key"))
                     for r in frame[listed].to_dict("records")}
    medians = frame[(frame["measurement"] == "latency") & (frame["metric"] == "median_ms")
                    & (status == "ok")]
    derived = []
    for record in medians.to_dict("records"):
        for metric in COVERAGE_METRICS:
            value = record.get(metric)
            if _norm(value) == "":
                continue
            row = dict(record, metric=metric, value=float(value), unit="count", key=None,
                       valid=None, hint=None)
            if metric == "undelegated_ops":
                row["message"] = ops_by_series.get(series_key(record)) or None
            derived.append(row)
    out = frame[~listed]
    if derived:
        out = pd.concat([out, pd.DataFrame(derived, columns=frame.columns)], ignore_index=True)
    return out


def _prepare(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    for column in KEY_COLUMNS + ["status", "artifact_sha256", "runtime_version", "unit",
                                 "error_kind", "message", "valid", "hint", "n", "value",
                                 "delegated_nodes", "undelegated_ops", "run_id"]:
        if column not in frame.columns:
            frame[column] = None
    frame = frame.reset_index(drop=True)
    frame["_key"] = [tuple(_norm(v) for v in row)
                     for row in frame[KEY_COLUMNS].itertuples(index=False)]
    frame["_status"] = [_norm(s) or "ok" for s in frame["status"]]
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce")
    return frame


def fingerprint(environment: dict[str, Any] | None) -> dict[str, Any]:
    """The environment keys a comparison reports: runtime and version, CPU model, governor, OS.

    Accepts the runner's environment as run.json keeps it per target (with a `runtimes`
    {name: version} map) as well as flat `runtime` / `runtime_version` keys.
    """
    env = dict(environment or {})
    runtimes = env.get("runtimes")
    if isinstance(runtimes, dict) and runtimes and not env.get("runtime"):
        names = sorted(runtimes)
        env["runtime"] = ",".join(names)
        env["runtime_version"] = (str(runtimes[names[0]]) if len(names) == 1 else
                                  ",".join(f"{n}={runtimes[n]}" for n in names))
    out = {k: env.get(k) for k in FINGERPRINT_KEYS}
    if env.get("harness_version") is not None:
        out["harness_version"] = env.get("harness_version")
    return out


def environment_diff(baseline_env: dict[str, Any] | None,
                     current_env: dict[str, Any] | None) -> dict[str, tuple[Any, Any]]:
    """Fingerprint keys known on both sides whose values differ: {key: (baseline, current)}.

    The harness version is recorded but not listed here (`_changes` reports it).
    """
    diffs = {}
    base_fp, cur_fp = fingerprint(baseline_env), fingerprint(current_env)
    for k in FINGERPRINT_KEYS:
        a = base_fp.get(k)
        b = cur_fp.get(k)
        if a not in (None, "") and b not in (None, "") and str(a) != str(b):
            diffs[k] = (a, b)
    return diffs


def _fmt_diffs(diffs: Mapping[str, tuple[Any, Any]]) -> str:
    return ", ".join(f"{k} {a} -> {b}" for k, (a, b) in diffs.items())


def _covers(failure_key: tuple[str, ...], row_key_: tuple[str, ...], same_measurement: bool
            ) -> int:
    """How specifically a failure row covers a row of the same job: -1 if it does not.

    A failure names what it knows: an empty field, or runtime `auto` (the target's runtime was
    never resolved), matches any value; a failure with a key covers only rows of that key.
    A failure of the row's own measurement is more specific than one of another.
    """
    score = 0
    for i in range(5):                     # target, model, variant, runtime, threads
        f, r = failure_key[i], row_key_[i]
        if f == "" or (i == 3 and f == AUTO_RUNTIME) or (i == 3 and r == AUTO_RUNTIME):
            continue
        if f != r:
            return -1
        score += 1
    if failure_key[7] and failure_key[7] != row_key_[7]:
        return -1
    return score + (1 if same_measurement and failure_key[5] == row_key_[5] else 0)


def _pct(x: float) -> str:
    return f"{x * 100:+.1f} %"


# --------------------------------------------------------------------------- noise

def _sd_upper_factor(df: int, confidence: float = NOISE_CONFIDENCE) -> float:
    """sd x this = the one-sided upper confidence bound of an sd with `df` degrees of freedom
    (chi-square): an sd from 4 runs may well be half the true one."""
    from scipy.stats import chi2

    return math.sqrt(df / chi2.ppf(1 - confidence, df))


def series_noise(history: pd.DataFrame, min_runs: int = NOISE_MIN_RUNS,
                 environments: Mapping[str, Mapping[str, Any]] | None = None
                 ) -> dict[tuple, float]:
    """Run-to-run noise per row key from past runs: {normalized key: sd of log(value)}.

    `history`: a long frame of several runs (History.trend, or concatenated run frames) with the
    key columns, `value`, `status` and, where known, `valid`, `artifact_sha256`,
    `runtime_version` and `run_id`. `environments`: {run_id: {target: environment}} of those
    runs, to tell environments apart.

    Only ok rows that are not marked invalid count, and the sd is pooled WITHIN segments of equal
    artifact, runtime version and environment fingerprint: a past regression (a new artifact, a
    new runtime) or a moved machine is a level shift, not noise. The plain pooled sd on purpose,
    not a robust one (a shared machine's noise is a mixture of quiet and contended runs; a MAD
    sees only the quiet ones), raised to its 90 % upper confidence bound for its degrees of
    freedom (x2.3 from 4 runs, x1.5 from 10). Keys with fewer than `min_runs - 1` degrees of
    freedom are left out.
    """
    if history is None or history.empty:
        return {}
    data = _prepare(history)
    data = data[(data["_status"] == "ok") & ~data["valid"].map(_is_false)]
    values = pd.to_numeric(data["value"], errors="coerce")
    data = data.assign(_v=values)[values > 0]
    if data.empty:
        return {}
    envs = environments or {}

    def env_of(run_id: Any, target: Any) -> str:
        env = (envs.get(_norm(run_id)) or {}).get(_norm(target))
        return repr(sorted(fingerprint(env).items())) if env else ""

    data = data.assign(_segment=[
        (_norm(a), _norm(v), env_of(r, t)) for a, v, r, t in
        zip(data["artifact_sha256"], data["runtime_version"], data["run_id"], data["target"])])
    out: dict[tuple, float] = {}
    for key, group in data.groupby("_key", sort=False):
        squares, df = 0.0, 0
        for _, segment in group.groupby("_segment", sort=False):
            logs = np.log(segment["_v"].to_numpy(dtype=float))
            squares += float(((logs - logs.mean()) ** 2).sum())
            df += logs.size - 1
        if df >= max(1, min_runs - 1):
            out[key] = math.sqrt(squares / df) * _sd_upper_factor(df)
    return out


# --------------------------------------------------------------------------- judging one pair

def _values(base: Mapping[str, Any], cur: Mapping[str, Any], policy: Policy) -> dict[str, Any]:
    b, c = float(base["value"]), float(cur["value"])
    out: dict[str, Any] = {"change": c - b, "threshold": policy.threshold,
                           "relative": policy.relative}
    out["change_pct"] = (c - b) / abs(b) * 100 if b != 0 and not math.isnan(b) else math.nan
    return out


def _judge_deterministic(b: float, c: float, policy: Policy) -> tuple[str, str, str]:
    """Mark, state and reason of a metric that does not vary for a given artifact."""
    sign = -1.0 if policy.higher_is_better else 1.0
    if policy.relative:
        worse = sign * (c - b) / abs(b) if b != 0 else (0.0 if c == b else sign * math.inf)
        limit = _pct(sign * policy.threshold)
    else:
        worse = sign * (c - b)
        limit = f"{sign * policy.threshold:+g}"
    if worse > policy.threshold:
        return "+", REGRESSED, f"beyond threshold {limit}"
    if -worse > policy.threshold:
        return "-", IMPROVED, f"better by more than the threshold {limit}"
    return "~", SAME, f"within threshold {limit}"


def _screen_timing(b: float, c: float, policy: Policy, nothing_changed: bool,
                   untrusted: list[str], noise: float | None) -> tuple[str, str, str]:
    """Mark, state and reason of a timing row seen through stored runs (never `+`)."""
    if b <= 0 or c <= 0:
        return "?", REMEASURE, "no positive value to compare: re-measure A/B"
    sign = -1.0 if policy.higher_is_better else 1.0
    worse = sign * math.log(c / b)
    seen = f"stored runs {_pct(math.expm1(sign * worse))}"
    if nothing_changed:
        return "~", SAME, (f"{seen}; nothing under test changed (artifact, runtime, environment): "
                           "run-to-run noise")
    if untrusted:
        return "?", REMEASURE, f"{seen}; {'; '.join(untrusted)}: re-measure A/B"
    limit = math.log1p(policy.threshold) if policy.relative else math.inf
    if noise is not None and noise > 0 and policy.relative:
        margin = Z_SAME * math.sqrt(2) * noise
        note = f"run-to-run noise +-{noise * 100:.1f} %"
        if abs(worse) + margin < limit:
            return "~", SAME, f"{seen}; {note} rules out {_pct(sign * policy.threshold)}"
        return "?", REMEASURE, f"{seen}; {note} cannot rule out {_pct(sign * policy.threshold)}: " \
                               "needs A/B"
    return "?", REMEASURE, f"{seen}; suspect: needs A/B (stored runs are not evidence)"


def _changes(base: Mapping[str, Any], cur: Mapping[str, Any],
             env_diffs: Mapping[str, tuple[Any, Any]]) -> list[str]:
    """What changed under test between the two rows: artifact, runtime version, environment."""
    out = []
    ba, ca = _norm(base.get("artifact_sha256")), _norm(cur.get("artifact_sha256"))
    if ba and ca and ba != ca:
        out.append(f"artifact {ba[:12]} -> {ca[:12]}")
    bv, cv = _norm(base.get("runtime_version")), _norm(cur.get("runtime_version"))
    if bv and cv and bv != cv:
        out.append(f"runtime_version {bv} -> {cv}")
    rest = {k: d for k, d in env_diffs.items()
            if not (k == "runtime_version" and bv and cv) and k != "runtime"}
    if rest:
        out.append(f"environment {_fmt_diffs(rest)}")
    return out


# --------------------------------------------------------------------------- main entry

def compare_runs(current: pd.DataFrame, baseline: pd.DataFrame, *,
                 thresholds: Mapping[str, float] | None = None,
                 current_env: Mapping[str, dict] | None = None,
                 baseline_env: Mapping[str, dict] | None = None,
                 current_protocol: Mapping[str, Any] | None = None,
                 baseline_protocol: Mapping[str, Any] | None = None,
                 noise: Mapping[tuple, float] | None = None) -> Comparison:
    """Pair the current run's rows with the baseline's and mark each pair (see the module doc).

    `thresholds`: the suite's `thresholds:` (see `policy_for`; its `alpha` key becomes
    `Comparison.alpha`). `*_env`: target name -> environment (run.json `environment`).
    `*_protocol`: `measurement_protocol(run.json suite)` of each side (None: unknown, no check).
    `noise`: known run-to-run sd of log(value) per row key (`series_noise`), which lets a timing
    row be called `~` from stored runs.
    """
    thresholds = dict(thresholds or {})
    alpha = float(thresholds.pop("alpha", DEFAULT_ALPHA))
    noise = noise or {}
    cur = _prepare(_with_coverage(_prepare(current)))
    base = _prepare(_with_coverage(_prepare(baseline)))
    cur = cur[~cur["metric"].map(_norm).str.startswith(NOT_COMPARED_PREFIXES)]
    base = base[~base["metric"].map(_norm).str.startswith(NOT_COMPARED_PREFIXES)]
    current_env = current_env or {}
    baseline_env = baseline_env or {}

    cur_targets = sorted({t for t in (_norm(v) for v in cur["target"]) if t})
    base_targets = sorted({t for t in (_norm(v) for v in base["target"]) if t})
    missing = [t for t in cur_targets if t not in base_targets]
    absent = [t for t in base_targets if t not in cur_targets]
    env_diffs = {t: d for t in cur_targets if t in base_targets
                 for d in [environment_diff(baseline_env.get(t), current_env.get(t))] if d}

    def harness_changed(target: str) -> str | None:
        a = (baseline_env.get(target) or {}).get("harness_version")
        b = (current_env.get(target) or {}).get("harness_version")
        return f"harness {a} -> {b}" if a and b and str(a) != str(b) else None

    # rows without a target (controller-side: quantization statistics) pair like any other
    in_scope = base["target"].map(_norm).isin(cur_targets + [""])
    cur_ok = cur[cur["_status"] == "ok"]
    cur_fail = cur[cur["_status"] != "ok"]
    base_ok = base[(base["_status"] == "ok") & in_scope]
    base_fail = base[(base["_status"] != "ok") & in_scope]
    base_by_key = dict(zip(base_ok["_key"], base_ok.to_dict("records")))
    cur_by_key = dict(zip(cur_ok["_key"], cur_ok.to_dict("records")))

    out: list[dict[str, Any]] = []

    def emit(key: tuple[str, ...], mark: str, state: str, reason: str,
             b: Mapping[str, Any] | None = None, c: Mapping[str, Any] | None = None,
             counts: bool = False, **extra: Any) -> None:
        rec: dict[str, Any] = dict(zip(KEY_COLUMNS, key))
        src = c if c is not None else b

        def number(row: Mapping[str, Any] | None) -> float:
            return float(row["value"]) if row is not None and _norm(row["value"]) else math.nan

        rec.update(mark=mark, state=state, reason=reason, counts=counts,
                   baseline_value=number(b), value=number(c),
                   unit=_norm(src["unit"]) if src is not None else "",
                   n_baseline=b["n"] if b is not None else None,
                   n=c["n"] if c is not None else None,
                   baseline_artifact_sha256=_norm(b["artifact_sha256"]) if b is not None else "",
                   artifact_sha256=_norm(c["artifact_sha256"]) if c is not None else "",
                   baseline_runtime_version=_norm(b["runtime_version"]) if b is not None else "",
                   runtime_version=_norm(c["runtime_version"]) if c is not None else "",
                   status=_norm(c["status"]) if c is not None else "",
                   error_kind=_norm(c["error_kind"]) if c is not None else "",
                   valid=c["valid"] if c is not None else None)
        rec.update(extra)
        out.append(rec)

    # --- current failures: newly failing, still failing, or new
    covered_base: set[tuple[str, ...]] = set()
    fail_keys = list(cur_fail["_key"])
    claims: dict[tuple[str, ...], int] = {}     # baseline row -> best score of a failure on it
    for fkey in fail_keys:
        for bkey in base_by_key:
            if bkey not in cur_by_key:
                score = _covers(fkey, bkey, True)
                if score >= 0:
                    claims[bkey] = max(claims.get(bkey, -1), score)
    for key, frow in zip(fail_keys, cur_fail.to_dict("records")):
        target = key[0]
        why = f"{_norm(frow['error_kind']) or 'failed'}: {_norm(frow['message'])}".rstrip(": ")
        if target in missing:
            emit(key, "x", NOT_COMPARABLE, f"failed; target {target} not in baseline ({why})",
                 c=frow)
            continue
        # the baseline rows this failure lost: ok before, absent now; the most specific claims
        hits = [bk for bk in base_by_key if bk not in cur_by_key
                and (score := _covers(key, bk, True)) >= 0 and score == claims.get(bk)]
        was_failing = [bk for bk in base_fail["_key"]
                       if _covers(key, bk, False) >= 0 or _covers(bk, key, False) >= 0]
        if hits:
            covered_base.update(hits)
            emit(key, "!", NEWLY_FAILING, f"{why} (ok in baseline: {len(hits)} rows)", c=frow,
                 counts=True, n_baseline=len(hits))
        elif was_failing:
            emit(key, "~", STILL_FAILING, f"still failing: {why}", c=frow)
        else:
            emit(key, "x", NOT_COMPARABLE, f"failed; not in baseline ({why})", c=frow)

    # --- baseline failures fixed now
    fixed_cur: set[tuple[str, ...]] = set()
    for key, brow in zip(base_fail["_key"], base_fail.to_dict("records")):
        if any(_covers(key, ck, False) >= 0 or _covers(ck, key, False) >= 0
               for ck in cur_fail["_key"]):
            continue  # still failing: reported above
        hits = [ck for ck in cur_by_key if ck not in base_by_key and _covers(key, ck, True) >= 0]
        if hits:
            fixed_cur.update(hits)
            emit(key, "*", FIXED, f"fixed: was {_norm(brow['error_kind']) or 'failed'} in "
                                  f"baseline ({len(hits)} rows ok now)", b=brow, n=len(hits))

    # --- ok rows on both sides, or on one side
    new_rows: dict[str, int] = {}
    for key, crow in cur_by_key.items():
        if key in fixed_cur:
            continue
        target, measurement, metric = key[0], key[5], key[6]
        policy = policy_for(measurement, metric, thresholds)
        if target in missing:
            new_rows[target] = new_rows.get(target, 0) + 1
            continue
        brow = base_by_key.get(key)
        if brow is None:
            emit(key, "x", NOT_COMPARABLE, "not in baseline", c=crow)
            continue
        timing = is_timing(measurement, metric, _norm(crow["unit"]))
        section = PROTOCOL_SECTIONS.get(measurement) if timing or measurement == "accuracy" \
            else None
        changed = _changes(brow, crow, env_diffs.get(target, {}))
        if (note := harness_changed(target)) is not None:
            changed.append(note)
        changed_text = "; ".join(changed)
        proto = protocol_diff(baseline_protocol, current_protocol, section) if section else {}
        if proto:
            emit(key, "x", NOT_COMPARABLE, f"measurement protocol changed: {_fmt_diffs(proto)}",
                 b=brow, c=crow, changed=changed_text)
            continue
        b, c = float(brow["value"]), float(crow["value"])
        values = _values(brow, crow, policy)
        if math.isnan(b) or math.isnan(c):
            mark, state, reason = (("~", SAME, "no value on either side") if math.isnan(b)
                                   and math.isnan(c) else
                                   ("x", NOT_COMPARABLE, "no value on one side"))
        elif timing:
            untrusted = [f"{side} not trustworthy: {_norm(row.get('hint')) or 'see validity'}"
                         for side, row in (("baseline", brow), ("this run", crow))
                         if _is_false(row.get("valid"))]
            known = all((baseline_env.get(target), current_env.get(target),
                         _norm(brow["artifact_sha256"]), _norm(crow["artifact_sha256"])))
            mark, state, reason = _screen_timing(b, c, policy, known and not changed, untrusted,
                                                 noise.get(key))
        else:
            mark, state, reason = _judge_deterministic(b, c, policy)
            if metric == "undelegated_ops" and _norm(crow.get("message")):
                reason += f" (undelegated: {_norm(crow['message'])})"
        if not policy.counts:
            reason += " (informational)"
        if changed_text:
            reason += f"; changed: {changed_text}"
        emit(key, mark, state, reason, b=brow, c=crow, counts=policy.counts,
             changed=changed_text, **values)

    for target, count in new_rows.items():
        emit((target, "", "", "", "", "", "", ""), "x", NOT_COMPARABLE,
             f"target {target} not in baseline ({count} rows, nothing to compare with)")
    for key, brow in base_by_key.items():
        if key in cur_by_key or key in covered_base:
            continue
        emit(key, "x", NOT_COMPARABLE, "in baseline, missing from this run", b=brow)

    return Comparison(rows=_finish(pd.DataFrame(out)), alpha=alpha, missing_targets=missing,
                      absent_targets=absent, environment_diffs=env_diffs)


def _finish(rows: pd.DataFrame) -> pd.DataFrame:
    """Every output column, the worst marks first, typed columns."""
    for column in OUTPUT_COLUMNS:
        if column not in rows.columns:
            rows[column] = None
    rows = rows[OUTPUT_COLUMNS].copy()
    if len(rows):
        order = {m: i for i, m in enumerate("!+?*-x~")}
        rows["_o"] = rows["mark"].map(order)
        rows = rows.sort_values(["_o"] + KEY_COLUMNS, kind="stable").drop(columns="_o")
        rows = rows.reset_index(drop=True)
    rows["counts"] = [not pd.isna(v) and bool(v) for v in rows["counts"]]
    rows["threads"] = pd.to_numeric(rows["threads"].replace("", None),
                                    errors="coerce").astype("Int64")
    for column in KEY_COLUMNS:
        if column != "threads":
            rows[column] = rows[column].replace("", None)
    for column in ("baseline_value", "value", "change", "change_pct", "threshold", "ratio",
                   "ci_low", "ci_high", "p_value"):
        rows[column] = pd.to_numeric(rows[column], errors="coerce")
    rows["pairs"] = pd.to_numeric(rows["pairs"], errors="coerce").astype("Int64")
    rows["changed"] = rows["changed"].fillna("")
    rows["ab"] = rows["ab"].fillna("")
    return rows


def is_ab_row(record: Mapping[str, Any]) -> bool:
    """A row the A/B re-measurement decides: a counted latency median."""
    return (record["measurement"] == "latency" and bool(record["counts"])
            and str(record["metric"] or "").startswith("median"))


def apply_ab(comparison: Comparison, results: Mapping[SeriesKey, ABResult]) -> Comparison:
    """The comparison with the A/B re-measurement's decisions on the latency rows.

    `results`: {series_key: ABResult} (`harness.sequential_ab.decide_rows`). Each counted latency
    row (`median*`) of a re-measured series gets the decision's mark - REGRESSED `+`, IMPROVED
    `-`, SAME `~`, UNKNOWN `?` (state unknown), pending `?` - with the ratio, its CI, the pairs
    and the p-value; `change_pct` becomes the A/B estimate, the stored-run change stays in the
    reason.
    """
    rows = comparison.rows.copy()
    for i, record in enumerate(rows.to_dict("records")):
        result = results.get(series_key(record))
        if result is None or not is_ab_row(record):
            continue
        mark, state = _AB_STATE.get(result.decision, ("?", REMEASURE))
        stored = record["change_pct"]
        reason = result.describe()
        if not pd.isna(stored):
            reason += f" (stored runs {stored:+.1f} %)"
        if record["changed"]:
            reason += f"; changed: {record['changed']}"
        base_value = record["baseline_value"]
        updates = {"mark": mark, "state": state, "reason": reason, "ratio": result.ratio,
                   "ci_low": result.ci_low, "ci_high": result.ci_high, "pairs": result.pairs,
                   "p_value": result.p_value, "threshold": result.threshold,
                   "change_pct": (result.ratio - 1) * 100,
                   "change": (base_value * (result.ratio - 1)
                              if not pd.isna(base_value) else math.nan),
                   "ab": AB_TESTED if result.decision is not None else AB_STOPPED}
        for column, value in updates.items():
            rows.at[i, column] = value
    return replace(comparison, rows=_finish(rows))


def note_ab(comparison: Comparison, notes: Mapping[SeriesKey, str]) -> Comparison:
    """The comparison with why some series were not A/B-tested: each counted latency median row
    of those series still waiting for A/B (state remeasure) gets `ab` = "not A/B-tested: <why>"
    and the same in front of its reason; it stays `?` (reported, never a silent pass)."""
    if not notes:
        return comparison
    rows = comparison.rows.copy()
    for i, record in enumerate(rows.to_dict("records")):
        why = notes.get(series_key(record))
        if why is None or not is_ab_row(record) or record["state"] != REMEASURE:
            continue
        label = f"{NOT_AB_TESTED}: {why}"
        rows.at[i, "ab"] = label
        rows.at[i, "reason"] = f"{label}; {record['reason']}"
    return replace(comparison, rows=_finish(rows))
