"""Compare a run with a baseline or another run: pair rows, per-metric policy, verdict marks.

Pure: frames and sample lists in, a `Comparison` out; no I/O.

Marks
    +  regressed                 -  improved                ~  no significant change
    !  newly failing (failed now, ok before)                *  fixed (ok now, failed before)
    x  not comparable: artifact hash, runtime version or environment fingerprint differs (the reason
       says what), or there is nothing to compare with (target or row not in the baseline)

The rule for a metric with raw samples on both sides (latency): a regression needs BOTH
  1. statistical significance: two-sided Mann-Whitney U on the raw samples, p < alpha (0.01), and
  2. a shift beyond the threshold: the Hodges-Lehmann estimate of the relative shift (median of all
     pairwise log-ratios, the estimator that belongs to the Mann-Whitney test) must exceed the
     decision point DECISION_FRACTION x threshold. The threshold is the size of change the verdict
     must catch (e.g. +10 %). Deciding exactly at the threshold would flag a true +10 % change only
     half of the time (a coin flip at the boundary); deciding at 0.555 x threshold balances the
     two errors for the same noise (z_0.98 / (z_0.98 + z_0.95) = 2.054 / 3.699), so a change of
     the threshold's size is caught with 95 % and no change is flagged with 2 % as long as the
     run-to-run noise of the shift (sigma) is below threshold / 3.7. bench/compare_validation.py
     measures whether it is on a given machine.
Significance alone is never enough (thousands of samples make 0.5 % significant) and a large
shift alone is never enough (a noisy run).

Known noise: the samples of one run say nothing about how much a whole run moves from one run to
the next (on a shared machine that is what dominates: measured 7-40 % run-to-run CV of the median
here). When that noise is known for a row - from a baseline set from several runs, or from the
history (`series_noise`: the sd of log(value) over past runs, raised to its 90 % upper confidence
bound) - the decision point is raised to
exp(Z_FALSE_ALARM x sqrt(2) x sd) - 1 when that is larger, so a noisy device gets "~ ... cannot
resolve +10 %" instead of a false alarm.

Metrics without raw samples (size, accuracy, memory) are deterministic for a given artifact and
use the threshold alone, exactly: beyond it is a change.

Which rows count towards `Comparison.regressed`: the verdict metrics (latency `median_ms`, memory
`peak_rss_*`, every `size` metric, accuracy `mae*` and `f1*`) and any metric named in the suite's
`thresholds:`. Every other row (p90/p99/mean/min latency, init time, per-op profile rows, other
accuracy metrics) is compared and marked the same way but is informational (`counts` False);
spread and count rows (iqr, outliers) are not compared. Newly failing rows (`!`) count too, if
they cover a counted row: a benchmark that worked and now fails is a regression of the product.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
import pandas as pd

from harness import stats
from harness.results.schema import KEY_COLUMNS

ALPHA = 0.01
DECISION_FRACTION = 0.555
Z_FALSE_ALARM = 2.054          # one-sided 2 %: how far beyond the known run-to-run noise to decide
NOISE_MIN_RUNS = 4
MIN_TEST_SAMPLES = 5
FINGERPRINT_KEYS = ("runtime", "runtime_version", "cpu_model", "governor", "os")
SERIES_KEYS = ["target", "model", "variant", "runtime", "threads", "measurement"]
# spread and count rows are descriptions of one distribution, not verdicts: left out of comparisons
NOT_COMPARED_PREFIXES = ("iqr", "rel_iqr", "outliers", "cv", "std", "stdev")

MARKS = {
    "+": "regressed",
    "-": "improved",
    "~": "no significant change",
    "!": "newly failing",
    "*": "fixed",
    "x": "not comparable",
}

HIGHER_IS_BETTER_PREFIXES = ("f1", "acc", "accuracy", "mcc", "precision", "recall", "sqnr", "r2",
                             "throughput", "fps")
HIGHER_IS_BETTER_SUFFIXES = ("_per_s", "_fps", "_hz")
ABSOLUTE_PREFIXES = ("f1", "acc", "accuracy", "mcc", "precision", "recall", "r2")

OUTPUT_COLUMNS = KEY_COLUMNS + [
    "mark", "counts", "baseline_value", "value", "unit", "change", "change_pct", "shift_pct",
    "p_value", "threshold", "relative", "n_baseline", "n", "reason",
    "baseline_artifact_sha256", "artifact_sha256", "status", "error_kind", "valid",
]


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
    if measurement == "latency":
        return Policy(0.10, counts=m.startswith("median"), higher_is_better=higher)
    if measurement == "memory":
        return Policy(0.05, counts=m.startswith("peak_rss"), higher_is_better=higher)
    if measurement == "size":
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
    absolute amounts for scores in [0, 1] (f1, accuracy, mcc, precision, recall). `alpha` is the
    significance level, not a threshold.
    """
    base = default_policy(measurement, metric)
    thresholds = thresholds or {}
    if metric in thresholds:
        return Policy(float(thresholds[metric]), base.relative, base.higher_is_better, True)
    if measurement in thresholds:
        return Policy(float(thresholds[measurement]), base.relative, base.higher_is_better,
                      base.counts)
    return base


