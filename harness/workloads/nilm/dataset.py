"""Data for one appliance: houses loaded per split, training/validation windows, calibration
windows, and one contiguous evaluation span per held-out house."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.config.suite import NilmWorkload
from harness.errors import UserError
from harness.workloads.nilm.appliances import SAMPLE_SECONDS
from harness.workloads.nilm.data import channel_for, generate_house, house_file, load_house
from harness.workloads.nilm.metrics import on_off_status
from harness.workloads.nilm.windows import (balanced_representative, make_windows, midpoints,
                                            scale_target, standardise_aggregate, valid_starts)

DATA_VERSION = 3  # bump when the generator, loader or window selection changes
BUSY_QUANTILE = 0.9
NEAR_FRACTION = 0.125


@dataclass(frozen=True)
class Split:
    """Windows of one split: inputs (N, window, 1), midpoint targets in W and in [0, 1], status."""

    x: np.ndarray
    y_w: np.ndarray
    y_scaled: np.ndarray
    status: np.ndarray


@dataclass(frozen=True)
class Span:
    """One held-out house's contiguous evaluation span.

    `aggregate_w` has `predictions + window - 1` gap-free samples; prediction i is the appliance
    power at sample i + window // 2, whose truth is `truth_w[i]`.
    """

    house: int
    start: int            # index of the span's first sample in the loaded house series
    aggregate_w: np.ndarray
    truth_w: np.ndarray
    requested: int        # predictions the suite asked for (more than `predictions`: truncated)

    @property
    def predictions(self) -> int:
        return int(self.truth_w.size)


@dataclass(frozen=True)
class NilmData:
    """Everything training, conversion and evaluation need for one appliance."""

    appliance: str
    train: Split
    val: Split
    spans: tuple[Span, ...]
    representative: np.ndarray

    def test_series(self) -> np.ndarray:
        """The spans' standardised aggregate, one NaN between houses (float32, 1-D)."""
        parts: list[np.ndarray] = []
        for span in self.spans:
            if parts:
                parts.append(np.full(1, np.nan, dtype=np.float32))
            parts.append(standardise_aggregate(span.aggregate_w))
        return np.concatenate(parts).astype(np.float32)

    def test_truth_w(self) -> np.ndarray:
        """True appliance power of every prediction, the spans one after the other (float32)."""
        return np.concatenate([span.truth_w for span in self.spans]).astype(np.float32)

    def test_windows(self) -> np.ndarray:
        """Every window the device slides over `test_series`, (N, window, 1) float32 (host-side
        evaluation of a Keras model; memory: N × window × 4 bytes)."""
        window = self.train.x.shape[1]
        return np.concatenate([make_windows(span.aggregate_w, np.arange(span.predictions), window)
                               for span in self.spans])

    @property
    def segments(self) -> list[int]:
        """Predictions per span, in order (the status rules never join two spans)."""
        return [span.predictions for span in self.spans]


@dataclass(frozen=True)
class _House:
    number: int
    aggregate: np.ndarray
    appliance: np.ndarray
    status: np.ndarray


def _folder(workload: NilmWorkload, data_dir: Path) -> Path:
    dataset = workload.dataset
    if dataset.source == "refit":
        return Path(dataset.path).expanduser()
    return Path(data_dir) / "synthetic" / f"v{DATA_VERSION}_seed{dataset.seed}_days{dataset.days:g}"


def _houses(workload: NilmWorkload, appliance: str, split: str, data_dir: Path) -> list[_House]:
    """Load the houses of one split that have the appliance (synthetic files written if absent)."""
    dataset = workload.dataset
    folder = _folder(workload, data_dir)
    houses = []
    for house in getattr(dataset.houses, split):
        channel = channel_for(appliance, house, dataset.source, dataset.channels)
        if channel is None:
            continue
        if dataset.source == "synthetic" and not house_file(folder, house).is_file():
            generate_house(folder, house, dataset.days, dataset.seed)
        aggregate, power = load_house(folder, house, appliance, channel)
        houses.append(_House(house, aggregate, power, on_off_status(power, appliance)))
    if not houses:
        raise UserError(f"no {split} house has a {appliance} channel",
                        hint="dataset.houses / dataset.channels in the suite")
    return houses


def _split(houses: list[_House], picks: list[np.ndarray], window: int, appliance: str) -> Split:
    """Stack the windows starting at `picks[i]` in `houses[i]`."""
    x = np.concatenate([make_windows(h.aggregate, s, window) for h, s in zip(houses, picks)])
    y_w = np.concatenate([midpoints(h.appliance, s, window) for h, s in zip(houses, picks)])
    status = np.concatenate([midpoints(h.status, s, window) for h, s in zip(houses, picks)])
    return Split(x, y_w.astype(np.float32), scale_target(y_w, appliance), status.astype(bool))


def _near(house: _House, window: int) -> np.ndarray:
    """Samples within `NEAR_FRACTION` of a window of an on-sample of the appliance."""
    reach = max(1, int(window * NEAR_FRACTION))
    return np.convolve(house.status.astype(np.float64), np.ones(2 * reach + 1), mode="same") > 0


def _busy(house: _House) -> np.ndarray:
    """Samples where the aggregate is in its top `1 - BUSY_QUANTILE` (other large loads on)."""
    return np.nan_to_num(house.aggregate) >= np.nanquantile(house.aggregate, BUSY_QUANTILE)


