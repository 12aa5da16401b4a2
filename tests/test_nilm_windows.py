"""Windows, normalisation and the balanced representative dataset."""

from __future__ import annotations

import numpy as np
import pytest

from harness.workloads.nilm.windows import (balanced_representative, make_windows, midpoints,
                                            scale_target, standardise_aggregate, unscale_target,
                                            valid_starts)


def test_standardise_and_scale():
    assert standardise_aggregate(np.array([522.0, 1336.0])).tolist() == [0.0, 1.0]
    assert scale_target(np.array([0.0, 1550.0, 5000.0]), "kettle").tolist() == [0.0, 0.5, 1.0]
    assert unscale_target(np.array([0.5]), "kettle").tolist() == [1550.0]


def test_windows_skip_splits_and_target_is_midpoint():
    aggregate = np.arange(12, dtype=np.float32) + 522.0
    aggregate[7] = np.nan                        # a split
    starts = valid_starts(aggregate, 3)
    assert starts.tolist() == [0, 1, 2, 3, 4, 8, 9]
    x = make_windows(aggregate, starts, 3)
    assert x.shape == (7, 3, 1) and x.dtype == np.float32
    assert x[5, :, 0] * 814 == pytest.approx([8.0, 9.0, 10.0])
    assert midpoints(np.arange(12), starts, 3).tolist() == [1, 2, 3, 4, 5, 9, 10]
    assert valid_starts(aggregate, 3, stride=2).tolist() == [0, 2, 4, 8]


def test_balanced_representative_half_on():
    x = np.arange(100, dtype=np.float32).reshape(100, 1, 1)
    status = np.arange(100) < 10
    rep = balanced_representative(x, status, 16, seed=0)
    assert rep.shape == (16, 1, 1) and rep.dtype == np.float32
    assert int(np.sum(rep[:, 0, 0] < 10)) == 8
    few = balanced_representative(x, np.arange(100) < 3, 16, seed=0)
    assert int(np.sum(few[:, 0, 0] < 3)) == 3 and len(few) == 16
