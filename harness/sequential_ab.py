"""Sequential A/B latency decision on paired fresh-process summaries: REGRESSED / SAME / UNKNOWN.

Pure (numpy + scipy), no I/O. The driver re-measures the baseline's artifact (A) and
tonight's artifact (B) on one target in rounds of fresh runner processes, A and B in random order,
and feeds one pair of summaries per round (each a process's median latency):

    state = SequentialAB(threshold=0.10, alpha=0.015, looks=(6, 10, 15, 20, 30, 40, 50), rows=n_rows)
    while state.decision() is None:
        state.add(a_median, b_median)          # one round: a fresh A process and a fresh B process
    result = state.result()                    # decision, ratio, CI, pairs, looks used, p-value

Why pairs of fresh processes: samples within one process are not independent evidence (they share
the process's memory layout, frequency and cache state; measured here: fresh processes differ by
~13 % while samples within one process hardly differ), so the unit of evidence is one process and
A and B are paired by round to cancel slow drift of the machine.

The statistic: d_i = log(b_i / a_i), the paired log-ratio. Its mean estimates the log of the
geometric-mean ratio B/A; a Student t-interval on the mean of d (scipy.stats.t) gives the CI for
small n. The t-interval is robust enough here: a heavy tail (a contended round) inflates the sd
and so widens the interval - it costs pairs, not false alarms.

Decision at a look with n pairs, one-sided level `level` (below), estimate r = exp(mean d) and the
interval [lo, hi] = exp(mean d -+ t_{1-level, n-1} * sd / sqrt(n)):

    REGRESSED  lo > 1 and r >= 1 + threshold / 2    (significantly slower, and by a relevant amount)
    IMPROVED   hi < 1 and r <= 1 / (1 + threshold / 2)            (optional, the mirror image)
    SAME       hi < 1 + threshold                   (a change of the threshold's size is ruled out)
    UNKNOWN    the last look passed without any of these (the budget is spent)

False alarms across looks: the overall alpha is split equally over the planned looks (Bonferroni;
the equal split is Pocock-like), level = alpha / (rows * len(looks)). Chosen over an exact
Lan-DeMets / O'Brien-Fleming boundary because (1) the union bound holds whatever the correlation
between looks and needs no normal-increments / known-variance assumption, which a t-statistic from
6 pairs does not meet, and (2) an O'Brien-Fleming spending gives almost no alpha to the first looks,
so a gross regression could not stop after 6 pairs. The price is conservatism (looks are positively
correlated, so the true false-alarm rate is below alpha). The same level guards SAME: a true change
of exactly the threshold is called SAME with probability at most alpha.

False alarms across rows: with `rows=R` each row stops at alpha / R (Bonferroni), and `decide_rows`
applies Holm's step-down to the rows' look-adjusted p-values once every row has finished, which can
upgrade an UNKNOWN row to REGRESSED (never the reverse). Holm is valid under any dependence between
rows.

The default alpha is 0.015, a margin below the 2 % target: Bonferroni bounds the false-REGRESSED
rate by alpha only for independent, normal log-ratios, and real rounds are neither exactly.
Monte Carlo (tests/test_sequential_ab.py, 2000 trials; lognormal per-process medians, A-B
correlation 0.19, as measured for fresh-process pairs of the float NILM CNN on the development
machine):

    paired log-ratio sd   looks                    A/A REGRESSED   +10 % REGRESSED   +10 % UNKNOWN
    0.095 (measured)      6/10/15/20/30            1.2 %           98.6 %            0.5 %
    0.095 (measured)      6/10/15/20/30/40/50      0.6 %           99.3 %            0.0 %
    0.12                  6/10/15/20/30            1.5 %           91 %              7.7 %
    0.12                  6/10/15/20/30/40/50      1.0 %           99.0 %            0.1 %
    0.15                  6/10/15/20/30/40/50      1.1 %           94 %              5.2 %

The default is the longer schedule: on the 2-core development VM the per-trial sd of real A/A
rounds ranged 0.02-0.16 (median 0.091), and the 30-pair budget left 8 % of real +10 % trials
UNKNOWN (52 of 56 REGRESSED; bench/ab_validation.py). A clear case still stops at 6-15 pairs.

A noisier device runs out of budget as UNKNOWN, never as a false SAME: give it more looks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from typing import Hashable, Iterable, Mapping, Sequence

import numpy as np
from scipy import special

DEFAULT_THRESHOLD = 0.10
DEFAULT_ALPHA = 0.015
DEFAULT_LOOKS = (6, 10, 15, 20, 30, 40, 50)
MIN_PAIRS = 3            # a t-interval needs a spread: fewer pairs than this is no look


class Decision(str, Enum):
    """The outcome of a sequential A/B comparison of one row."""

    REGRESSED = "REGRESSED"
    IMPROVED = "IMPROVED"
    SAME = "SAME"
    UNKNOWN = "UNKNOWN"


@dataclass(frozen=True)
class ABResult:
    """Where one row's A/B comparison stands (decision None: more pairs are needed)."""

    decision: Decision | None
    ratio: float               # geometric mean of B/A (NaN before any pair)
    ci_low: float              # the interval of the ratio at the last look's level
    ci_high: float
    confidence: float          # two-sided coverage of [ci_low, ci_high]
    pairs: int
    looks_used: int
    p_value: float             # one-sided "B slower than A", adjusted for the looks (not rows)
    threshold: float

    def describe(self) -> str:
        """One line for a report: 'A/B REGRESSED: ratio 1.12 [1.06, 1.19] (99.2 % CI), 15 pairs'."""
        state = self.decision.value if self.decision is not None else "pending"
        if self.pairs == 0 or math.isnan(self.ratio):
            return f"A/B {state}: no pairs"
        ci = (f" [{self.ci_low:.3f}, {self.ci_high:.3f}] ({self.confidence * 100:.1f} % CI)"
              if not math.isnan(self.ci_low) else "")
        return (f"A/B {state}: ratio B/A {self.ratio:.3f}{ci}, {self.pairs} pairs, "
                f"{self.looks_used} looks, p={self.p_value:.2g}")


