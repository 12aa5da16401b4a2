"""Seq2point windows: standardised aggregate windows, midpoint targets, balanced calibration."""

from __future__ import annotations

import numpy as np

from harness.workloads.nilm.appliances import AGG_MEAN, AGG_STD, params


def standardise_aggregate(aggregate_w: np.ndarray) -> np.ndarray:
    """(x - 522) / 814, float32."""
    return ((np.asarray(aggregate_w, dtype=np.float32) - AGG_MEAN) / AGG_STD).astype(np.float32)


def scale_target(power_w: np.ndarray, appliance: str) -> np.ndarray:
    """Appliance power W → [0, 1] by its max power (clipped), float32."""
    scaled = np.asarray(power_w, dtype=np.float32) / params(appliance).max_power_w
    return np.clip(scaled, 0.0, 1.0).astype(np.float32)


def unscale_target(scaled: np.ndarray, appliance: str) -> np.ndarray:
    """[0, 1] model output → W (float32)."""
    return (np.asarray(scaled, dtype=np.float32) * params(appliance).max_power_w).astype(np.float32)


def valid_starts(aggregate_w: np.ndarray, window: int, stride: int = 1) -> np.ndarray:
    """Start indices (every `stride`) of windows without a NaN (a split) in them."""
    bad = np.concatenate(([0], np.cumsum(np.isnan(aggregate_w))))
    starts = np.arange(0, max(0, aggregate_w.size - window + 1), stride)
    return starts[bad[starts + window] - bad[starts] == 0]


def make_windows(aggregate_w: np.ndarray, starts: np.ndarray, window: int) -> np.ndarray:
    """Standardised windows (N, window, 1) float32 starting at `starts`."""
    view = np.lib.stride_tricks.sliding_window_view(standardise_aggregate(aggregate_w), window)
    return np.ascontiguousarray(view[starts])[..., np.newaxis]


def midpoints(series: np.ndarray, starts: np.ndarray, window: int) -> np.ndarray:
    """Values of `series` at the midpoint of each window."""
    return series[starts + window // 2]


def balanced_representative(x: np.ndarray, y_status: np.ndarray, n: int, seed: int) -> np.ndarray:
    """`n` windows, half with the appliance on and half off (float32, shape of x).

    When one class has too few windows, all of them are taken and the other class fills the rest.
    """
    rng = np.random.default_rng(seed)
    on = np.flatnonzero(np.asarray(y_status, dtype=bool))
    off = np.flatnonzero(~np.asarray(y_status, dtype=bool))
    n = min(n, len(on) + len(off))
    take_on = min(len(on), max(n // 2, n - len(off)))
    chosen = np.concatenate((rng.choice(on, take_on, replace=False),
                             rng.choice(off, n - take_on, replace=False)))
    return np.asarray(x[rng.permutation(chosen)], dtype=np.float32)