@dataclass
class Comparison:
    """The compared rows (tidy, one per key) and the overall verdict."""

    rows: pd.DataFrame
    regressed: bool
    alpha: float = ALPHA
    missing_targets: list[str] = field(default_factory=list)   # in this run, not in the baseline
    absent_targets: list[str] = field(default_factory=list)    # in the baseline, not in this run
    environment_diffs: dict[str, dict[str, tuple[Any, Any]]] = field(default_factory=dict)

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


def _prepare(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    for column in KEY_COLUMNS + ["status", "artifact_sha256", "runtime_version", "unit",
                                 "error_kind", "message", "valid", "hint", "n", "value"]:
        if column not in frame.columns:
            frame[column] = None
    frame = frame.reset_index(drop=True)
    frame["_key"] = [tuple(_norm(v) for v in row)
                     for row in frame[KEY_COLUMNS].itertuples(index=False)]
    frame["_status"] = [_norm(s) or "ok" for s in frame["status"]]
    return frame


def row_key(record: dict[str, Any]) -> tuple[str, ...]:
    """The normalized pairing key of a row (a dict): the keys of `noise` dicts."""
    return tuple(_norm(record.get(c)) for c in KEY_COLUMNS)


def _series_key(record: dict[str, Any]) -> tuple[str, ...]:
    return tuple(_norm(record.get(c)) for c in SERIES_KEYS)


def _index_samples(samples: Iterable[dict[str, Any]]
                   ) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    index: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for series in samples or []:
        index.setdefault(_series_key(series), []).append(series)
    return index


def _samples_for(index: dict, key: tuple[str, ...], memo: dict[int, list[float]]
                 ) -> list[float] | None:
    """Raw samples behind a row: the series with the row's metric, else the only series of its
    (target, model, variant, runtime, threads, measurement)."""
    series = index.get(tuple(key[:6]))
    if not series:
        return None
    metric = key[6]
    exact = [s for s in series if _norm(s.get("metric")) == metric]
    chosen = exact[0] if exact else (series[0] if len(series) == 1 else None)
    if chosen is None:
        return None
    if id(chosen) not in memo:
        memo[id(chosen)] = [float(v) for v in chosen.get("samples") or [] if v is not None]
    return memo[id(chosen)] or None


def fingerprint(environment: dict[str, Any] | None) -> dict[str, Any]:
    """The environment keys a comparison depends on: runtime and version, CPU model, governor, OS.

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

    The harness version is recorded but not compared: a new harness does not make numbers
    incomparable (a changed runner shows up as a changed measurement, which is the point).
    """
    diffs = {}
    base_fp, cur_fp = fingerprint(baseline_env), fingerprint(current_env)
    for k in FINGERPRINT_KEYS:
        a = base_fp.get(k)
        b = cur_fp.get(k)
        if a not in (None, "") and b not in (None, "") and str(a) != str(b):
            diffs[k] = (a, b)
    return diffs


def _fmt_diffs(diffs: dict[str, tuple[Any, Any]]) -> str:
    return ", ".join(f"{k} {a} -> {b}" for k, (a, b) in diffs.items())


def _covers(failure_key: tuple[str, ...], row_key: tuple[str, ...]) -> int:
    """How specifically a failure row (its series key) covers a row: -1 if it does not."""
    score = 0
    for i, (f, r) in enumerate(zip(failure_key[:6], row_key[:6])):
        if i == 5:
            # a failed job measures nothing of its artifact: the failure covers every measurement
            continue
        if f == "":
            continue
        if f != r:
            return -1
        score += 1
    return score


def _pct(x: float) -> str:
    return f"{x * 100:+.1f} %"


NOISE_CONFIDENCE = 0.90


def _sd_upper_factor(n: int, confidence: float = NOISE_CONFIDENCE) -> float:
    """sd x this = the one-sided upper confidence bound of the sd from n values (chi-square):
    an sd from 4 runs may well be half the true one, from 30 runs it is close."""
    from scipy.stats import chi2

    return math.sqrt((n - 1) / chi2.ppf(1 - confidence, n - 1))


def series_noise(history: pd.DataFrame, min_runs: int = NOISE_MIN_RUNS) -> dict[tuple, float]:
    """Run-to-run noise per row key from past runs: {normalized key: sd of log(value)}.

    `history` is a long frame of several runs (History.trend, or concatenated run frames) with
    the key columns, `value` and `status`. The plain sd on purpose, not a robust one: on a shared
    machine the noise is a mixture of quiet and contended runs, and a robust estimate (MAD) sees
    only the quiet ones and lets the verdict cry wolf (measured: 23 % false alarms with MAD, 0 %
    with the sd, bench/compare_validation.py), and raised to its 90 % upper confidence bound for
    the number of runs (x2.3 for 4 runs, x1.5 for 10) because an sd from a few runs is often far
    too small. Keys with fewer than `min_runs` positive ok values are left out.
    """
    if history is None or history.empty:
        return {}
    data = _prepare(history)
    data = data[(data["_status"] == "ok")]
    values = pd.to_numeric(data["value"], errors="coerce")
    data = data.assign(_v=values)[values > 0]
    out: dict[tuple, float] = {}
    for key, group in data.groupby("_key"):
        logs = np.log(group["_v"].to_numpy(dtype=float))
        if logs.size >= min_runs:
            out[key] = float(np.std(logs, ddof=1)) * _sd_upper_factor(logs.size)
    return out


def _test(base_samples: list[float], cur_samples: list[float],
          cache: dict[tuple[int, int], tuple[float, float]] | None) -> tuple[float, float]:
    """Mann-Whitney p and Hodges-Lehmann relative shift; the rows of one series (median, p90,
    p99, ...) share the same sample lists, so the result is computed once per pair of lists."""
    key = (id(base_samples), id(cur_samples))
    if cache is not None and key in cache:
        return cache[key]
    result = (stats.mann_whitney(base_samples, cur_samples),
              stats.relative_shift(base_samples, cur_samples))
    if cache is not None:
        cache[key] = result
    return result


def _judge(base: pd.Series, cur: pd.Series, policy: Policy, base_samples: list[float] | None,
           cur_samples: list[float] | None, alpha: float,
           noise: float | None = None, cache: dict | None = None) -> dict[str, Any]:
    """Mark one pair of ok rows with equal artifacts and environments.

    `noise` is the known run-to-run sd of log(value) of this key (from the history); with it the
    decision point is raised to where no change is flagged at most 2 % of the time, and the
    reason says the comparison cannot resolve the threshold.
    """
    b, c = float(base["value"]), float(cur["value"])
    out: dict[str, Any] = {"change": c - b, "threshold": policy.threshold,
                           "relative": policy.relative}
    out["change_pct"] = (c - b) / abs(b) * 100 if b != 0 and not math.isnan(b) else math.nan
    if math.isnan(b) or math.isnan(c):
        if math.isnan(b) and math.isnan(c):
            return {**out, "mark": "~", "reason": "no value on either side"}
        return {**out, "mark": "x", "reason": "no value on one side"}
    sign = -1.0 if policy.higher_is_better else 1.0
    if policy.relative:
        worse = sign * (c - b) / abs(b) if b != 0 else (0.0 if c == b else sign * math.inf)
        limit_text = _pct(sign * policy.threshold)
    else:
        worse = sign * (c - b)
        limit_text = f"{sign * policy.threshold:+g}"
    floor = None
    if noise is not None and policy.relative and noise > 0:
        floor = math.expm1(Z_FALSE_ALARM * math.sqrt(2) * noise)
    noise_note = (f"; run-to-run noise +-{noise * 100:.1f} % (history) needs > {_pct(floor)}"
                  if floor is not None else "")
    tested = (base_samples is not None and cur_samples is not None
              and len(base_samples) >= MIN_TEST_SAMPLES and len(cur_samples) >= MIN_TEST_SAMPLES)
    if not tested:
        # deterministic metric: the threshold alone decides
        decision = max(policy.threshold, floor or 0.0)
        if worse > decision:
            return {**out, "mark": "+", "reason": f"beyond threshold {limit_text}{noise_note}"}
        if -worse > decision:
            return {**out, "mark": "-", "reason": f"better by more than the threshold {limit_text}"
                                                   f"{noise_note}"}
        return {**out, "mark": "~", "reason": f"within threshold {limit_text}{noise_note}"}
    p, shift = _test(base_samples, cur_samples, cache)
    out["p_value"] = p
    out["shift_pct"] = shift * 100
    # the judged amount: the HL shift for the verdict metric (the distribution's location),
    # the row's own value change for informational rows (p90, p99, ...)
    is_location = (str(cur["metric"]).startswith("median") or str(cur["metric"]).startswith("mean"))
    amount = sign * shift if (is_location and not math.isnan(shift)) else worse
    decision = max(DECISION_FRACTION * policy.threshold, floor or 0.0)
    significant = p < alpha
    if is_location and not math.isnan(shift):
        detail = f"HL shift {_pct(shift)}, p={p:.2g}"
    else:
        detail = f"{cur['metric']} {_pct(worse * sign)}, p={p:.2g}"
    if significant and amount > decision:
        return {**out, "mark": "+",
                "reason": f"{detail} < {alpha:g} and beyond decision point "
                          f"{_pct(sign * decision)} (threshold {limit_text}){noise_note}"}
    if significant and -amount > decision:
        return {**out, "mark": "-", "reason": f"{detail}: improved beyond {_pct(-sign * decision)}"
                                               f"{noise_note}"}
    why = "not significant" if not significant else f"within decision point {_pct(sign * decision)}"
    if floor is not None and floor > policy.threshold:
        why += f"; cannot resolve {limit_text}"
    return {**out, "mark": "~", "reason": f"{detail}: {why}{noise_note}"}


# --------------------------------------------------------------------------- main entry

def compare_runs(current: pd.DataFrame, current_samples: list[dict], baseline: pd.DataFrame,
                 baseline_samples: list[dict], thresholds: dict[str, float] | None,
                 current_env: dict[str, dict] | None, baseline_env: dict[str, dict] | None,
                 *, alpha: float | None = None, compare_changed_artifacts: bool = False,
                 noise: dict[tuple, float] | None = None) -> Comparison:
    """Pair the current run's rows with the baseline's and mark each pair.

    `thresholds` is the suite's `thresholds:` dict (see `policy_for`); its `alpha` key, or the
    `alpha` argument, sets the significance level. `*_env` map target name -> environment dict
    (run.json `environment`). With `compare_changed_artifacts`, rows whose artifact hash differs are
    compared anyway (the reason says so) instead of being marked `x`. `noise` (from
    `series_noise` over past runs, e.g. `History.noise`) raises the decision point of a key to
    beyond its known run-to-run noise, so a noisy device does not cry wolf.
    """
    thresholds = dict(thresholds or {})
    alpha = float(alpha if alpha is not None else thresholds.pop("alpha", ALPHA))
    thresholds.pop("alpha", None)
    cur = _prepare(current)
    base = _prepare(baseline)
    cur = cur[~cur["metric"].map(_norm).str.startswith(NOT_COMPARED_PREFIXES)]
    base = base[~base["metric"].map(_norm).str.startswith(NOT_COMPARED_PREFIXES)]
    cur_idx = _index_samples(current_samples)
    base_idx = _index_samples(baseline_samples)
    current_env = current_env or {}
    baseline_env = baseline_env or {}

    cur_targets = sorted({t for t in (_norm(v) for v in cur["target"]) if t})
    base_targets = sorted({t for t in (_norm(v) for v in base["target"]) if t})
    missing = [t for t in cur_targets if t not in base_targets]
    absent = [t for t in base_targets if t not in cur_targets]
    env_diffs = {t: d for t in cur_targets if t in base_targets
                 for d in [environment_diff(baseline_env.get(t), current_env.get(t))] if d}

    cur_ok = cur[cur["_status"] == "ok"]
    cur_fail = cur[cur["_status"] != "ok"]
    # rows without a target (controller-side: quantization statistics) pair like any other
    base_ok = base[(base["_status"] == "ok") & base["target"].map(_norm).isin(cur_targets + [""])]
    base_fail = base[(base["_status"] != "ok") & base["target"].map(_norm).isin(cur_targets + [""])]
    base_by_key = {k: row for k, row in zip(base_ok["_key"], (r for _, r in base_ok.iterrows()))}
    cur_by_key = {k: row for k, row in zip(cur_ok["_key"], (r for _, r in cur_ok.iterrows()))}

    out: list[dict[str, Any]] = []
    memo: dict[int, list[float]] = {}
    test_cache: dict[tuple[int, int], tuple[float, float]] = {}

    def emit(key: tuple[str, ...], mark: str, reason: str, b: pd.Series | None = None,
             c: pd.Series | None = None, policy: Policy | None = None, **extra: Any) -> None:
        rec: dict[str, Any] = dict(zip(KEY_COLUMNS, key))
        rec["threads"] = key[4]
        src = c if c is not None else b
        rec.update(mark=mark, reason=reason, counts=bool(policy.counts) if policy else False,
                   baseline_value=float(b["value"]) if b is not None and b["value"] is not None
                   and not pd.isna(b["value"]) else math.nan,
                   value=float(c["value"]) if c is not None and c["value"] is not None
                   and not pd.isna(c["value"]) else math.nan,
                   unit=_norm(src["unit"]) if src is not None else "",
                   n_baseline=b["n"] if b is not None else None,
                   n=c["n"] if c is not None else None,
                   baseline_artifact_sha256=_norm(b["artifact_sha256"]) if b is not None else "",
                   artifact_sha256=_norm(c["artifact_sha256"]) if c is not None else "",
                   status=_norm(c["status"]) if c is not None else "",
                   error_kind=_norm(c["error_kind"]) if c is not None else "",
                   valid=c["valid"] if c is not None else None)
        rec.update(extra)
        out.append(rec)

    # --- current failures: newly failing, still failing, or new
    covered_base: set[tuple[str, ...]] = set()
    fail_keys = list(cur_fail["_key"])
    for key, (_, frow) in zip(fail_keys, cur_fail.iterrows()):
        target = key[0]
        why = f"{_norm(frow['error_kind']) or 'failed'}: {_norm(frow['message'])}".rstrip(": ")
        if target in missing:
            emit(key, "x", f"failed; target {target} not in baseline ({why})", c=frow,
                 error_kind=_norm(frow["error_kind"]))
            continue
        hits = []
        for bkey in base_by_key:
            score = _covers(key, bkey)
            if score >= 0:
                # the most specific current failure claims the row
                best = max(_covers(k, bkey) for k in fail_keys)
                if score == best:
                    hits.append(bkey)
        was_failing = [bk for bk in base_fail["_key"]
                       if _covers(key, bk) >= 0 or _covers(bk, key) >= 0]
        if hits:
            covered_base.update(hits)
            counted = [policy_for(bk[5], bk[6], thresholds).counts for bk in hits]
            emit(key, "!", f"{why} (ok in baseline: {len(hits)} rows)", c=frow,
                 policy=Policy(0.0, counts=any(counted)), n_baseline=len(hits),
                 error_kind=_norm(frow["error_kind"]))
        elif was_failing:
            emit(key, "~", f"still failing: {why}", c=frow, error_kind=_norm(frow["error_kind"]))
        else:
            emit(key, "x", f"failed; not in baseline ({why})", c=frow,
                 error_kind=_norm(frow["error_kind"]))

    # --- baseline failures fixed now
    fixed_cur: set[tuple[str, ...]] = set()
    for key, (_, brow) in zip(base_fail["_key"], base_fail.iterrows()):
        if any(_covers(key, ck) >= 0 or _covers(ck, key) >= 0 for ck in cur_fail["_key"]):
            continue  # still failing: reported above
        hits = [ck for ck in cur_by_key if _covers(key, ck) >= 0 and ck not in base_by_key]
        if hits:
            fixed_cur.update(hits)
            emit(key, "*", f"fixed: was {_norm(brow['error_kind']) or 'failed'} in baseline "
                           f"({len(hits)} rows ok now)", b=brow, n=len(hits))

    # --- ok rows on both sides, or on one side
    new_rows: dict[str, int] = {}
    for key, crow in cur_by_key.items():
        if key in fixed_cur:
            continue
        target = key[0]
        policy = policy_for(key[5], key[6], thresholds)
        if target in missing:
            new_rows[target] = new_rows.get(target, 0) + 1
            continue
        brow = base_by_key.get(key)
        if brow is None:
            emit(key, "x", "not in baseline", c=crow, policy=policy, counts=False)
            continue
        if target in env_diffs:
            emit(key, "x", f"environment differs: {_fmt_diffs(env_diffs[target])}", b=brow, c=crow,
                 policy=policy, counts=False)
            continue
        notes = []
        ba, ca = _norm(brow["artifact_sha256"]), _norm(crow["artifact_sha256"])
        if ba and ca and ba != ca:
            text = f"artifact_sha256 differs: {ba[:12]} -> {ca[:12]}"
            if not compare_changed_artifacts:
                emit(key, "x", text, b=brow, c=crow, policy=policy, counts=False)
                continue
            notes.append(text)
        bv, cv = _norm(brow["runtime_version"]), _norm(crow["runtime_version"])
        if bv and cv and bv != cv:
            emit(key, "x", f"runtime_version differs: {bv} -> {cv}", b=brow, c=crow,
                 policy=policy, counts=False)
            continue
        verdict = _judge(brow, crow, policy, _samples_for(base_idx, key, memo),
                         _samples_for(cur_idx, key, memo), alpha, (noise or {}).get(key),
                         test_cache)
        reason = verdict.pop("reason")
        if not policy.counts:
            reason += " (informational)"
        untrusted = False
        for side, row in (("baseline", brow), ("this run", crow)):
            if row["valid"] is False or _norm(row["valid"]).lower() in ("false", "0"):
                untrusted = True
                reason += f"; {side} not trustworthy: {_norm(row.get('hint')) or 'see validity'}"
        if notes:
            reason += "; " + "; ".join(notes)
        mark = verdict.pop("mark")
        if untrusted and mark in "+-":  # a change seen through an untrustworthy measurement
            mark, verdict["counts"] = "x", False
            reason = "not comparable: " + reason
        emit(key, mark, reason, b=brow, c=crow, policy=policy, **verdict)

    for target, count in new_rows.items():
        emit((target, "", "", "", "", "", "", ""), "x",
             f"target {target} not in baseline ({count} rows, nothing to compare with)")
    for key, brow in base_by_key.items():
        if key in cur_by_key or key in covered_base:
            continue
        policy = policy_for(key[5], key[6], thresholds)
        emit(key, "x", "in baseline, missing from this run", b=brow, policy=policy, counts=False)

    rows = pd.DataFrame(out)
    for column in OUTPUT_COLUMNS:
        if column not in rows.columns:
            rows[column] = None
    rows = rows[OUTPUT_COLUMNS]
    if len(rows):
        order = {m: i for i, m in enumerate("!+*-x~")}
        rows["_o"] = rows["mark"].map(order)
        rows = rows.sort_values(["_o"] + KEY_COLUMNS, kind="stable").drop(columns="_o")
        rows = rows.reset_index(drop=True)
    rows["counts"] = rows["counts"].astype(bool)
    rows["threads"] = pd.to_numeric(rows["threads"].replace("", None),
                                    errors="coerce").astype("Int64")
    for column in KEY_COLUMNS:
        if column != "threads":
            rows[column] = rows[column].replace("", None)
    for column in ("baseline_value", "value", "change", "change_pct", "shift_pct", "p_value",
                   "threshold"):
        rows[column] = pd.to_numeric(rows[column], errors="coerce")
    regressed = bool(((rows["mark"].isin(["+", "!"])) & rows["counts"]).any())
    return Comparison(rows=rows, regressed=regressed, alpha=alpha, missing_targets=missing,
                      absent_targets=absent, environment_diffs=env_diffs)
