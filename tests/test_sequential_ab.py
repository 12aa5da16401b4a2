"""harness.sequential_ab: exact decisions on constructed pairs, Holm across rows, and Monte Carlo
error rates of the default schedule (lognormal fresh-process medians, fixed seed)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from harness.sequential_ab import (DEFAULT_ALPHA, DEFAULT_LOOKS, ABResult, Decision,
                                   SequentialAB, decide_rows)

LEVEL = DEFAULT_ALPHA / len(DEFAULT_LOOKS)        # the default one-sided level of every look


def feed(state: SequentialAB, log_ratios, a: float = 0.042) -> Decision | None:
    """Add pairs (a, a * exp(d)) one at a time, asking for the decision after each (as the driver
    does); stops at a decision."""
    for d in log_ratios:
        state.add(a, a * math.exp(d))
        if state.decision() is not None:
            break
    return state.decision()


def t_bounds(d: list[float], level: float = LEVEL) -> tuple[float, float, float]:
    x = np.asarray(d)
    se = x.std(ddof=1) / math.sqrt(x.size)
    t = sps.t.ppf(1 - level, x.size - 1)
    return x.mean(), x.mean() - t * se, x.mean() + t * se


# --------------------------------------------------------------------------- exact decisions

def test_clear_regression_is_decided_at_the_first_look():
    d = [0.20, 0.25, 0.30, 0.20, 0.25, 0.30]
    state = SequentialAB()
    assert feed(state, d[:5]) is None and state.next_look == 6      # no look before 6 pairs
    assert feed(state, d[5:]) is Decision.REGRESSED
    mean, lo, hi = t_bounds(d)
    r = state.result()
    assert (r.pairs, r.looks_used) == (6, 1)
    assert r.ratio == pytest.approx(math.exp(0.25))
    assert r.ci_low == pytest.approx(math.exp(lo)) and r.ci_high == pytest.approx(math.exp(hi))
    assert r.ci_low > 1 and r.confidence == pytest.approx(1 - 2 * LEVEL)
    # the p-value is adjusted for the planned looks
    p = sps.t.sf(mean / (np.std(d, ddof=1) / math.sqrt(6)), 5)
    assert r.p_value == pytest.approx(len(DEFAULT_LOOKS) * p)
    assert "A/B REGRESSED: ratio B/A 1.284" in r.describe()
    with pytest.raises(ValueError, match="already decided"):
        state.add(1.0, 1.0)


def test_improvement_is_the_mirror_image():
    state = SequentialAB()
    assert feed(state, [-0.20, -0.25, -0.30, -0.20, -0.25, -0.30]) is Decision.IMPROVED
    # without IMPROVED, a big improvement is SAME
    assert feed(SequentialAB(improved=False), [-0.2, -0.25, -0.3] * 2) is Decision.SAME


def test_same_when_the_threshold_is_ruled_out():
    d = [0.01, -0.01] * 3
    state = SequentialAB()
    assert feed(state, d) is Decision.SAME
    _, _, hi = t_bounds(d)
    assert state.result().ci_high == pytest.approx(math.exp(hi)) and math.exp(hi) < 1.10


def test_significant_but_small_change_is_same_not_regressed():
    # +3 %, very tight: significantly slower, but below threshold / 2 = +5 %
    d = [0.029, 0.030, 0.031] * 2
    state = SequentialAB()
    assert feed(state, d) is Decision.SAME
    assert state.result().ci_low > 1 and state.result().ratio < 1.05


def test_unknown_when_the_budget_is_spent():
    budget = DEFAULT_LOOKS[-1]
    d = [0.30, -0.25] * (budget // 2)
    state = SequentialAB()
    assert feed(state, d) is Decision.UNKNOWN
    r = state.result()
    assert (r.pairs, r.looks_used) == (budget, len(DEFAULT_LOOKS))
    assert r.ci_low < 1 < 1.1 < r.ci_high
    with pytest.raises(ValueError):
        state.add(1.0, 1.0)


def test_looks_passed_in_a_batch_are_spent_together():
    state = SequentialAB()
    state.extend([(1.0, math.exp(d)) for d in [0.30, -0.25] * 6])       # 12 pairs: looks 6 and 10
    assert state.decision() is None and state.result().looks_used == 2
    assert state.next_look == 15


def test_same_ratio_every_time_has_no_spread():
    assert feed(SequentialAB(), [0.2] * 6) is Decision.REGRESSED
    assert feed(SequentialAB(), [0.0] * 6) is Decision.SAME


def test_rows_split_the_alpha():
    assert SequentialAB(rows=4).level == pytest.approx(DEFAULT_ALPHA / 4 / len(DEFAULT_LOOKS))
    # a regression that passes one row's level but not a quarter of it
    d = [0.074, 0.166, 0.097, 0.143, 0.051, 0.189]
    mean, lo, _ = t_bounds(d)
    _, lo4, _ = t_bounds(d, DEFAULT_ALPHA / 4 / len(DEFAULT_LOOKS))
    assert lo > 0 > lo4
    assert feed(SequentialAB(), d) is Decision.REGRESSED
    assert feed(SequentialAB(rows=4), d) is None


def test_invalid_arguments():
    for kwargs in ({"looks": (10, 6)}, {"looks": (2, 6)}, {"looks": ()}, {"threshold": 0},
                   {"alpha": 0.6}, {"rows": 0}):
        with pytest.raises(ValueError):
            SequentialAB(**kwargs)
    with pytest.raises(ValueError, match="positive"):
        SequentialAB().add(0.0, 1.0)
    with pytest.raises(ValueError, match="positive"):
        SequentialAB().add(1.0, float("nan"))


# --------------------------------------------------------------------------- across rows

def test_holm_upgrades_unknown_rows_once_all_have_finished():
    # three rows, each with alpha / 3 for its own stopping rule (on the 30-pair schedule)
    strong = [0.20, 0.25, 0.30] * 2                       # REGRESSED at its own level
    borderline = [0.145, -0.035] * 15                     # mean +5.6 %, wide: UNKNOWN
    flat = [0.01, -0.01] * 3                              # SAME
    states = {k: SequentialAB(rows=3, looks=SHORT) for k in ("strong", "borderline", "flat")}
    assert feed(states["strong"], strong) is Decision.REGRESSED
    assert feed(states["flat"], flat) is Decision.SAME
    feed(states["borderline"], borderline[:10])
    pending = decide_rows(states)
    assert pending["borderline"].decision is None               # not finished: no Holm yet
    assert feed(states["borderline"], borderline[10:]) is Decision.UNKNOWN
    ps = {k: s.p_value for k, s in states.items()}
    a = DEFAULT_ALPHA
    assert ps["strong"] <= a / 3 < ps["borderline"] <= a / 2            # Holm's second step
    decided = decide_rows(states)
    assert decided["strong"].decision is Decision.REGRESSED
    assert decided["borderline"].decision is Decision.REGRESSED
    assert decided["flat"].decision is Decision.SAME
    assert isinstance(decided["flat"], ABResult)
    # the same borderline row alone among rows that do not reject first is not upgraded
    alone = {"borderline": states["borderline"], "other": states["flat"],
             "third": SequentialAB(rows=3, looks=SHORT)}
    feed(alone["third"], [0.3, -0.25] * 15)
    assert decide_rows(alone)["borderline"].decision is Decision.UNKNOWN


# --------------------------------------------------------------------------- Monte Carlo

RHO = 0.19          # measured A-B correlation of fresh-process medians
SHORT = (6, 10, 15, 20, 30)    # the earlier default schedule, a 30-pair budget


def simulate(sd: float, slowdown: float, looks=DEFAULT_LOOKS, trials: int = 2000,
             seed: int = 20261122) -> tuple[dict[Decision, float], float]:
    """Decision rates and median pairs used over `trials` sequential A/B comparisons of
    lognormal per-process medians whose paired log-ratio has sd `sd`."""
    rng = np.random.default_rng(seed)
    process_sd = sd / math.sqrt(2 * (1 - RHO))
    cov = process_sd ** 2 * np.array([[1.0, RHO], [RHO, 1.0]])
    z = rng.multivariate_normal([0.0, 0.0], cov, size=(trials, looks[-1]))
    a = 42e-3 * np.exp(z[..., 0])
    b = 42e-3 * (1 + slowdown) * np.exp(z[..., 1])
    counts = {d: 0 for d in Decision}
    used = []
    for t in range(trials):
        state = SequentialAB(looks=looks)
        i = 0
        while state.decision() is None:
            state.add(a[t, i], b[t, i])
            i += 1
        counts[state.decision()] += 1
        used.append(state.pairs)
    return {d: n / trials for d, n in counts.items()}, float(np.median(used))


@pytest.mark.slow  # Monte Carlo: thousands of simulated series
def test_monte_carlo_default_schedule_at_measured_noise():
    aa, aa_pairs = simulate(0.095, 0.0)
    slow, slow_pairs = simulate(0.095, 0.10)
    assert aa[Decision.REGRESSED] <= 0.02
    assert slow[Decision.REGRESSED] >= 0.95
    assert aa[Decision.SAME] >= 0.95 and slow[Decision.SAME] <= 0.02
    assert aa_pairs <= 20 and slow_pairs <= 20


@pytest.mark.slow  # Monte Carlo: thousands of simulated series
def test_monte_carlo_noisier_device_stays_honest():
    # sd 0.15 needs more than 30 pairs for 95 % power: the budget runs out as UNKNOWN, never as
    # a false alarm or a false SAME
    aa, _ = simulate(0.15, 0.0, looks=SHORT)
    slow, _ = simulate(0.15, 0.10, looks=SHORT)
    assert aa[Decision.REGRESSED] <= 0.02 and slow[Decision.SAME] <= 0.02
    assert slow[Decision.UNKNOWN] > 0.10
    # with a budget of 60 pairs the power is back
    longer = (6, 10, 15, 20, 30, 45, 60)
    slow, _ = simulate(0.15, 0.10, looks=longer)
    aa, _ = simulate(0.15, 0.0, looks=longer)
    assert slow[Decision.REGRESSED] >= 0.95 and aa[Decision.REGRESSED] <= 0.02
