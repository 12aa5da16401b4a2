"""Seeded appliance signatures and household loads for the synthetic REFIT-format generator.

Every function returns a power series in W of length `n` (8-s samples); `rng` drives all randomness.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from harness.workloads.nilm.appliances import SAMPLE_SECONDS

PER_HOUR = 3600 // SAMPLE_SECONDS
PER_DAY = 86400 // SAMPLE_SECONDS


def minutes(value: float) -> int:
    """Minutes → samples."""
    return max(1, round(value * 60 / SAMPLE_SECONDS))


def event_starts(rng: np.random.Generator, n: int, per_day: float,
                 hours: tuple[tuple[float, float], ...]) -> np.ndarray:
    """Poisson number of events per day, each at a uniform time in one of the given hour spans."""
    starts = []
    for day in range(int(np.ceil(n / PER_DAY))):
        for _ in range(rng.poisson(per_day)):
            lo, hi = hours[rng.integers(len(hours))]
            starts.append(day * PER_DAY + int(rng.uniform(lo, hi) * PER_HOUR))
    return np.array([s for s in starts if s < n], dtype=np.int64)


def place(series: np.ndarray, start: int, profile: np.ndarray) -> None:
    """Add `profile` into `series` at `start`, truncated at the end (overlaps add up)."""
    end = min(series.size, start + profile.size)
    series[start:end] += profile[: end - start]


def activations(rng: np.random.Generator, n: int, per_day: float,
                hours: tuple[tuple[float, float], ...],
                profile: Callable[[np.random.Generator], np.ndarray]) -> np.ndarray:
    """`profile` activations at `event_starts`; one starting while another runs is dropped."""
    series = np.zeros(n)
    busy_until = -1
    for start in np.sort(event_starts(rng, n, per_day, hours)):
        shape = profile(rng)
        if start > busy_until:
            place(series, int(start), shape)
            busy_until = int(start) + shape.size
    return series


def kettle(rng: np.random.Generator, n: int, rating_w: float) -> np.ndarray:
    """2-3 kW for 2-4 minutes, power sagging slightly as the element heats."""
    def one(r: np.random.Generator) -> np.ndarray:
        length = r.integers(minutes(2), minutes(4) + 1)
        return rating_w * np.linspace(1.0, 0.97, length) + r.normal(0, 10, length)
    return activations(rng, n, 6.0, ((6.5, 9), (12, 14), (15, 17), (18, 22.5)), one)


def microwave(rng: np.random.Generator, n: int, rating_w: float) -> np.ndarray:
    """1-1.5 kW for 30 s to 5 min; a third of the uses duty-cycle (defrost)."""
    def one(r: np.random.Generator) -> np.ndarray:
        length = r.integers(minutes(0.5), minutes(5) + 1)
        power = np.full(length, rating_w) + r.normal(0, 15, length)
        if r.random() < 1 / 3:
            power[np.arange(length) % 5 >= 3] = 5.0
        return power
    return activations(rng, n, 4.0, ((7, 9), (12, 14), (17.5, 21)), one)


def fridge(rng: np.random.Generator, n: int, rating_w: float) -> np.ndarray:
    """Compressor cycles: 15-25 min at 80-150 W (start-up spike), 25-45 min off at ~1 W."""
    series = np.full(n, 1.0)
    position = int(rng.integers(0, minutes(40)))
    while position < n:
        length = int(rng.integers(minutes(15), minutes(25) + 1))
        cycle = rating_w * (1 + 1.5 * np.exp(-np.arange(length) / 1.5)) + rng.normal(0, 2, length)
        place(series, position, cycle - 1.0)
        position += length + int(rng.integers(minutes(25), minutes(45) + 1))
    return series


def _phases(rng: np.random.Generator, phases: list[tuple[float, float, float, bool]]) -> np.ndarray:
    """Concatenate (power W, min minutes, max minutes, tumbling) phases into one cycle."""
    parts = []
    for power, lo, hi, tumbling in phases:
        length = int(rng.integers(minutes(lo), minutes(hi) + 1))
        part = np.full(length, power) + rng.normal(0, power * 0.03, length)
        if tumbling:
            part[np.arange(length) % 6 >= 4] = 15.0
        parts.append(part)
    return np.concatenate(parts)


def dishwasher(rng: np.random.Generator, n: int, heater_w: float) -> np.ndarray:
    """Wash / heat / wash / heat / rinse / dry cycle, ~1.5 h."""
    def one(r: np.random.Generator) -> np.ndarray:
        return _phases(r, [(70, 5, 10, False), (heater_w, 15, 25, False), (70, 20, 30, False),
                           (heater_w, 8, 12, False), (70, 8, 12, False), (20, 15, 20, False)])
    return activations(rng, n, 0.9, ((13, 14.5), (19, 22)), one)


def washing_machine(rng: np.random.Generator, n: int, heater_w: float) -> np.ndarray:
    """Fill / heat / tumble wash / rinse / spin cycle, ~1.2-1.7 h."""
    def one(r: np.random.Generator) -> np.ndarray:
        return _phases(r, [(180, 4, 6, True), (heater_w, 15, 20, False), (250, 30, 40, True),
                           (200, 15, 20, True), (450, 8, 12, False)])
    return activations(rng, n, 0.9, ((8, 12), (16, 20)), one)


def other_loads(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Other submetered loads: television, computer, lighting circuit, toaster."""
    def block(power: float, lo: float, hi: float) -> Callable[[np.random.Generator], np.ndarray]:
        return lambda r: np.full(int(r.integers(minutes(lo), minutes(hi) + 1)),
                                 power * r.uniform(0.8, 1.2))
    return {
        "television": activations(rng, n, 1.5, ((18, 22),), block(100, 45, 180)),
        "computer": activations(rng, n, 2.0, ((9, 17), (19, 23)), block(110, 20, 120)),
        "lighting": activations(rng, n, 3.0, ((6, 8), (17, 23)), block(120, 30, 150)),
        "toaster": activations(rng, n, 0.5, ((7, 9),), block(850, 2, 3)),
    }


def unmetered(rng: np.random.Generator, n: int) -> np.ndarray:
    """Base load with a daily swing, an occasional 1-2 kW heater and small random loads."""
    hours = np.arange(n) / PER_HOUR
    base = rng.uniform(90, 200) * (1 + 0.25 * np.sin(2 * np.pi * (hours - 14) / 24))
    heater = activations(rng, n, 0.4, ((6, 10), (17, 23)),
                         lambda r: np.full(int(r.integers(minutes(10), minutes(40) + 1)),
                                           r.uniform(1000, 2000)))
    small = activations(rng, n, 8.0, ((0, 24),),
                        lambda r: np.full(int(r.integers(minutes(1), minutes(30) + 1)),
                                          r.uniform(20, 400)))
    return base + heater + small
