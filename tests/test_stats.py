"""harness.stats on vectors whose answers can be worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness import stats


def test_quantiles_and_iqr_interpolate_linearly():
    x = [1, 2, 3, 4]
    assert stats.quantile(x, 0.5) == 2.5
    assert stats.quantile(x, 0.25) == 1.75          # 1 + 0.25 * 3 steps
    assert stats.quantile(x, 0.75) == 3.25
    assert stats.iqr(x) == 1.5
    assert math.isnan(stats.quantile([], 0.5))


def test_summarize_one_to_ten():
    s = stats.summarize(range(1, 11))
    assert (s.n, s.median, s.mean, s.min, s.max) == (10, 5.5, 5.5, 1, 10)
    assert s.p90 == pytest.approx(9.1)              # 1 + 0.9 * 9
    assert s.p99 == pytest.approx(9.91)
    assert s.iqr == pytest.approx(4.5)              # 7.75 - 3.25
    assert s.rel_iqr == pytest.approx(4.5 / 5.5)
    assert s.outliers == 0


def test_summarize_empty_is_nan_not_an_error():
    s = stats.summarize([])
    assert s.n == 0 and math.isnan(s.median) and s.outliers == 0


def test_mad_outliers_modified_z_score():
    # median 3, |deviations| 2 1 0 1 97 -> MAD 1; z = 0.6745 * 97 = 65 for 100, 1.35 for 1
    assert stats.mad_outliers([1, 2, 3, 4, 100]).tolist() == [False, False, False, False, True]
    # MAD 0: nothing can be called an outlier
    assert not stats.mad_outliers([5, 5, 5, 5, 9]).any()
    assert stats.mad_outliers([]).size == 0
    assert stats.summarize([1, 2, 3, 4, 100]).outliers == 1


def test_median_ci_matches_the_binomial_table():
    # n = 20, 95 %: the order statistics x(6) and x(15) (coverage 95.9 %, the textbook table value)
    x = np.arange(1, 21)
    assert stats.median_ci(x) == (6.0, 15.0)
    # shuffled input gives the same interval
    assert stats.median_ci(np.random.default_rng(1).permutation(x)) == (6.0, 15.0)
    # fewer than 6 samples: the range
    assert stats.median_ci([3, 1, 2]) == (1.0, 3.0)
    lo, hi = stats.median_ci([])
    assert math.isnan(lo) and math.isnan(hi)


def test_mann_whitney_exact_small_samples():
    # complete separation of 3 vs 3: U = 0, exact two-sided p = 2 / C(6, 3) = 0.1
    assert stats.mann_whitney([1, 2, 3], [4, 5, 6]) == pytest.approx(0.1)
    # 5 vs 5: 2 / C(10, 5) = 2 / 252
    assert stats.mann_whitney([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]) == pytest.approx(2 / 252)
    # identical samples: no evidence at all
    assert stats.mann_whitney([1, 2, 3, 4], [1, 2, 3, 4]) == pytest.approx(1.0)
    assert math.isnan(stats.mann_whitney([], [1.0]))


def test_mann_whitney_textbook_example():
    # Two groups of 4 with one overlap: a = 1 2 4 5, b = 3 6 7 8. Ranks of a: 1 2 4 5 -> R = 12,
    # U_a = 12 - 4*5/2 = 2. Of the C(8, 4) = 70 equally likely rank sets, U = 0, 1, 2 happen
    # 1, 1 and 2 times (partitions of U into at most 4 parts of at most 4): P(U <= 2) = 4 / 70,
    # two-sided p = 8 / 70.
    p = stats.mann_whitney([1, 2, 4, 5], [3, 6, 7, 8])
    assert p == pytest.approx(8 / 70)


def test_hodges_lehmann_is_the_median_of_pairwise_differences():
    # differences current - baseline: 1 0 -1 / 2 1 0 / 3 2 1 -> median 1
    assert stats.hodges_lehmann([1, 2, 3], [2, 3, 4]) == 1.0
    assert math.isnan(stats.hodges_lehmann([], [1.0]))


def test_relative_shift_is_multiplicative():
    x = np.array([3.1, 3.3, 3.2, 3.6, 3.4, 5.0])
    assert stats.relative_shift(x, x * 1.10) == pytest.approx(0.10)
    assert stats.relative_shift(x, x * 0.80) == pytest.approx(-0.20)
    assert stats.relative_shift(x, x) == 0.0
    assert math.isnan(stats.relative_shift([0.0, 1.0], [1.0]))


def test_thin_keeps_time_order_and_the_ends():
    assert stats.thin(list(range(10)), 4) == [0, 3, 6, 9]
    assert stats.thin([5, 1, 3], 200) == [5, 1, 3]
    thinned = stats.thin(list(range(1000)), 200)
    assert len(thinned) == 200 and thinned[0] == 0 and thinned[-1] == 999
    assert thinned == sorted(thinned)
    assert stats.thin([1, 2, 3], 0) == []


def test_validity_names_what_to_change():
    ok, hint = stats.validity(stats.summarize([10.0] * 30))
    assert ok and hint is None
    ok, hint = stats.validity(stats.summarize([10.0] * 10))
    assert not ok and "only 10 samples" in hint
    spread = stats.summarize([8.0] * 10 + [10.0] * 10 + [12.0] * 10)
    ok, hint = stats.validity(spread)
    assert not ok and "spread" in hint and "governor" in hint
    ok, hint = stats.validity(stats.summarize([10.0] * 30), governor="powersave")
    assert not ok and "powersave" in hint
