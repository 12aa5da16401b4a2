"""REFIT cleaned-format files: a seeded synthetic writer and a loader for real or synthetic houses.

File format (REFIT "CLEAN_House{N}.csv"): columns Time, Unix, Aggregate, Appliance1..Appliance9,
Issues; one row per ~8 s; Issues = 1 where the submeters exceed the aggregate (unreliable row).

Loader policy: rows with Issues = 1 are dropped, rows are snapped to an 8-s grid (first row per slot
wins), gaps up to `MAX_FILL_SECONDS` are forward-filled, longer gaps split the series. The returned
arrays mark each split with one NaN sample, so windowing never spans a gap.

Synthetic houses use `SYNTHETIC_CHANNELS` (the same layout in every house); real houses use
`REFIT_CHANNELS`. The loader takes the channel number, it never looks at generator internals.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from harness.errors import UserError
from harness.workloads.nilm import synthetic
from harness.workloads.nilm.appliances import REFIT_CHANNELS, SAMPLE_SECONDS, SYNTHETIC_CHANNELS

MAX_FILL_SECONDS = 180
START = datetime(2014, 3, 1, tzinfo=timezone.utc)
COLUMNS = ["Time", "Unix", "Aggregate", *[f"Appliance{i}" for i in range(1, 10)], "Issues"]


def house_file(folder: Path, house: int) -> Path:
    """Path of one house's REFIT CSV."""
    return Path(folder) / f"CLEAN_House{house}.csv"


LOADS = ("fridge", "washing_machine", "dishwasher", "kettle", "microwave", "other", "unmetered",
         "noise")


def _streams(seed: int, house: int) -> dict[str, np.random.Generator]:
    """One random stream per load of a house: changing one load's model leaves the others as
    they were (stream i = default_rng([seed, house, i]))."""
    return {name: np.random.default_rng([seed, house, i]) for i, name in enumerate(LOADS)}


def _channels(rng: dict[str, np.random.Generator], n: int) -> dict[int, np.ndarray]:
    """Appliance1..9 power series of one synthetic house, laid out per `SYNTHETIC_CHANNELS`."""
    def rating(name: str, lo: float, hi: float) -> tuple[np.random.Generator, int, float]:
        return rng[name], n, float(rng[name].uniform(lo, hi))

    loads = {
        "fridge": synthetic.fridge(*rating("fridge", 80, 140)),
        "washing_machine": synthetic.washing_machine(*rating("washing_machine", 1800, 2200)),
        "dishwasher": synthetic.dishwasher(*rating("dishwasher", 1800, 2200)),
        "kettle": synthetic.kettle(*rating("kettle", 2200, 2900)),
        "microwave": synthetic.microwave(*rating("microwave", 1000, 1450)),
    }
    channels = {SYNTHETIC_CHANNELS[name]: series for name, series in loads.items()}
    for number, series in enumerate(synthetic.other_loads(rng["other"], n).values(), start=6):
        channels[number] = series
    return channels


