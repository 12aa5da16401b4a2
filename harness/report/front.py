"""The accuracy–size–latency front of a run's variants, per target × model, from the tidy table.

Every number is a stored row picked from the table (accuracy, `size_bytes`, a gzip size where a
row has one, the latency median per thread count, `tflm_arena_bytes`); nothing is re-measured or
re-aggregated. What this module derives are decisions over those numbers: which variants are
Pareto-optimal (accuracy maximised or minimised as the metric wants, size and latency minimised),
the recommendations (smallest, least accuracy lost against the float model, fastest, best that
fits the board's declared RAM and flash) and findings such as a variant that saves nothing on
flash. `harness.report.model` turns a `Front` into tables; `harness.report.plots` draws it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Sequence

import pandas as pd

from harness.artifacts.tflm_arena import fits
from harness.compare import default_policy

FLOAT_VARIANT = "convert_only"
# The workload's main accuracy metric: the first of these a model has, else its first accuracy
# metric in table order (a generic workload scores one metric).
MAIN_ACCURACY_METRICS = ("f1", "accuracy", "accuracy_top5", "accuracy_top1", "mcc", "acc", "mae",
                         "rmse")
GZIP_METRICS = ("gzip_bytes",)  # measurement "size" (results/profile_rows.weight_rows)
FRONT_THREADS = 1  # the front and the "fastest" pick use the 1-thread median
SAME_SIZE_TOLERANCE = 0.005  # sizes within 0.5 % of each other count as the same on flash
TECHNIQUES = {"prune": "pruning", "cluster": "clustering"}  # variant name prefix -> technique
MIN_VARIANTS = 2  # a front needs at least this many variants with an accuracy row


def _num(value: Any) -> float | None:
    """A finite float, or None for a missing / NaN / non-numeric value."""
    if value is None or value is pd.NA:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _threads(value: Any) -> int | None:
    number = _num(value)
    return None if number is None else int(number)


# --------------------------------------------------------------------------- Pareto

def dominates(a: Sequence[float | None], b: Sequence[float | None],
              maximise: Sequence[bool]) -> bool:
    """Whether point a dominates point b: at least as good on every objective and strictly better
    on one (so exact ties dominate neither way). A missing objective (None) dominates nothing."""
    if any(v is None for v in (*a, *b)):
        return False
    signed = [(x, y) if up else (-x, -y) for x, y, up in zip(a, b, maximise)]
    return all(x >= y for x, y in signed) and any(x > y for x, y in signed)


def pareto_mask(points: Sequence[Sequence[float | None]], maximise: Sequence[bool]
                ) -> list[bool | None]:
    """Which points no other point dominates (`dominates`); tied points are all optimal. A point
    with a missing objective (None) cannot be compared: it gets None and takes no part in the
    others' verdicts."""
    return [None if any(v is None for v in p) else
            not any(j != i and dominates(q, p, maximise) for j, q in enumerate(points))
            for i, p in enumerate(points)]


# --------------------------------------------------------------------------- records

@dataclass
class VariantPoint:
    """One variant of one model on one target, with the stored numbers the front uses."""

    variant: str
    runtime: str | None
    accuracy: float | None
    accuracy_delta: float | None          # accuracy - float model's, same metric and target
    size_bytes: float | None
    gzip_bytes: float | None
    arena_bytes: float | None
    latency_ms: dict[int | None, float] = field(default_factory=dict)  # median per threads
    front_latency_ms: float | None = None
    pareto: bool | None = None            # None: a missing number, not judged
    beaten_by: list[str] = field(default_factory=list)
    fits: bool | None = None              # None: no limit declared, or a number missing
    fit_reason: str = ""

    @property
    def label(self) -> str:
        return self.variant if self.runtime is None else f"{self.variant} · {self.runtime}"


@dataclass
class Pick:
    """One recommendation (or finding): what it is, which variant, and the numbers behind it."""

    what: str
    variant: str | None
    why: str


@dataclass
class Front:
    """The front of one model on one target."""

    target: str
    model: str
    metric: str
    unit: str
    higher_is_better: bool
    front_threads: int | None
    thread_counts: list[int | None]
    ram_kb: float | None
    flash_kb: float | None
    points: list[VariantPoint]
    picks: list[Pick] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe record (thread-count keys as text) for the HTML page's plot data."""
        record = asdict(self)
        for point in record["points"]:
            point["latency_ms"] = {("n/a" if k is None else str(k)): v
                                   for k, v in point["latency_ms"].items()}
        return record


# --------------------------------------------------------------------------- picking rows

