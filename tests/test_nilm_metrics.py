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


def test_always_on_prediction_scores_zero_mcc():
    m = nilm_metrics(np.full(8, 2000.0), KETTLE_TRUE, "kettle")
    assert m["mcc"] == 0.0 and m["f1"] == pytest.approx(2 * 3 / (2 * 3 + 5))


def test_all_off_prediction():
    m = nilm_metrics(np.zeros(8), KETTLE_TRUE, "kettle")
    assert m["f1"] == 0.0
    assert m["mcc"] == 0.0          # a constant prediction has no skill: comparable, not missing
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
    scorer = NilmScorer("kettle", max_w, (len(KETTLE_TRUE),))
    scores = scorer.score((KETTLE_PRED / max_w)[:, None], KETTLE_TRUE)
    expected = nilm_metrics(KETTLE_PRED, KETTLE_TRUE, "kettle", 8.0)
    assert {s.metric: s.value for s in scores} == pytest.approx(expected, nan_ok=True)
    assert {s.metric: s.unit for s in scores} == metric_units()
    assert all(s.key == "kettle" and s.n == len(KETTLE_TRUE) for s in scores)


# --------------------------------------------------------------------------- contiguous series
# One prediction per 8-s sample, as the device produces them by sliding the window. Dishwasher:
# ≥ 10 W, min on 1800 s = 225 samples, min off 1800 s = 225 samples.

def _dishwasher(length: int, runs: list[tuple[int, int]], watts: float = 100.0) -> np.ndarray:
    series = np.zeros(length)
    for start, end in runs:
        series[start:end] = watts
    return series


def test_minimum_on_time_is_counted_across_consecutive_windows():
    # each prediction comes from its own window; only the contiguous predictions together make
    # a run as long as the minimum on-time (225 samples): exactly 225 counts, 224 is dropped
    kept = _dishwasher(1000, [(100, 325)])
    dropped = _dishwasher(1000, [(100, 324)])
    assert on_off_status(kept, "dishwasher").sum() == 225
    assert not on_off_status(dropped, "dishwasher").any()
    m = nilm_metrics(kept, kept, "dishwasher")
    assert m["f1"] == 1.0 and m["mcc"] == pytest.approx(1.0)
    assert nilm_metrics(dropped, kept, "dishwasher")["f1"] == 0.0


def test_run_at_the_end_of_the_span_counts():
    # the run is still going at the span's last prediction: it is a run like any other
    truth = _dishwasher(1000, [(700, 1000)])
    assert on_off_status(truth, "dishwasher")[700:].all()
    pred = _dishwasher(1000, [(750, 1000)])
    m = nilm_metrics(pred, truth, "dishwasher")
    assert m["f1"] == pytest.approx(2 * 250 / (2 * 250 + 50))
    # one shorter than the minimum on-time at the end is dropped
    assert not on_off_status(_dishwasher(1000, [(800, 1000)]), "dishwasher").any()


def test_runs_are_not_joined_across_houses():
    # house A ends with 150 on-samples, house B starts with 150: joined they would make one
    # 300-sample run (≥ 225); per house each is shorter than the minimum and is dropped
    a, b = _dishwasher(500, [(350, 500)]), _dishwasher(500, [(0, 150)])
    both = np.concatenate([a, b])
    assert on_off_status(both, "dishwasher").sum() == 300                 # as one series
    from harness.workloads.nilm.metrics import segmented_status

    assert not segmented_status(both, "dishwasher", [500, 500]).any()
    m = nilm_metrics(both, both, "dishwasher", segments=[500, 500])
    assert math.isnan(m["f1"]) and m["acc"] == 1.0


def test_off_gaps_are_not_bridged_across_houses():
    # microwave: min off 30 s = 4 samples; a 2-sample gap is bridged inside a house only
    a = np.array([0, 0, 1000, 1000, 1000, 0], dtype=float)
    b = np.array([0, 1000, 1000, 1000, 0, 0], dtype=float)
    from harness.workloads.nilm.metrics import segmented_status

    joined = on_off_status(np.concatenate([a, b]), "microwave")
    apart = segmented_status(np.concatenate([a, b]), "microwave", [6, 6])
    assert joined[5] and joined[6]                  # the gap across the boundary was filled
    assert not apart[5] and not apart[6]


def test_segments_must_add_up():
    from harness.workloads.nilm.metrics import segmented_status

    with pytest.raises(ValueError, match="do not add up"):
        segmented_status(np.zeros(10), "kettle", [4, 5])


def test_scorer_keeps_houses_apart_and_reports_the_span():
    from harness.workloads.nilm.appliances import params
    from harness.workloads.nilm.workload import NilmScorer

    max_w = params("dishwasher").max_power_w
    a, b = _dishwasher(500, [(350, 500)]), _dishwasher(500, [(0, 150)])
    truth = np.concatenate([a, b])
    pred = np.concatenate([a, _dishwasher(500, [(0, 300)])])   # house B: a 300-sample false run
    scorer = NilmScorer("dishwasher", max_w, (500, 500), (6, 9), 10800)
    scores = scorer.score((pred / max_w)[:, None], truth)
    values = {(s.metric, s.key): s.value for s in scores}
    assert values[("f1", "dishwasher")] == 0.0                 # nothing true on, 300 false on
    assert values[("acc", "dishwasher")] == pytest.approx(700 / 1000)
    assert values[("span_days", "dishwasher/house6")] == pytest.approx(500 * 8 / 86400)
    assert values[("span_days", "dishwasher/house9")] == pytest.approx(500 * 8 / 86400)


def test_scorer_labels_accuracy_with_the_epochs_trained(tmp_path):
    import json

    from harness.workloads.nilm.workload import NilmScorer

    record = tmp_path / "training.json"
    record.write_text(json.dumps({"epochs_run": 3, "epochs_max": 16, "best_epoch": 2,
                                  "train_windows": 2000}))
    scorer = NilmScorer("kettle", 3100.0, (len(KETTLE_TRUE),), (6,), 8, record)
    scores = {s.metric: s for s in scorer.score((KETTLE_PRED / 3100.0)[:, None], KETTLE_TRUE)}
    assert scores["train_epochs"].value == 3 and scores["train_epochs"].n == 2000
    missing = NilmScorer("kettle", 3100.0, (len(KETTLE_TRUE),), (6,), 8, tmp_path / "none.json")
    assert "train_epochs" not in {s.metric for s in missing.score(KETTLE_PRED[:, None] / 3100.0,
                                                                  KETTLE_TRUE)}
