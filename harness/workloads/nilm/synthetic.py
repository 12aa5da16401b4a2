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
    """30 s to 5 min of cooking, about six uses a day around meals.

    The magnetron's inverter makes the power ripple (±6 % from one 8-s sample to the next) about
    the house's 1-1.5 kW rating, where resistive loads (kettle, toaster, heaters) are flat; the
    fan and lamp (60-90 W) run throughout and one sample after. A third of the uses cook at low
    power: the magnetron cycles (3 samples on, 2 off) while the fan and lamp stay on.
    """
    def one(r: np.random.Generator) -> np.ndarray:
        length = int(r.integers(minutes(0.5), minutes(5) + 1))
        fan = r.uniform(60, 90)
        magnetron = (rating_w - fan) * (1 + r.uniform(-0.06, 0.06, length))
        if r.random() < 1 / 3:
            magnetron[np.arange(length) % 5 >= 3] = 0.0
        return np.concatenate([fan + magnetron, [fan]]) + r.normal(0, 5, length + 1)
    return activations(rng, n, 6.0, ((7, 9), (12, 14), (17.5, 21)), one)


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


def _tumble(rng: np.random.Generator, length: int, motor_w: float) -> np.ndarray:
    """Drum turning one way then the other: ~30-50 s at `motor_w`, ~15 s resting at 12-20 W."""
    period = int(rng.integers(5, 8))
    turning = np.arange(length) % period < period - 2
    power = np.where(turning, motor_w, rng.uniform(12, 20))
    return power + rng.normal(0, motor_w * 0.05, length) * turning


def _spin(rng: np.random.Generator, length: int, top_w: float) -> np.ndarray:
    """Spin: the motor ramps up over the first third to `top_w`, with a ±8 % wobble."""
    ramp = np.minimum(1.0, (np.arange(length) + 1) / max(1, length // 3))
    wobble = 1 + 0.08 * np.sin(np.arange(length) * 2.1)
    return np.maximum(15.0, top_w * ramp * wobble + rng.normal(0, 10, length))


def _pump(rng: np.random.Generator, length: int, pump_w: float) -> np.ndarray:
    """Circulation pump: steady `pump_w` with small ripple."""
    return pump_w + rng.normal(0, pump_w * 0.04, length)


def dishwasher(rng: np.random.Generator, n: int, heater_w: float) -> np.ndarray:
    """REFIT-like programme, 95-150 min: pre-rinse, main wash with a 15-25 min heating block,
    wash, drain, hot rinse with an 8-15 min heating block, cold rinse, then passive drying
    (~4 W, electronics only: below the 10-W on-threshold, so the programme's on-time ends there).

    The circulation pump runs at 60-140 W under the heater; the drain pump (30-50 W, 1-2 min)
    separates the stages. About nine programmes a week, in the early afternoon or evening.
    """
    def one(r: np.random.Generator) -> np.ndarray:
        pump = r.uniform(60, 140)

        def drain() -> np.ndarray:
            return _pump(r, int(r.integers(minutes(1), minutes(2) + 1)), r.uniform(30, 50))

        def stage(lo: float, hi: float) -> np.ndarray:
            return _pump(r, int(r.integers(minutes(lo), minutes(hi) + 1)), pump)

        def heat(lo: float, hi: float) -> np.ndarray:
            return stage(lo, hi) + heater_w * r.uniform(0.97, 1.0)

        dry = np.full(int(r.integers(minutes(15), minutes(30) + 1)), 4.0)
        return np.concatenate([stage(5, 10), drain(), heat(15, 25), stage(20, 30), drain(),
                               heat(8, 15), stage(5, 10), drain(), dry + r.normal(0, 1, dry.size)])
    return activations(rng, n, 1.6, ((11, 15), (18, 23)), one)


def washing_machine(rng: np.random.Generator, n: int, heater_w: float) -> np.ndarray:
    """REFIT-like programme, 95-140 min: fill with tumbling, 12-20 min heating (tumbling on top),
    25-40 min tumble wash, two rinses (tumble + short spin each), a 6-10 min final spin.

    Tumbling reverses the drum every ~30-50 s (100-250 W, 12-20 W at rest), spins reach
    350-900 W. About nine programmes a week, in the morning or late afternoon.
    """
    def one(r: np.random.Generator) -> np.ndarray:
        motor, top = r.uniform(100, 250), r.uniform(350, 900)

        def tumble(lo: float, hi: float) -> np.ndarray:
            return _tumble(r, int(r.integers(minutes(lo), minutes(hi) + 1)), motor)

        def spin(lo: float, hi: float, fraction: float = 1.0) -> np.ndarray:
            return _spin(r, int(r.integers(minutes(lo), minutes(hi) + 1)), top * fraction)

        heating = tumble(12, 20) + heater_w * r.uniform(0.97, 1.0)
        return np.concatenate([tumble(4, 8), heating, tumble(25, 40), spin(1, 2, 0.6),
                               tumble(8, 12), spin(1, 2, 0.6), tumble(8, 12), spin(6, 10)])
    return activations(rng, n, 1.6, ((7, 12), (14, 20)), one)


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
