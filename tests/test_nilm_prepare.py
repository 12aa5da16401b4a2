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
        training={"max_train_windows": 300, "max_eval_windows": 200, "calibration_windows": 20})


def test_prepare_shapes_and_split(tmp_path):
    data = prepare(small(), "kettle", tmp_path)
    folder = tmp_path / "synthetic" / f"v{DATA_VERSION}_seed0_days1"
    assert sorted(p.name for p in folder.iterdir()) == [
        "CLEAN_House1.csv", "CLEAN_House2.csv", "CLEAN_House3.csv"]
    for split in (data.train, data.val, data.test):
        assert split.x.dtype == np.float32 and split.x.shape[1:] == (31, 1)
        assert split.x.shape[0] == split.y_w.shape[0] == split.y_scaled.shape[0]
        assert 0.0 <= split.y_scaled.min() and split.y_scaled.max() <= 1.0
    assert data.train.x.shape[0] == 300 and data.train.status.any()
    assert data.test_inputs.shape[0] <= 200 and data.test_targets_w is data.test.y_w
    assert data.representative.shape == (20, 31, 1)
    assert data.test_sample_seconds % 8 == 0 and data.test_sample_seconds > 8


def test_refit_source_reads_generated_folder_like_synthetic(tmp_path):
    synthetic = prepare(small(), "kettle", tmp_path)
    folder = tmp_path / "synthetic" / f"v{DATA_VERSION}_seed0_days1"
    refit = small(source="refit", path=str(folder),
                  channels={"kettle": {h: SYNTHETIC_CHANNELS["kettle"] for h in (1, 2, 3)}})
    real = prepare(refit, "kettle", tmp_path / "unused")
    np.testing.assert_array_equal(real.test.x, synthetic.test.x)
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
