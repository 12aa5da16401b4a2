"""prepare(): synthetic houses written once, read back like REFIT files, split by house."""

from __future__ import annotations

import numpy as np
import pytest

from harness.config.suite import NilmWorkload
from harness.errors import UserError
from harness.workloads.nilm import data_fingerprint, prepare
from harness.workloads.nilm.appliances import SYNTHETIC_CHANNELS
from harness.workloads.nilm.dataset import DATA_VERSION


def small(**dataset) -> NilmWorkload:
    return NilmWorkload(
        appliances=["kettle"], window=31,
        dataset={"houses": {"train": [1], "val": [2], "test": [3]}, "days": 1, **dataset},
        training={"max_train_windows": 300, "max_eval_windows": 200, "calibration_windows": 20},
        evaluation={"days": 0.25})


def test_prepare_shapes_and_split(tmp_path):
    data = prepare(small(), "kettle", tmp_path)
    folder = tmp_path / "synthetic" / f"v{DATA_VERSION}_seed0_days1"
    assert sorted(p.name for p in folder.iterdir()) == [
        "CLEAN_House1.csv", "CLEAN_House2.csv", "CLEAN_House3.csv"]
    for split in (data.train, data.val):
        assert split.x.dtype == np.float32 and split.x.shape[1:] == (31, 1)
        assert split.x.shape[0] == split.y_w.shape[0] == split.y_scaled.shape[0]
        assert 0.0 <= split.y_scaled.min() and split.y_scaled.max() <= 1.0
    assert data.train.x.shape[0] == 300 and data.train.status.any()
    assert data.representative.shape == (20, 31, 1)
    # a quarter of a day of contiguous predictions on the one test house (2700 at 8 s)
    (span,) = data.spans
    assert span.house == 3 and span.predictions == span.requested == 2700
    assert data.segments == [2700]
    series = data.test_series()
    assert series.dtype == np.float32 and series.shape == (2700 + 30,)
    assert not np.isnan(series).any()
    windows = data.test_windows()
    assert windows.shape == (2700, 31, 1)
    np.testing.assert_array_equal(windows[5, :, 0], series[5:36])
    assert data.test_truth_w().shape == (2700,)


def test_two_test_houses_are_one_series_with_a_nan_between(tmp_path):
    workload = small(houses={"train": [1], "val": [2], "test": [3, 4]})
    data = prepare(workload, "kettle", tmp_path)
    assert [s.house for s in data.spans] == [3, 4] and data.segments == [2700, 2700]
    series = data.test_series()
    assert series.shape == (2 * (2700 + 30) + 1,)
    assert np.flatnonzero(np.isnan(series)).tolist() == [2730]
    assert data.test_windows().shape[0] == data.test_truth_w().shape[0] == 5400


def test_span_is_truncated_to_the_longest_gap_free_stretch():
    from harness.workloads.nilm.dataset import contiguous_span

    aggregate = np.arange(40, dtype=np.float32)
    aggregate[[10, 25]] = np.nan                          # stretches 0-10, 11-25, 26-40
    power = np.arange(40, dtype=np.float32) * 10
    span = contiguous_span(7, aggregate, power, window=5, predictions=8)
    assert span is not None and span.start == 11 and span.predictions == 8   # first with room
    np.testing.assert_array_equal(span.truth_w, power[13:21])                # midpoints
    short = contiguous_span(7, aggregate, power, window=5, predictions=50)
    assert short.start == 11 and short.predictions == 10 and short.requested == 50
    assert contiguous_span(7, aggregate, power, window=16, predictions=3) is None
    later = contiguous_span(7, aggregate, power, window=5, predictions=8, offset=15)
    assert later.start == 26 and later.predictions == 8      # 15-25 is too short from 15 on


def test_refit_source_reads_generated_folder_like_synthetic(tmp_path):
    synthetic = prepare(small(), "kettle", tmp_path)
    folder = tmp_path / "synthetic" / f"v{DATA_VERSION}_seed0_days1"
    refit = small(source="refit", path=str(folder),
                  channels={"kettle": {h: SYNTHETIC_CHANNELS["kettle"] for h in (1, 2, 3)}})
    real = prepare(refit, "kettle", tmp_path / "unused")
    np.testing.assert_array_equal(real.test_series(), synthetic.test_series())
    np.testing.assert_array_equal(real.test_truth_w(), synthetic.test_truth_w())
    np.testing.assert_array_equal(real.train.y_w, synthetic.train.y_w)


def test_refit_house_without_appliance_is_an_error(tmp_path):
    workload = small(source="refit", path=str(tmp_path))      # REFIT house 1 has no kettle
    with pytest.raises(UserError, match="no train house has a kettle"):
        prepare(workload, "kettle", tmp_path)


def test_fingerprint_is_stable_and_sensitive():
    base = data_fingerprint(small(), "kettle")
    assert base == data_fingerprint(small(), "kettle")
    assert base != data_fingerprint(small(seed=1), "kettle")
    assert base != data_fingerprint(small(), "microwave")
    longer = small().model_copy(update={"evaluation": small().evaluation.model_copy(
        update={"days": 0.5})})
    assert base != data_fingerprint(longer, "kettle")
