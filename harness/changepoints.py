"""Change points in a history series (one row key over nights), with Apache Otava's E-divisive.

Pure: a list of (run_id, timestamp, value) in, the change points out. The detection is Otava's
(`otava.analysis.compute_change_points`: the Hunter variant of Matteson & James' E-divisive -
sliding-window splits, then a merge step that keeps only points whose two sides differ by a
Student t-test at `max_pvalue` and by at least `min_magnitude`); this module only maps its output
back to runs. A night-to-night comparison sees one step; a change point sees a level shift that a
series of small steps built up, or one that a noisy night hid.

At Otava's default significance (0.001) about 4 in 100 flat, noisy 40-night series still show a
small spurious point (the sliding windows test many candidates): to alert on a series, set
`min_magnitude` to the size that matters (e.g. half the regression threshold).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

DEFAULT_MAX_PVALUE = 0.001
DEFAULT_WINDOW = 50


@dataclass(frozen=True)
class ChangePoint:
    """A level shift: the series' values from `index` on differ from those before it."""

    index: int                 # position in the given series of the first run of the new level
    run_id: str
    timestamp: Any
    before_mean: float         # mean of the segment before (up to the previous change point)
    after_mean: float          # mean of the segment after (up to the next change point)
    relative_change: float     # after_mean / before_mean - 1
    p_value: float             # Otava's two-sided t-test between the two segments


def change_points(series: Sequence[tuple[str, Any, float | None]], *,
                  max_pvalue: float = DEFAULT_MAX_PVALUE, min_magnitude: float = 0.0,
                  window: int = DEFAULT_WINDOW) -> list[ChangePoint]:
    """The change points of one history series, oldest first.

    `series`: (run_id, timestamp, value) in time order (oldest first); points without a finite
    value (a failed night) are skipped, and indices refer to the series as given. `max_pvalue`:
    the significance a change point must reach; `min_magnitude`: the relative change below which
    a significant point is still dropped (0: keep all significant ones); `window`: Otava's
    sliding-window length.
    """
    from otava.analysis import compute_change_points

    kept = [(i, float(v)) for i, (_, _, v) in enumerate(series)
            if v is not None and math.isfinite(float(v))]
    if len(kept) < 2:
        return []
    values = [v for _, v in kept]
    # a plain list: Otava windows the series only when it is not already a numpy array
    points, _weak = compute_change_points(values, window_len=window, max_pvalue=max_pvalue,
                                          min_magnitude=min_magnitude)
    out = []
    for point in sorted(points, key=lambda p: p.index):
        index = kept[point.index][0]
        run_id, timestamp, _ = series[index]
        before, after = float(point.stats.mean_1), float(point.stats.mean_2)
        out.append(ChangePoint(index=index, run_id=str(run_id), timestamp=timestamp,
                               before_mean=before, after_mean=after,
                               relative_change=after / before - 1 if before else math.nan,
                               p_value=float(point.stats.pvalue)))
    return out