def generate_house(folder: Path, house: int, days: float, seed: int) -> Path:
    """Write a synthetic `CLEAN_House{house}.csv` (REFIT format) and return its path.

    Seeded: the same (seed, house, days) always writes the same file; each load draws from its
    own stream (`_streams`).
    Besides the loads, the file holds a 30-min stretch flagged Issues = 1 (aggregate glitch) in the
    first half, a 3-hour recording gap in the second half and ~0.2 % single missing rows.
    """
    streams = _streams(seed, house)
    n = int(days * synthetic.PER_DAY)
    channels = _channels(streams, n)
    rng = streams["noise"]
    aggregate = (sum(channels.values()) + synthetic.unmetered(streams["unmetered"], n)
                 + rng.normal(0, 8, n))
    issues = np.zeros(n, dtype=np.int64)
    half = n // 2
    glitch = int(rng.integers(0, max(1, half - synthetic.minutes(30))))
    issues[glitch:glitch + synthetic.minutes(30)] = 1
    aggregate[issues == 1] *= 0.4
    keep = rng.random(n) >= 0.002
    gap = int(rng.integers(half, max(half + 1, n - synthetic.minutes(180))))
    keep[gap:gap + synthetic.minutes(180)] = False
    unix = int(START.timestamp()) + 86400 * 7 * house + SAMPLE_SECONDS * np.arange(n)
    frame = pd.DataFrame({
        "Time": pd.to_datetime(unix, unit="s").strftime("%Y-%m-%d %H:%M:%S"),
        "Unix": unix,
        "Aggregate": np.clip(np.rint(aggregate), 0, None).astype(np.int64),
        **{f"Appliance{i}": np.clip(np.rint(channels[i]), 0, None).astype(np.int64)
           for i in range(1, 10)},
        "Issues": issues,
    }, columns=COLUMNS)[keep]
    path = house_file(folder, house)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    frame.to_csv(partial, index=False)
    os.replace(partial, path)  # atomic: concurrent builders never read a half-written house
    return path


def _on_grid(unix: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Snap rows to the 8-s grid; empty slots are NaN. `values` is (rows, columns)."""
    slot = np.rint((unix - unix[0]) / SAMPLE_SECONDS).astype(np.int64)
    slot, first = np.unique(slot, return_index=True)
    grid = np.full((int(slot[-1]) + 1, values.shape[1]), np.nan)
    grid[slot] = values[first]
    return grid


def _fill_or_split(grid: np.ndarray, max_fill: int) -> np.ndarray:
    """Forward-fill empty runs up to `max_fill` slots; collapse longer ones to one NaN row."""
    empty = np.isnan(grid[:, 0])
    edges = np.diff(np.concatenate(([0], empty.astype(np.int8), [0])))
    keep = np.ones(len(grid), dtype=bool)
    for start, end in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)):
        if end - start <= max_fill:
            grid[start:end] = grid[start - 1]
        else:
            keep[start + 1:end] = False
    return grid[keep]


def load_house(folder: Path, house: int, appliance: str,
               channel: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Aggregate and appliance power (W, float32, 8-s grid, NaN marks a split) of one house.

    `channel` is N of the ApplianceN column; by default REFIT's mapping for `house`.
    """
    if channel is None:
        channel = REFIT_CHANNELS.get(appliance, {}).get(house)
        if channel is None:
            raise UserError(f"REFIT house {house} has no {appliance} channel",
                            hint=f"houses with one: {sorted(REFIT_CHANNELS.get(appliance, {}))}")
    path = house_file(folder, house)
    if not path.is_file():
        raise UserError(f"{path}: no such REFIT file",
                        hint="check dataset.path and the house numbers")
    column = f"Appliance{channel}"
    try:
        frame = pd.read_csv(path, usecols=["Unix", "Aggregate", column, "Issues"])
    except ValueError as error:
        raise UserError(f"{path}: not a REFIT cleaned file ({error})") from None
    frame = frame[frame["Issues"] == 0].dropna().sort_values("Unix", kind="stable")
    if frame.empty:
        raise UserError(f"{path}: no usable rows (all flagged Issues = 1 or empty)")
    grid = _on_grid(frame["Unix"].to_numpy(np.int64),
                    frame[["Aggregate", column]].to_numpy(np.float64))
    grid = _fill_or_split(grid, MAX_FILL_SECONDS // SAMPLE_SECONDS)
    return grid[:, 0].astype(np.float32), grid[:, 1].astype(np.float32)


def channel_for(appliance: str, house: int, source: str,
                overrides: dict[str, dict[int, int]] | None = None) -> int | None:
    """ApplianceN number of `appliance` in `house` (None: the house does not have it)."""
    if overrides and appliance in overrides:
        return overrides[appliance].get(house)
    if source == "synthetic":
        return SYNTHETIC_CHANNELS[appliance]
    return REFIT_CHANNELS.get(appliance, {}).get(house)