def _ok(frame: pd.DataFrame, measurement: str) -> pd.DataFrame:
    return frame[(frame["status"] == "ok") & (frame["measurement"] == measurement)]


def _runtime(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def main_metric(metrics: Iterable[str]) -> str | None:
    """The main accuracy metric among a model's accuracy metrics (in table order)."""
    seen = list(dict.fromkeys(m for m in metrics if isinstance(m, str)))
    for metric in MAIN_ACCURACY_METRICS:
        if metric in seen:
            return metric
    return seen[0] if seen else None


def _first(data: pd.DataFrame, by: list[str]) -> dict[tuple, float | None]:
    """The first stored value per key (a value stored once per job appears once per runtime)."""
    out: dict[tuple, float | None] = {}
    for row in data.itertuples(index=False):
        key = tuple(getattr(row, c) for c in by)
        if key not in out:
            out[key] = _num(row.value)
    return out


def _latency(frame: pd.DataFrame) -> dict[tuple, dict[int | None, float]]:
    """(target, model, variant, runtime) -> {threads: median_ms}; the runner's rows win over
    another method's for the same key."""
    data = _ok(frame, "latency")
    data = data[data["metric"] == "median_ms"]
    out: dict[tuple, dict[int | None, float]] = {}
    method_of: dict[tuple, Any] = {}
    for row in data.itertuples(index=False):
        value = _num(row.value)
        if value is None:
            continue
        key = (row.target, row.model, row.variant, _runtime(row.runtime))
        threads = _threads(row.threads)
        known = method_of.get(key + (threads,))
        if known is not None and (known == "runner" or row.method != "runner"):
            continue
        method_of[key + (threads,)] = row.method if isinstance(row.method, str) else "runner"
        out.setdefault(key, {})[threads] = value
    return out


def _limits(meta: dict[str, Any], target: str) -> tuple[float | None, float | None]:
    entry = (meta.get("inventory") or {}).get(target) or {}
    return _num(entry.get("ram_kb")), _num(entry.get("flash_kb"))


def _front_threads(points: list[VariantPoint]) -> int | None:
    counts = {t for p in points for t in p.latency_ms}
    if FRONT_THREADS in counts or not counts:
        return FRONT_THREADS
    return min(counts, key=lambda t: (t is not None, t or 0))  # a device without thread counts


# --------------------------------------------------------------------------- the fronts

def fronts(frame: pd.DataFrame, meta: dict[str, Any] | None = None) -> list[Front]:
    """One `Front` per target × model with at least MIN_VARIANTS variants that have accuracy."""
    meta = meta or {}
    accuracy = _ok(frame, "accuracy")
    if accuracy.empty:
        return []
    sizes = _ok(frame, "size")
    size_of = _first(sizes[sizes["metric"] == "size_bytes"], ["target", "model", "variant"])
    gzip_of = _first(sizes[sizes["metric"].isin(GZIP_METRICS)], ["target", "model", "variant"])
    memory = _ok(frame, "memory")
    arena_of = _first(memory[memory["metric"] == "tflm_arena_bytes"],
                      ["target", "model", "variant"])
    latency_of = _latency(frame)
    out = []
    for (target, model), rows in accuracy.groupby(["target", "model"], sort=False):
        metric = main_metric(rows["metric"])
        mine = rows[rows["metric"] == metric]
        values = {}
        for row in mine.itertuples(index=False):
            values.setdefault((row.variant, _runtime(row.runtime)), (_num(row.value), row.unit))
        if len({variant for variant, _ in values}) < MIN_VARIANTS:
            continue
        several_runtimes = len({runtime for _, runtime in values}) > 1
        unit = next((u for _, u in values.values() if isinstance(u, str)), "")
        points = []
        for (variant, runtime), (value, _) in values.items():
            floats = values.get((FLOAT_VARIANT, runtime))
            base = floats[0] if floats and variant != FLOAT_VARIANT else None
            key = (target, model, variant)
            points.append(VariantPoint(
                variant=variant, runtime=runtime if several_runtimes else None, accuracy=value,
                accuracy_delta=None if value is None or base is None else value - base,
                size_bytes=size_of.get(key), gzip_bytes=gzip_of.get(key),
                arena_bytes=arena_of.get(key),
                latency_ms=dict(latency_of.get(key + (runtime,), {}))))
        ram_kb, flash_kb = _limits(meta, target)
        front = Front(target=target, model=model, metric=metric, unit=unit or "",
                      higher_is_better=default_policy("accuracy", metric).higher_is_better,
                      front_threads=_front_threads(points),
                      thread_counts=sorted({t for p in points for t in p.latency_ms},
                                           key=lambda t: (t is None, t or 0)),
                      ram_kb=ram_kb, flash_kb=flash_kb, points=points)
        _mark_front(front)
        _mark_fits(front)
        front.picks = recommendations(front)
        front.findings = flash_findings(front)
        out.append(front)
    return out


def _objectives(p: VariantPoint) -> tuple[float | None, float | None, float | None]:
    return p.accuracy, p.size_bytes, p.front_latency_ms


def _mark_front(front: Front) -> None:
    """Pareto-optimal over (accuracy, size, the front thread count's median), and by whom each
    dominated variant is beaten."""
    for p in front.points:
        p.front_latency_ms = p.latency_ms.get(front.front_threads)
    maximise = (front.higher_is_better, False, False)
    mask = pareto_mask([_objectives(p) for p in front.points], maximise)
    for p, on_front in zip(front.points, mask):
        p.pareto = on_front
        p.beaten_by = [q.label for q in front.points
                       if q is not p and dominates(_objectives(q), _objectives(p), maximise)]


def _mark_fits(front: Front) -> None:
    """Whether each variant fits the board: TFLM arena in RAM and the file in flash, by the same
    rule as the run's `mcu_fits` rows (`harness.artifacts.tflm_arena.fits`)."""
    if front.ram_kb is None and front.flash_kb is None:
        return
    for p in front.points:
        missing = [name for name, limit, value in (("TFLM arena", front.ram_kb, p.arena_bytes),
                                                   ("size", front.flash_kb, p.size_bytes))
                   if limit is not None and value is None]
        if missing:
            p.fits, p.fit_reason = None, f"no {' or '.join(missing)} row"
            continue
        verdict = fits(int(p.arena_bytes or 0), int(p.size_bytes or 0),
                       None if front.ram_kb is None else int(front.ram_kb),
                       None if front.flash_kb is None else int(front.flash_kb))
        p.fits = verdict["fits"]
        parts = []
        for side, name in (("ram", "RAM"), ("flash", "flash")):
            if verdict[f"{side}_fits"] is not None:
                parts.append(f"{name} {verdict[f'{side}_used_pct']:.0f} %")
        p.fit_reason = ", ".join(parts)


# --------------------------------------------------------------------------- recommendations

def kib(value: float | None) -> str:
    """Bytes as KiB/MiB text; '-' for a missing value."""
    if value is None:
        return "-"
    return f"{value / 1024:,.1f} KiB" if value < 1024 ** 2 else f"{value / 1024 ** 2:,.2f} MiB"


def _g(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def _loss(front: Front, p: VariantPoint) -> float | None:
    """Accuracy lost against the float model (positive = worse), in the metric's units."""
    if p.accuracy_delta is None:
        return None
    loss = -p.accuracy_delta if front.higher_is_better else p.accuracy_delta
    return loss + 0.0  # no "-0"


def _better_accuracy(front: Front, p: VariantPoint) -> float:
    """A sort key: lower is better accuracy; missing last."""
    if p.accuracy is None:
        return math.inf
    return -p.accuracy if front.higher_is_better else p.accuracy


def _best(points: list[VariantPoint], key: Any) -> tuple[VariantPoint | None, list[VariantPoint]]:
    """The point with the lowest key and the others that tie with it."""
    if not points:
        return None, []
    ranked = sorted(points, key=key)
    first = ranked[0]
    return first, [p for p in ranked[1:] if key(p)[0] == key(first)[0]]


def _tied(ties: list[VariantPoint]) -> str:
    if not ties:
        return ""
    return (f" (tied with {', '.join(p.label for p in ties)}; a tie goes to the better accuracy, "
            "then the smaller size, then the lower latency)")


def recommendations(front: Front) -> list[Pick]:
    """Smallest model, best accuracy preserved, fastest inference, best that fits the board."""
    points = front.points

    def tiebreak(p: VariantPoint) -> tuple[float, float, float]:
        return (_better_accuracy(front, p), math.inf if p.size_bytes is None else p.size_bytes,
                math.inf if p.front_latency_ms is None else p.front_latency_ms)
    picks = []
    floats = next((p for p in points if p.variant == FLOAT_VARIANT), None)

    sized = [p for p in points if p.size_bytes is not None]
    best, ties = _best(sized, lambda p: (p.size_bytes,) + tiebreak(p))
    if best is None:
        picks.append(Pick("smallest model", None, "no size_bytes rows"))
    else:
        versus = ""
        if floats is not None and floats.size_bytes and best is not floats:
            saved = 1 - best.size_bytes / floats.size_bytes
            versus = f", {saved * 100:.0f} % smaller than the float model"
        picks.append(Pick("smallest model", best.label,
                          f"{kib(best.size_bytes)} on disk{versus}{_tied(ties)}"))

    compared = [p for p in points if p.variant != FLOAT_VARIANT and _loss(front, p) is not None]
    best, ties = _best(compared, lambda p: (_loss(front, p),) + tiebreak(p))
    if best is None:
        reason = ("no float (convert_only) accuracy row to compare with" if floats is None
                  or floats.accuracy is None else "no other variant has an accuracy value")
        picks.append(Pick("best accuracy preserved", None, reason))
    else:
        picks.append(Pick("best accuracy preserved", best.label,
                          f"{front.metric} {_g(best.accuracy)} against {_g(floats.accuracy)} for "
                          f"the float model ({front.metric} loss {_g(_loss(front, best), 3)})"
                          f"{_tied(ties)}"))

    timed = [p for p in points if p.front_latency_ms is not None]
    best, ties = _best(timed, lambda p: (p.front_latency_ms,) + tiebreak(p))
    threads = "no thread count" if front.front_threads is None else \
        f"{front.front_threads} thread{'s' if front.front_threads != 1 else ''}"
    if best is None:
        picks.append(Pick("fastest inference", None, f"no latency median at {threads}"))
    else:
        picks.append(Pick("fastest inference", best.label,
                          f"median {_g(best.front_latency_ms)} ms at {threads}{_tied(ties)}"))

    picks.append(_board_pick(front, tiebreak))
    return picks


def _board_pick(front: Front, tiebreak: Any) -> Pick:
    what = "best that fits the board"
    if front.ram_kb is None and front.flash_kb is None:
        return Pick(what, None, f"no limit declared for {front.target} (inventory ram_kb / "
                                "flash_kb)")
    limits = ", ".join(f"{name} {kib(limit * 1024)}" for name, limit in
                       (("RAM", front.ram_kb), ("flash", front.flash_kb)) if limit is not None)
    fitting = [p for p in front.points if p.fits]
    best, ties = _best(fitting, tiebreak)
    if best is None:
        unknown = [p.label for p in front.points if p.fits is None]
        why = f"none fits {limits}"
        if unknown:
            why += f" ({', '.join(unknown)}: not judged, " \
                   f"{next(p.fit_reason for p in front.points if p.fits is None)})"
        return Pick(what, None, why)
    return Pick(what, best.label,
                f"highest {front.metric} ({_g(best.accuracy)}) of the {len(fitting)} variant(s) "
                f"that fit {limits}: {best.fit_reason}{_tied(ties)}")


def technique(variant: str) -> str:
    """What a variant does, for a sentence: 'pruning' for prune50, else the variant's name."""
    for prefix, name in TECHNIQUES.items():
        if variant.startswith(prefix):
            return name
    return variant


def flash_findings(front: Front) -> list[str]:
    """Variants that take the same flash as an earlier one (float first), and what gzip saves.

    Sizes within SAME_SIZE_TOLERANCE count as the same. gzip's saving is against the reference's
    gzip size where both have one, else against the variant's own size on disk.
    """
    order = sorted(front.points, key=lambda p: p.variant != FLOAT_VARIANT)
    found = []
    for i, p in enumerate(order):
        if p.size_bytes is None:
            continue
        reference = next((r for r in order[:i] if r.size_bytes is not None and abs(
            r.size_bytes - p.size_bytes) <= SAME_SIZE_TOLERANCE * max(r.size_bytes, 1)), None)
        if reference is None:
            continue
        if p.gzip_bytes is not None and reference.gzip_bytes is not None:
            saved = 1 - p.gzip_bytes / reference.gzip_bytes
            gzip = (f"gzip saves {saved * 100:.0f} %", f"; gzipped {kib(p.gzip_bytes)} against "
                                               f"{kib(reference.gzip_bytes)} for {reference.label}")
        elif p.gzip_bytes is not None:
            saved = 1 - p.gzip_bytes / p.size_bytes
            gzip = (f"gzip saves {saved * 100:.0f} %", f"; gzipped {kib(p.gzip_bytes)}")
        else:
            gzip = ("no gzip size recorded", "")
        found.append(f"{technique(p.variant)} saves nothing on flash without compression "
                     f"({gzip[0]}): {p.label} takes {kib(p.size_bytes)}, the same as "
                     f"{reference.label} ({kib(reference.size_bytes)}){gzip[1]}")
    return found