def _sampled(houses: list[_House], workload: NilmWorkload, n: int, seed: int) -> list[np.ndarray]:
    """Up to `n` window starts over the houses: `on_fraction` with the appliance on, the rest off.

    Two thirds of the off windows are hard negatives, the windows a model confuses with the
    target: a third with the appliance on within `NEAR_FRACTION` of a window from the midpoint
    (it must place the activation's edges), a third with other large loads running (aggregate at
    the midpoint in its top `1 - BUSY_QUANTILE`); the last third is drawn from all off windows.
    """
    training, window = workload.training, workload.window
    starts = [valid_starts(h.aggregate, window, training.window_stride) for h in houses]
    owner = np.concatenate([np.full(s.size, i) for i, s in enumerate(starts)])
    flat = np.concatenate(starts)
    half = window // 2
    on = np.concatenate([midpoints(h.status, s, window) for h, s in zip(houses, starts)])
    near = np.concatenate([_near(h, window)[s + half] for h, s in zip(houses, starts)])
    busy = np.concatenate([_busy(h)[s + half] for h, s in zip(houses, starts)])
    rng = np.random.default_rng(seed)
    n = min(n, flat.size)
    take_on = min(int(on.sum()), round(n * training.on_fraction))
    chosen = [rng.choice(np.flatnonzero(on), take_on, replace=False)]
    for pool in (~on & near, ~on & busy & ~near):
        candidates = np.setdiff1d(np.flatnonzero(pool), np.concatenate(chosen))
        chosen.append(rng.choice(candidates, min(candidates.size, (n - take_on) // 3),
                                 replace=False))
    rest = np.setdiff1d(np.flatnonzero(~on), np.concatenate(chosen))
    taken = sum(c.size for c in chosen)
    chosen.append(rng.choice(rest, min(rest.size, n - taken), replace=False))
    picked = np.sort(np.concatenate(chosen))
    return [flat[picked[owner[picked] == i]] for i in range(len(houses))]


def _gap_free(aggregate: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of every NaN-free stretch of a house series."""
    finite = ~np.isnan(aggregate)
    edges = np.diff(np.concatenate(([0], finite.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def contiguous_span(house: int, aggregate: np.ndarray, appliance_w: np.ndarray, window: int,
                    predictions: int, offset: int = 0) -> Span | None:
    """The first gap-free stretch (from sample `offset` on) with room for `predictions` windows,
    cut to that length; when none has room, the longest stretch (fewer predictions). None: no
    stretch holds one window."""
    stretches = [(max(a, offset), b) for a, b in _gap_free(aggregate)
                 if b - max(a, offset) >= window]
    if not stretches:
        return None
    need = predictions + window - 1
    start, end = next(((a, b) for a, b in stretches if b - a >= need),
                      max(stretches, key=lambda ab: ab[1] - ab[0]))
    end = min(end, start + need)
    half = window // 2
    truth = appliance_w[start + half:end - (window - 1 - half)]
    return Span(house, start, aggregate[start:end].astype(np.float32),
                np.nan_to_num(truth).astype(np.float32), predictions)


def _spans(houses: list[_House], workload: NilmWorkload) -> tuple[Span, ...]:
    """One contiguous span per test house (`evaluation.days` of predictions each)."""
    evaluation = workload.evaluation
    predictions = max(1, round(evaluation.days * 86400 / SAMPLE_SECONDS))
    offset = round(evaluation.offset_days * 86400 / SAMPLE_SECONDS)
    spans = [contiguous_span(h.number, h.aggregate, h.appliance, workload.window, predictions,
                             offset) for h in houses]
    return tuple(span for span in spans if span is not None)


def prepare(workload: NilmWorkload, appliance: str, data_dir: Path) -> NilmData:
    """Windows for training (train/val houses), evaluation (test houses) and calibration."""
    training, window = workload.training, workload.window
    train_houses = _houses(workload, appliance, "train", data_dir)
    val_houses = _houses(workload, appliance, "val", data_dir)
    test_houses = _houses(workload, appliance, "test", data_dir)
    train = _split(train_houses, _sampled(train_houses, workload, training.max_train_windows,
                                          training.seed), window, appliance)
    val = _split(val_houses, _sampled(val_houses, workload, training.max_eval_windows,
                                      training.seed + 1), window, appliance)
    spans = _spans(test_houses, workload)
    for name, count in (("train", len(train.x)), ("val", len(val.x)), ("test", len(spans))):
        if count == 0:
            raise UserError(f"the {name} houses have no gap-free stretch of {window} samples",
                            hint="more dataset.days or a smaller window")
    representative = balanced_representative(train.x, train.status,
                                             training.calibration_windows, training.seed)
    return NilmData(appliance, train, val, spans, representative)


def _files_signature(workload: NilmWorkload) -> list[list]:
    """Name, size and mtime of the real REFIT files the suite reads."""
    folder = _folder(workload, Path("."))
    houses = workload.dataset.houses
    rows = []
    for house in sorted({*houses.train, *houses.val, *houses.test}):
        path = house_file(folder, house)
        stat = path.stat() if path.is_file() else None
        rows.append([path.name, stat.st_size if stat else None, stat.st_mtime_ns if stat else None])
    return rows


def data_fingerprint(workload: NilmWorkload, appliance: str) -> str:
    """sha256 of everything that determines `prepare`'s output for this appliance."""
    training = workload.training
    payload = {
        "version": DATA_VERSION,
        "appliance": appliance,
        "window": workload.window,
        "dataset": workload.dataset.model_dump(mode="json"),
        "selection": training.model_dump(include={
            "max_train_windows", "max_eval_windows", "window_stride",
            "on_fraction", "calibration_windows", "seed"}),
        "evaluation": workload.evaluation.model_dump(include={"days", "offset_days"}),
        "files": _files_signature(workload) if workload.dataset.source == "refit" else None,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
