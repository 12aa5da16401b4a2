"""NILM accuracy metrics (pure numpy, no I/O).

Definitions (p = predicted power, t = true power, W; Δt = sample period, s):
  MAE   mean |p - t|                                   W
  SAE   |Σp - Σt| / Σt                                 (inf when Σt = 0 < Σp, NaN when both 0)
  NDE   Σ(p - t)² / Σt²                                (inf when Σt² = 0 and p ≠ t, NaN when both 0)
  EpD   predicted energy per day, Σp·Δt / 3600 / days  Wh/day
  EpD_e 100 · (EpD(p) - EpD(t)) / EpD(t), signed       %  (inf/NaN when EpD(t) = 0)
  ACC, F1, MCC on the on/off status of p and t (`on_off_status`); F1 is NaN when neither has an
  on-sample, MCC is NaN when a row or column of the confusion matrix is empty.
Negative predictions are clipped to 0 W (power drawn by an appliance is never negative).
"""

from __future__ import annotations

import math

import numpy as np

from harness.workloads.nilm.appliances import SAMPLE_SECONDS, params

METRIC_UNITS: dict[str, str] = {
    "mae": "W", "sae": "", "nde": "", "epd": "Wh/day", "epd_e": "%",
    "acc": "", "f1": "", "mcc": "",
}


def metric_units() -> dict[str, str]:
    """Unit of every metric `nilm_metrics` returns ('' = dimensionless)."""
    return dict(METRIC_UNITS)


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start (inclusive) and end (exclusive) indices of the True runs of `mask`."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def on_off_status(power_w: np.ndarray, appliance: str,
                  sample_seconds: float = SAMPLE_SECONDS) -> np.ndarray:
    """On/off status: power ≥ threshold, then short off-gaps bridged and short on-runs removed.

    Off-gaps between two on-runs shorter than the minimum off-duration are set on first, then
    on-runs shorter than the minimum on-duration are set off (durations: seconds → samples, ceil).
    """
    p = params(appliance)
    status = np.nan_to_num(np.asarray(power_w, dtype=np.float64), nan=0.0) >= p.on_threshold_w
    min_on = math.ceil(p.min_on_s / sample_seconds)
    min_off = math.ceil(p.min_off_s / sample_seconds)
    starts, ends = _runs(status)
    for gap_start, gap_end in zip(ends[:-1], starts[1:]):
        if gap_end - gap_start < min_off:
            status[gap_start:gap_end] = True
    starts, ends = _runs(status)
    for start, end in zip(starts, ends):
        if end - start < min_on:
            status[start:end] = False
    return status


def _ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator with inf (x/0, x > 0) and NaN (0/0) instead of errors."""
    if denominator == 0:
        return math.inf if numerator != 0 else math.nan
    return numerator / denominator


def _mcc(tp: int, tn: int, fp: int, fn: int) -> float:
    """Matthews correlation coefficient.

    A constant prediction (never or always "on") against a truth that has both states scores 0,
    its limit and scikit-learn's value: a model that stopped detecting the appliance must compare
    as worse, not as "no value". Only a truth with one state leaves MCC undefined (NaN).
    """
    if tp + fn == 0 or tn + fp == 0:
        return math.nan
    denominator = math.sqrt(float(tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return (tp * tn - fp * fn) / denominator if denominator > 0 else 0.0


def segmented_status(power_w: np.ndarray, appliance: str, segments: list[int] | None = None,
                     sample_seconds: float = SAMPLE_SECONDS) -> np.ndarray:
    """`on_off_status` of each contiguous segment on its own (a run never joins two segments,
    e.g. two houses), concatenated; `segments` = their lengths (default: one segment)."""
    power = np.asarray(power_w, dtype=np.float64).ravel()
    lengths = [power.size] if segments is None else [int(n) for n in segments]
    if sum(lengths) != power.size or min(lengths, default=0) < 0:
        raise ValueError(f"segments {lengths} do not add up to the {power.size} samples")
    edges = np.cumsum([0, *lengths])
    parts = [on_off_status(power[a:b], appliance, sample_seconds)
             for a, b in zip(edges[:-1], edges[1:])]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=bool)


def nilm_metrics(pred_w: np.ndarray, true_w: np.ndarray, appliance: str,
                 sample_seconds: float = SAMPLE_SECONDS,
                 segments: list[int] | None = None) -> dict[str, float]:
    """MAE, SAE, NDE, EpD, EpD_e, ACC, F1 and MCC of a predicted appliance power series.

    `segments`: lengths of the contiguous spans the series is made of (one per house, in order);
    the status rules run on each span alone. Default: the whole series is one span.
    """
    pred = np.clip(np.asarray(pred_w, dtype=np.float64).ravel(), 0.0, None)
    true = np.asarray(true_w, dtype=np.float64).ravel()
    if pred.shape != true.shape or pred.size == 0:
        raise ValueError(f"need two equal, non-empty series; got {pred.shape} and {true.shape}")
    days = pred.size * sample_seconds / 86400.0
    epd_pred = pred.sum() * sample_seconds / 3600.0 / days
    epd_true = true.sum() * sample_seconds / 3600.0 / days
    on_pred = segmented_status(pred, appliance, segments, sample_seconds)
    on_true = segmented_status(true, appliance, segments, sample_seconds)
    tp = int(np.sum(on_pred & on_true))
    tn = int(np.sum(~on_pred & ~on_true))
    fp = int(np.sum(on_pred & ~on_true))
    fn = int(np.sum(~on_pred & on_true))
    return {
        "mae": float(np.mean(np.abs(pred - true))),
        "sae": _ratio(abs(pred.sum() - true.sum()), true.sum()),
        "nde": _ratio(float(np.sum((pred - true) ** 2)), float(np.sum(true ** 2))),
        "epd": float(epd_pred),
        "epd_e": 100.0 * _ratio(epd_pred - epd_true, epd_true),
        "acc": (tp + tn) / pred.size,
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "mcc": _mcc(tp, tn, fp, fn),
    }
