"""Pure statistics over raw samples: no I/O, no state. Computed once, stored in the tidy table."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

# A latency distribution is trusted when it has at least this many samples and its spread is small.
MIN_SAMPLES = 20
MAX_REL_IQR = 0.10
MAD_OUTLIER_Z = 3.5


@dataclass(frozen=True)
class Summary:
    """Summary statistics of one sample set."""

    n: int
    median: float
    mean: float
    p90: float
    p99: float
    iqr: float
    min: float
    max: float
    ci_low: float
    ci_high: float
    outliers: int

    @property
    def rel_iqr(self) -> float:
        return self.iqr / self.median if self.median else math.inf


def quantile(samples: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile (numpy's default), NaN for no samples."""
    if len(samples) == 0:
        return math.nan
    return float(np.quantile(np.asarray(samples, dtype=float), q))


def iqr(samples: Sequence[float]) -> float:
    """Interquartile range."""
    return quantile(samples, 0.75) - quantile(samples, 0.25)


def mad_outliers(samples: Sequence[float], z: float = MAD_OUTLIER_Z) -> np.ndarray:
    """Boolean mask of outliers by the modified z-score (median absolute deviation)."""
    x = np.asarray(samples, dtype=float)
    if x.size == 0:
        return np.zeros(0, dtype=bool)
    med = np.median(x)
    mad = np.median(np.abs(x - med))
    if mad == 0:
        return np.zeros(x.size, dtype=bool)
    return np.abs(0.6745 * (x - med) / mad) > z


def median_ci(samples: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free confidence interval of the median from order statistics (binomial)."""
    x = np.sort(np.asarray(samples, dtype=float))
    n = x.size
    if n == 0:
        return math.nan, math.nan
    if n < 6:
        return float(x[0]), float(x[-1])
    from scipy.stats import binom

    alpha = 1 - confidence
    lo = int(binom.ppf(alpha / 2, n, 0.5))
    hi = int(binom.isf(alpha / 2, n, 0.5))
    return float(x[max(lo - 1, 0)]), float(x[min(hi, n - 1)])


def summarize(samples: Sequence[float]) -> Summary:
    """Median, mean, p90, p99, IQR, range, CI of the median and MAD outlier count."""
    x = np.asarray(samples, dtype=float)
    if x.size == 0:
        nan = math.nan
        return Summary(0, nan, nan, nan, nan, nan, nan, nan, nan, nan, 0)
    lo, hi = median_ci(x)
    return Summary(
        n=int(x.size), median=float(np.median(x)), mean=float(x.mean()),
        p90=quantile(x, 0.90), p99=quantile(x, 0.99), iqr=iqr(x),
        min=float(x.min()), max=float(x.max()), ci_low=lo, ci_high=hi,
        outliers=int(mad_outliers(x).sum()),
    )


def validity(summary: Summary, governor: str | None = None) -> tuple[bool, str | None]:
    """Whether a latency distribution is trustworthy, and if not what to change."""
    problems = []
    if summary.n < MIN_SAMPLES:
        problems.append(f"only {summary.n} samples (< {MIN_SAMPLES}): raise runs or min_seconds")
    if summary.n and summary.rel_iqr > MAX_REL_IQR:
        problems.append(f"spread IQR/median {summary.rel_iqr:.0%} > {MAX_REL_IQR:.0%}: "
                        "close other load, pin the CPU governor to performance, raise runs")
    if governor == "powersave":
        problems.append("CPU governor is powersave: set it to performance")
    return (not problems, "; ".join(problems) or None)


def mann_whitney(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided Mann-Whitney U p-value (NaN when either side is empty)."""
    if len(a) == 0 or len(b) == 0:
        return math.nan
    from scipy.stats import mannwhitneyu

    return float(mannwhitneyu(a, b, alternative="two-sided").pvalue)


def hodges_lehmann(baseline: Sequence[float], current: Sequence[float]) -> float:
    """Hodges-Lehmann shift estimate: the median of all pairwise differences current - baseline.

    The estimator that goes with the Mann-Whitney test; NaN when either side is empty.
    """
    a = np.asarray(baseline, dtype=float)
    b = np.asarray(current, dtype=float)
    if a.size == 0 or b.size == 0:
        return math.nan
    return float(np.median(np.subtract.outer(b, a)))


def relative_shift(baseline: Sequence[float], current: Sequence[float]) -> float:
    """Relative shift current/baseline - 1, as the Hodges-Lehmann estimate on the log scale.

    Multiplicative, so a 10 % slowdown of every sample gives exactly 0.10. Samples must be positive;
    NaN when either side is empty or holds a non-positive value.
    """
    a = np.asarray(baseline, dtype=float)
    b = np.asarray(current, dtype=float)
    if a.size == 0 or b.size == 0 or (a <= 0).any() or (b <= 0).any():
        return math.nan
    return math.expm1(hodges_lehmann(np.log(a), np.log(b)))


def thin(samples: Sequence[float], limit: int) -> list[float]:
    """At most `limit` samples, picked evenly spaced in time order (first and last kept).

    Deterministic; keeps the time order and, as a systematic sample, the shape of the
    distribution.
    """
    x = np.asarray(samples, dtype=float)
    if x.size <= limit:
        return [float(v) for v in x]
    if limit <= 0:
        return []
    if limit == 1:
        return [float(x[x.size // 2])]
    idx = np.round(np.linspace(0, x.size - 1, limit)).astype(int)
    return [float(v) for v in x[idx]]
