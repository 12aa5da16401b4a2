"""harness.changepoints: Otava's E-divisive on synthetic history series."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.changepoints import ChangePoint, change_points


def nights(values) -> list[tuple[str, str, float | None]]:
    return [(f"run{i:02d}", f"2026-11-{i + 1:02d}T02:30:00+00:00", v)
            for i, v in enumerate(values)]


def test_a_clear_step_is_found_where_it_happened():
    rng = np.random.default_rng(3)
    values = 42.0 * np.exp(rng.normal(0, 0.02, 40))
    values[25:] *= 1.20                                   # +20 % from night 25 on
    found = change_points(nights(values))
    assert len(found) == 1
    point = found[0]
    assert isinstance(point, ChangePoint)
    assert point.index == 25 and point.run_id == "run25"
    assert point.timestamp == "2026-11-26T02:30:00+00:00"
    assert point.before_mean == pytest.approx(values[:25].mean())
    assert point.after_mean == pytest.approx(values[25:].mean())
    assert point.relative_change == pytest.approx(0.20, abs=0.02)
    assert point.p_value < 0.001


def test_a_flat_noisy_series_has_none():
    rng = np.random.default_rng(4)
    values = 42.0 * np.exp(rng.normal(0, 0.05, 40))
    assert change_points(nights(values)) == []


def test_failed_nights_are_skipped_and_indices_refer_to_the_series():
    rng = np.random.default_rng(5)
    values = list(42.0 * np.exp(rng.normal(0, 0.02, 30)))
    values[15:] = [v * 1.25 for v in values[15:]]
    values[10] = None                                       # a failed night
    values[20] = math.nan
    found = change_points(nights(values))
    assert [p.index for p in found] == [15] and found[0].run_id == "run15"


def test_two_steps_and_min_magnitude():
    rng = np.random.default_rng(6)
    values = 42.0 * np.exp(rng.normal(0, 0.01, 60))
    values[20:] *= 1.20
    values[40:] *= 1.03                                    # a small second step
    assert [p.index for p in change_points(nights(values))] == [20, 40]
    assert [p.index for p in change_points(nights(values), min_magnitude=0.05)] == [20]


def test_too_short_series():
    assert change_points([]) == [] and change_points(nights([1.0])) == []
