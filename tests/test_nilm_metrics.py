"""NILM metrics on hand-computed vectors, including the undefined cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.workloads.nilm.metrics import metric_units, nilm_metrics, on_off_status

KETTLE_TRUE = np.array([0, 2000, 2000, 2000, 0, 0, 2000, 0], dtype=float)
KETTLE_PRED = np.array([0, 0, 2000, 2000, 2000, 0, 0, 0], dtype=float)


def test_kettle_status_drops_runs_shorter_than_min_on():
    # kettle: ≥ 1500 W, min on 12 s = 2 samples; the single sample at index 6 is removed
    assert on_off_status(KETTLE_TRUE, "kettle").tolist() == [0, 1, 1, 1, 0, 0, 0, 0]


def test_fridge_min_on_boundary():
    # fridge: min on 60 s = ceil(7.5) = 8 samples
    power = np.array([0] + [100] * 7 + [0] * 3 + [100] * 8 + [0], dtype=float)
    status = on_off_status(power, "fridge")
    assert not status[1:8].any()
    assert status[11:19].all()


def test_microwave_short_off_gaps_are_bridged():
    # microwave: min off 30 s = 4 samples; the 2-sample gap closes, the 5-sample gap stays
    power = np.array([0, 1000, 1000, 0, 0, 1000, 1000, 0, 0, 0, 0, 0, 1000, 1000], dtype=float)
    expected = [0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1]
    assert on_off_status(power, "microwave").astype(int).tolist() == expected


def test_sample_period_changes_duration_in_samples():
    power = np.array([0, 2000, 0, 0], dtype=float)
    assert not on_off_status(power, "kettle").any()          # 1 sample < 2 at 8 s
    assert on_off_status(power, "kettle", sample_seconds=24).tolist() == [0, 1, 0, 0]


def test_metrics_hand_computed():
    m = nilm_metrics(KETTLE_PRED, KETTLE_TRUE, "kettle")
    # status true [0,1,1,1,0,0,0,0], pred [0,0,1,1,1,0,0,0]: tp 2, fp 1, fn 1, tn 4
    assert m["mae"] == pytest.approx(750.0)
    assert m["sae"] == pytest.approx(0.25)
    assert m["nde"] == pytest.approx(0.75)
    assert m["epd"] == pytest.approx(750.0 * 24)
    assert m["epd_e"] == pytest.approx(-25.0)
    assert m["acc"] == pytest.approx(0.75)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["mcc"] == pytest.approx(7 / 15)
    assert set(m) == set(metric_units())


def test_no_on_samples_in_truth():
    m = nilm_metrics(KETTLE_PRED, np.zeros(8), "kettle")
    assert m["sae"] == math.inf
    assert m["nde"] == math.inf
    assert m["epd_e"] == math.inf
    assert math.isnan(m["mcc"])
    assert m["f1"] == 0.0
    assert m["acc"] == pytest.approx(5 / 8)


def test_nothing_on_anywhere_is_undefined_not_zero():
    m = nilm_metrics(np.zeros(8), np.zeros(8), "kettle")
    assert math.isnan(m["sae"]) and math.isnan(m["f1"]) and math.isnan(m["mcc"])
    assert m["acc"] == 1.0 and m["mae"] == 0.0


def test_all_off_prediction():
    m = nilm_metrics(np.zeros(8), KETTLE_TRUE, "kettle")
    assert m["f1"] == 0.0
    assert math.isnan(m["mcc"])
    assert m["sae"] == pytest.approx(1.0)
    assert m["nde"] == pytest.approx(1.0)
    assert m["epd_e"] == pytest.approx(-100.0)
    assert m["acc"] == pytest.approx(5 / 8)


def test_negative_predictions_clipped_and_shapes_checked():
    assert nilm_metrics(np.full(4, -5.0), np.zeros(4), "kettle")["mae"] == 0.0
    with pytest.raises(ValueError):
        nilm_metrics(np.zeros(3), np.zeros(4), "kettle")


def test_scorer_turns_scaled_outputs_into_metric_rows():
    from harness.workloads.nilm.appliances import params
    from harness.workloads.nilm.workload import NilmScorer

    max_w = params("kettle").max_power_w
    scores = NilmScorer("kettle", max_w, 8.0).score((KETTLE_PRED / max_w)[:, None], KETTLE_TRUE)
    expected = nilm_metrics(KETTLE_PRED, KETTLE_TRUE, "kettle", 8.0)
    assert {s.metric: s.value for s in scores} == pytest.approx(expected, nan_ok=True)
    assert {s.metric: s.unit for s in scores} == metric_units()
    assert all(s.key == "kettle" and s.n == len(KETTLE_TRUE) for s in scores)
