"""REFIT-format files: generator → CSV → loader, read as plain REFIT files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.errors import UserError
from harness.workloads.nilm.appliances import SYNTHETIC_CHANNELS
from harness.workloads.nilm.data import generate_house, load_house

REFIT_HEADER = ["Time", "Unix", "Aggregate", *[f"Appliance{i}" for i in range(1, 10)], "Issues"]


def _write_refit(path: Path, unix: list[int], aggregate: list[int], kettle: list[int],
                 issues: list[int]) -> None:
    """A hand-made REFIT house 2 file (kettle = Appliance8 in REFIT's mapping)."""
    rows = {"Time": pd.to_datetime(unix, unit="s").strftime("%Y-%m-%d %H:%M:%S"), "Unix": unix,
            "Aggregate": aggregate}
    for i in range(1, 10):
        rows[f"Appliance{i}"] = kettle if i == 8 else [0] * len(unix)
    rows["Issues"] = issues
    pd.DataFrame(rows, columns=REFIT_HEADER).to_csv(path, index=False)


def test_generated_file_is_plain_refit(tmp_path):
    path = generate_house(tmp_path, 3, days=1, seed=7)
    assert path.name == "CLEAN_House3.csv"
    frame = pd.read_csv(path)
    assert list(frame.columns) == REFIT_HEADER
    steps = np.diff(frame["Unix"].to_numpy())
    assert (steps % 8 == 0).all() and steps.max() > 180          # a long recording gap
    assert frame["Issues"].sum() > 0                              # flagged rows present
    kettle = frame[f"Appliance{SYNTHETIC_CHANNELS['kettle']}"]
    assert kettle.max() >= 2000                                   # kettle boils at 2-3 kW
    clean = frame[frame["Issues"] == 0]
    assert (clean["Aggregate"] >= clean[[f"Appliance{i}" for i in range(1, 10)]].sum(axis=1)).all()


def test_round_trip_through_loader(tmp_path):
    path = generate_house(tmp_path, 1, days=0.5, seed=0)
    aggregate, kettle = load_house(tmp_path, 1, "kettle", SYNTHETIC_CHANNELS["kettle"])
    assert aggregate.dtype == np.float32 and aggregate.shape == kettle.shape
    assert int(np.isnan(aggregate).sum()) == 2                    # Issues stretch + 3-h gap
    frame = pd.read_csv(path)
    clean = frame[frame["Issues"] == 0]
    finite = aggregate[~np.isnan(aggregate)]
    assert finite[0] == clean["Aggregate"].iloc[0]
    assert np.nanmax(kettle) == clean[f"Appliance{SYNTHETIC_CHANNELS['kettle']}"].max()
    assert len(aggregate) < len(frame)                            # no rows invented in the gaps


def test_loader_fills_short_gaps_splits_long_ones_drops_issues(tmp_path):
    unix = [0, 8, 16, 40, 48, 56, 64, 1000, 1008]                 # 2 missing slots, then 117
    aggregate = [100, 110, 120, 130, 140, 150, 160, 170, 180]
    kettle = [0, 0, 2000, 2000, 0, 0, 0, 0, 0]
    issues = [0, 0, 0, 0, 0, 1, 0, 0, 0]                          # 56 dropped → filled
    _write_refit(tmp_path / "CLEAN_House2.csv", unix, aggregate, kettle, issues)
    agg, app = load_house(tmp_path, 2, "kettle")                  # REFIT mapping: Appliance8
    expected = [100, 110, 120, 120, 120, 130, 140, 140, 160, np.nan, 170, 180]
    np.testing.assert_array_equal(agg, np.array(expected, dtype=np.float32))
    assert app[2:6].tolist() == [2000, 2000, 2000, 2000]


def test_loader_errors_name_the_problem(tmp_path):
    with pytest.raises(UserError, match="no kettle channel"):
        load_house(tmp_path, 1, "kettle")                         # REFIT house 1 has no kettle
    with pytest.raises(UserError, match="no such REFIT file"):
        load_house(tmp_path, 2, "kettle")


@pytest.mark.parametrize("appliance", ["dishwasher", "washing_machine"])
def test_synthetic_programmes_are_long_frequent_and_have_motor_phases(appliance):
    """Heating blocks plus pump/motor phases, each programme over the 1800-s minimum on-time,
    several programmes a week (the seeded generator, read through the status rules)."""
    from harness.workloads.nilm import synthetic
    from harness.workloads.nilm.metrics import _runs, on_off_status

    n = 14 * synthetic.PER_DAY
    power = getattr(synthetic, appliance)(np.random.default_rng(3), n, 2000.0)
    np.testing.assert_array_equal(
        power, getattr(synthetic, appliance)(np.random.default_rng(3), n, 2000.0))   # seeded
    starts, ends = _runs(on_off_status(power, appliance))
    assert len(starts) >= 2 * 5                                  # ≥ 5 programmes a week
    assert ((ends - starts) * 8 >= 1800).all()                   # over the minimum on-time
    for start, end in zip(starts, ends):
        cycle = power[start:end]
        assert (cycle > 1500).sum() * 8 >= 8 * 60                 # a heating block
        motor = (cycle > 50) & (cycle < 1000)
        assert motor.sum() * 8 >= 20 * 60                         # pump / motor / spin phases