@lru_cache(maxsize=4096)
def _t_quantile(level: float, df: int) -> float:
    """The one-sided critical value t_{1-level, df} (cached: the Monte Carlo calls it often)."""
    return float(-special.stdtrit(df, level))   # = t.isf(level, df), without scipy.stats


def _positive(value: float, name: str) -> float:
    x = float(value)
    if not math.isfinite(x) or x <= 0:
        raise ValueError(f"{name} must be a positive, finite latency, got {value!r}")
    return x


class SequentialAB:
    """Sequential decision for one row from pairs (a, b) of fresh-process latency summaries.

    `threshold`: the relative slowdown that must be caught (0.10 = +10 %). `alpha`: the overall
    false-REGRESSED rate across every look (and, with `rows`, across that many rows). `looks`: the
    numbers of pairs after which a decision is attempted, increasing; the last one is the budget.
    `improved`: also decide IMPROVED (else a big improvement is SAME).
    """

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, alpha: float = DEFAULT_ALPHA,
                 looks: Sequence[int] = DEFAULT_LOOKS, *, rows: int = 1,
                 improved: bool = True) -> None:
        looks = tuple(int(n) for n in looks)
        if not looks or any(n < MIN_PAIRS for n in looks) or list(looks) != sorted(set(looks)):
            raise ValueError(f"looks must be strictly increasing pair counts >= {MIN_PAIRS}, "
                             f"got {looks}")
        if not 0 < threshold < 1:
            raise ValueError(f"threshold must be a fraction in (0, 1), got {threshold}")
        if not 0 < alpha < 0.5:
            raise ValueError(f"alpha must be in (0, 0.5), got {alpha}")
        if rows < 1:
            raise ValueError(f"rows must be >= 1, got {rows}")
        self.threshold = float(threshold)
        self.alpha = float(alpha)
        self.looks = looks
        self.rows = int(rows)
        self.improved = improved
        self._logs: list[float] = []
        self._looks_used = 0
        self._decision: Decision | None = None
        self._min_p = 1.0          # smallest per-look one-sided p-value seen at a look
        self._last: tuple[float, float, float] = (math.nan, math.nan, math.nan)  # mean, lo, hi

    # ------------------------------------------------------------------ the driver's side

    @property
    def budget(self) -> int:
        """The most pairs this row may take."""
        return self.looks[-1]

    @property
    def pairs(self) -> int:
        return len(self._logs)

    @property
    def level(self) -> float:
        """The one-sided level of every look (alpha split over the looks and the rows)."""
        return self.alpha / (self.rows * len(self.looks))

    @property
    def next_look(self) -> int | None:
        """The pair count of the next look (None once decided)."""
        if self._decision is not None:
            return None
        return self.looks[min(self._looks_used, len(self.looks) - 1)]

    @property
    def finished(self) -> bool:
        return self._decision is not None

    def add(self, a: float, b: float) -> None:
        """One round: A's and B's fresh-process summary (e.g. median latency; positive)."""
        if self._decision is not None:
            raise ValueError(f"already decided ({self._decision.value}): no more pairs needed")
        if self.pairs >= self.budget:
            raise ValueError(f"the budget of {self.budget} pairs is spent")
        self._logs.append(math.log(_positive(b, "b") / _positive(a, "a")))

    def extend(self, pairs: Iterable[tuple[float, float]]) -> None:
        """Several rounds at once (the next `decision()` looks at all of them)."""
        for a, b in pairs:
            self.add(a, b)

    def decision(self) -> Decision | None:
        """The decision, or None while more pairs are needed.

        A look happens when the pair count has reached the next planned look; looks passed while
        the driver added pairs in a batch are spent together (one test, their alpha forfeited:
        conservative). A decision is final.
        """
        if self._decision is not None:
            return self._decision
        due = sum(1 for n in self.looks[self._looks_used:] if n <= self.pairs)
        if due == 0:
            return None
        self._looks_used += due
        self._decision = self._look(final=self._looks_used >= len(self.looks))
        return self._decision

    # ------------------------------------------------------------------ the statistics

    def _look(self, final: bool) -> Decision | None:
        d = np.asarray(self._logs, dtype=float)
        n = d.size
        mean = float(d.mean())
        sd = float(d.std(ddof=1))
        se = sd / math.sqrt(n)
        t_crit = _t_quantile(self.level, n - 1)
        lo, hi = mean - t_crit * se, mean + t_crit * se
        if se > 0:
            p = float(special.stdtr(n - 1, -mean / se))     # the t survival function, fast
        else:   # every pair the same ratio
            p = 0.0 if mean > 0 else (1.0 if mean < 0 else 0.5)
        self._min_p = min(self._min_p, p)
        self._last = (mean, lo, hi)
        half = math.log1p(self.threshold / 2)
        if lo > 0 and mean >= half:
            return Decision.REGRESSED
        if self.improved and hi < 0 and mean <= -half:
            return Decision.IMPROVED
        if hi < math.log1p(self.threshold):
            return Decision.SAME
        return Decision.UNKNOWN if final else None

    @property
    def p_value(self) -> float:
        """One-sided p-value of "B is slower than A", Bonferroni-adjusted over the planned looks
        (min over the looks taken of len(looks) x p): valid for Holm across rows."""
        if self._looks_used == 0:
            return 1.0
        return min(1.0, len(self.looks) * self._min_p)

    def result(self, decision: Decision | None = None) -> ABResult:
        """The current standing (the CI is that of the last look; before any look, of all pairs)."""
        mean, lo, hi = self._last
        if self._looks_used == 0 and self.pairs >= 2:
            d = np.asarray(self._logs, dtype=float)
            mean = float(d.mean())
            half_width = _t_quantile(self.level, d.size - 1) * float(d.std(ddof=1)) / math.sqrt(
                d.size)
            lo, hi = mean - half_width, mean + half_width
        elif self._looks_used == 0 and self.pairs == 1:
            mean = self._logs[0]
        return ABResult(decision=decision if decision is not None else self._decision,
                        ratio=math.exp(mean) if not math.isnan(mean) else math.nan,
                        ci_low=math.exp(lo) if not math.isnan(lo) else math.nan,
                        ci_high=math.exp(hi) if not math.isnan(hi) else math.nan,
                        confidence=1 - 2 * self.level, pairs=self.pairs,
                        looks_used=self._looks_used, p_value=self.p_value,
                        threshold=self.threshold)


def decide_rows(states: Mapping[Hashable, SequentialAB],
                alpha: float | None = None) -> dict[Hashable, ABResult]:
    """Every row's result, with the false alarms controlled across the rows.

    Each state's own decision already holds its rows' share alpha / rows (construct them with
    `rows=len(states)`). Once every row has finished, Holm's step-down over the rows'
    look-adjusted p-values at `alpha` (default: the states' alpha) decides the rest: an UNKNOWN row
    whose p-value passes its Holm step and whose estimate is at least 1 + threshold / 2 becomes
    REGRESSED. While any row still needs pairs, pending rows are returned with decision None and
    nothing is upgraded (Holm needs every row's final p-value).
    """
    results = {key: state.result() for key, state in states.items()}
    if not states or any(not state.finished for state in states.values()):
        return results
    if alpha is None:
        alpha = min(state.alpha for state in states.values())
    ordered = sorted(states, key=lambda k: states[k].p_value)
    total = len(ordered)
    for rank, key in enumerate(ordered):
        state = states[key]
        if state.p_value > alpha / (total - rank):
            break
        r = results[key]
        if r.decision is Decision.UNKNOWN and r.ratio >= 1 + state.threshold / 2:
            results[key] = state.result(Decision.REGRESSED)
    return results
