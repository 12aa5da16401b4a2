"""Static plots for the HTML report: matplotlib figures as inline SVG strings.

Each function takes the records of `harness.report.plot_data` and returns one `Plot` (an `<svg>`
element ready to inline, or None when there is nothing to draw). No pyplot: figures are built with
`matplotlib.figure.Figure` and saved by the SVG backend, so importing this module changes no global
backend. Text stays text (`svg.fonttype: none`) in DejaVu Sans, the font matplotlib measures with;
the page embeds a subset of that font, so the layout holds offline on any machine. Every point or
bar carries an SVG `<title>` (the browser's tooltip) with its exact value.
"""

from __future__ import annotations

import html
import io
import math
import re
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import matplotlib
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from harness.report.plot_data import FLOAT_VARIANT, LATENCY_BAND, PARETO_ACCURACY

FONT = "DejaVu Sans"
MAX_ZOOM = 1.2  # a figure is shown at most this much larger than its natural size
INK = "#1f2937"
MUTED = "#6b7280"
GRID = "#e5e7eb"
BAD = "#dc2626"
# Okabe-Ito (colour-blind safe), one colour per quantization mode, the same in every plot.
VARIANT_COLOURS = {"convert_only": "#374151", "w8": "#0072B2", "w8_a8": "#D55E00",
                   "w8_a16": "#009E73", "f16": "#CC79A7", "w8_a8_denylist": "#E69F00"}
SPARE_COLOURS = ["#56B4E9", "#8c564b", "#7f7f7f", "#bcbd22", "#17becf", "#9467bd"]
OP_COLOURS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1",
              "#ff9da7", "#9c755f", "#bab0ac"]
DECISION_COLOURS = {"REGRESSED": BAD, "SAME": "#16a34a", "IMPROVED": "#2563eb",
                    "UNKNOWN": "#d97706"}
STYLE = {
    "svg.fonttype": "none", "font.family": "sans-serif", "font.sans-serif": [FONT],
    "font.size": 9, "axes.titlesize": 10, "axes.titleweight": "bold", "axes.titlelocation": "left",
    "axes.labelsize": 9, "axes.labelcolor": INK, "axes.edgecolor": "#9ca3af",
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True,
    "grid.color": GRID, "grid.linewidth": 0.8, "axes.axisbelow": True,
    "xtick.color": MUTED, "ytick.color": MUTED, "xtick.labelsize": 8, "ytick.labelsize": 8,
    "text.color": INK, "legend.frameon": False, "legend.fontsize": 8.5,
    "figure.facecolor": "white", "axes.facecolor": "white", "path.simplify": True,
}


@dataclass
class Plot:
    """One rendered figure: an inline `<svg>` element and a short caption."""

    name: str
    svg: str
    caption: str


def variant_colour(variant: str) -> str:
    """The colour of a quantization mode; modes outside the palette get a stable spare colour."""
    if variant in VARIANT_COLOURS:
        return VARIANT_COLOURS[variant]
    spare = sum(ord(c) for c in variant) % len(SPARE_COLOURS)
    return SPARE_COLOURS[spare]


def variant_order(variants: Any) -> list[str]:
    """Quantization modes in the canonical order (float first), unknown ones after, as seen."""
    seen = list(dict.fromkeys(variants))
    known = [v for v in VARIANT_COLOURS if v in seen]
    return known + [v for v in seen if v not in VARIANT_COLOURS]


@contextmanager
def _style() -> Iterator[None]:
    with matplotlib.rc_context(STYLE):
        yield


class _Tooltips:
    """Collects `<title>` texts for artists, referenced by SVG id."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.texts: dict[str, str] = {}

    def add(self, artist: Any, text: str) -> None:
        gid = f"{self.name}-tt{len(self.texts)}"
        artist.set_gid(gid)
        self.texts[gid] = text


def _to_svg(fig: Figure, name: str, tips: _Tooltips) -> str:
    """Save a figure as an inline `<svg>` element with tooltips and ids unique to `name`."""
    buffer = io.StringIO()
    with matplotlib.rc_context({**STYLE, "svg.hashsalt": name}):
        fig.savefig(buffer, format="svg",
                    metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    text = buffer.getvalue()
    text = text[text.index("<svg"):]
    width_pt = float(re.search(r'<svg[^>]*? width="([\d.]+)pt"', text).group(1))
    max_px = round(width_pt * 96 / 72 * MAX_ZOOM)
    text = re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"',
                  rf'<svg\1 class="plot-svg" data-plot="{name}" role="img" '
                  rf'style="max-width:{max_px}px"', text, count=1)
    for gid, tip in tips.texts.items():
        text = text.replace(f'<g id="{gid}">', f'<g id="{gid}"><title>{html.escape(tip)}</title>',
                            1)
    return text.strip()


LONG_CHART_ROWS = 16
PANEL_ROW_WIDTH = {1: 6.2, 2: 9.0, 3: 11.0}  # inches: a row of 1, 2 or 3 small multiples


def _legend_cols(cols: int, handles: int) -> int:
    return min(handles, 3 if cols == 1 else 6)


def _grid(count: int, max_cols: int = 3) -> tuple[int, int]:
    cols = max(1, min(count, max_cols))
    return math.ceil(count / cols), cols


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.3g} µs" if value < 1 else f"{value:.4g} ms"


def _kib(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1024:,.1f} KiB" if value < 1024 ** 2 else f"{value / 1024 ** 2:,.2f} MiB"


def _label(parts: list[Any]) -> str:
    return " · ".join(str(p) for p in parts if p not in (None, ""))


def _rows_axis(ax: Any, labels: list[str]) -> None:
    """A horizontal-bar axis: one row per label, first at the top, no padding; long charts get
    their value axis repeated on top."""
    ax.set_yticks(range(len(labels)), labels)
    ax.set_ylim(len(labels) - 0.5, -0.5)
    ax.grid(axis="y", visible=False)
    if len(labels) > LONG_CHART_ROWS:
        ax.tick_params(axis="x", labeltop=True)


def _hide_unused(axes: list[Any], used: int) -> None:
    for ax in axes[used:]:
        ax.set_visible(False)


# --------------------------------------------------------------------------- latency

def latency_plot(points: list[dict[str, Any]], target: str) -> Plot | None:
    """Median latency per thread count, one panel per model, p10–p90 as a bar (min–p90 for rows
    without a stored p10), invalid hollow."""
    points = [p for p in points if p["target"] == target]
    if not points:
        return None
    name = f"latency-{_slug(target)}"
    tips = _Tooltips(name)
    models = list(dict.fromkeys(p["model"] for p in points))
    rows, cols = _grid(len(models))
    with _style():
        fig = Figure(figsize=(PANEL_ROW_WIDTH[cols], 2.8 * rows + 0.7), layout="constrained")
        axes = list(fig.subplots(rows, cols, squeeze=False).flat)
        variants_seen: dict[str, None] = {}
        fallback = False  # a band drawn from the minimum (a row without p10)
        for ax, model in zip(axes, models):
            mine = [p for p in points if p["model"] == model]
            threads = sorted({p["threads"] for p in mine}, key=lambda t: (t is None, t or 0))
            position = {t: i for i, t in enumerate(threads)}
            series = list(dict.fromkeys((p["variant"], p["runtime"], p["method"]) for p in mine))
            runtimes = {s[1] for s in series}
            methods = {s[2] for s in series}
            width = min(0.7 / max(len(series), 1), 0.16)
            for j, (variant, runtime, method) in enumerate(series):
                variants_seen[variant] = None
                colour = variant_colour(variant)
                offset = (j - (len(series) - 1) / 2) * width
                line = sorted((p for p in mine if (p["variant"], p["runtime"], p["method"])
                               == (variant, runtime, method)),
                              key=lambda p: position[p["threads"]])
                xs = [position[p["threads"]] + offset for p in line]
                ax.plot(xs, [p["median_ms"] for p in line], color=colour, lw=1.2, alpha=0.55,
                        zorder=2)
                label = _label([variant, runtime if len(runtimes) > 1 else None,
                                method if len(methods) > 1 else None])
                for x, p in zip(xs, line):
                    low, high = p["band_low"], p["p90_ms"]
                    if low is not None and high is not None:
                        ax.vlines(x, low, high, color=colour, lw=2.2, alpha=0.35, zorder=1)
                        fallback |= p["band_low_metric"] != LATENCY_BAND[0]
                    invalid = p["valid"] is False
                    (dot,) = ax.plot([x], [p["median_ms"]], "o", ms=6.5, zorder=3,
                                     mfc="white" if invalid else colour, mec=colour, mew=1.6)
                    tips.add(dot, f"{model} · {label} · {p['threads']} thread(s)\n"
                                  f"median {_ms(p['median_ms'])}, p10 {_ms(p['p10_ms'])}, "
                                  f"p90 {_ms(high)}, p99 {_ms(p['p99_ms'])}, "
                                  f"min {_ms(p['min_ms'])}, n {p['n']}"
                                  + (f"\ninvalid: {p['hint']}" if invalid else ""))
            ax.set_xticks(range(len(threads)),
                          ["n/a" if t is None else str(t) for t in threads])
            ax.set_xlim(-0.5, len(threads) - 0.5)
            ax.set_ylim(bottom=0)
            ax.set_title(model)
            ax.set_xlabel("threads")
            ax.set_ylabel("latency (ms)")
            ax.grid(axis="x", visible=False)
        _hide_unused(axes, len(models))
        handles = [Line2D([], [], color=variant_colour(v), marker="o", lw=1.2, label=v)
                   for v in variant_order(variants_seen)]
        handles += [Line2D([], [], color=MUTED, marker="o", ls="", label="median (valid)"),
                    Line2D([], [], color=MUTED, marker="o", mfc="white", ls="",
                           label="median, invalid (hover: why)"),
                    Line2D([], [], color=MUTED, lw=4, alpha=0.35,
                           label="p10 – p90" + (" (min – p90 where no p10 is stored)"
                                                if fallback else ""))]
        fig.legend(handles=handles, loc="outside upper center",
                   ncol=_legend_cols(cols, len(handles)))
        svg = _to_svg(fig, name, tips)
    return Plot(name, svg, f"Latency on {target}: median per thread count (dot), p10 to p90 "
                           "(bar), as stored in results.csv"
                           + (" (min to p90 for rows stored without p10)" if fallback else "")
                           + ". Hollow dots failed the validity check.")


# --------------------------------------------------------------------------- Pareto

def pareto_plot(points: list[dict[str, Any]], target: str) -> Plot | None:
    """Accuracy against median latency per model; marker area = size on disk; front drawn."""
    points = [p for p in points if p["target"] == target]
    if not points:
        return None
    metric, unit, better = PARETO_ACCURACY
    name = f"pareto-{_slug(target)}"
    tips = _Tooltips(name)
    models = list(dict.fromkeys(p["model"] for p in points))
    biggest = max((p["size_bytes"] or 0 for p in points), default=0) or 1
    rows, cols = _grid(len(models))
    with _style():
        fig = Figure(figsize=(PANEL_ROW_WIDTH[cols], 3.0 * rows + 0.7), layout="constrained")
        axes = list(fig.subplots(rows, cols, squeeze=False).flat)
        variants_seen: dict[str, None] = {}
        for ax, model in zip(axes, models):
            mine = sorted((p for p in points if p["model"] == model), key=lambda p: p["median_ms"])
            front = [p for p in mine if p["on_front"]]
            if len(front) > 1:
                ax.step([p["median_ms"] for p in front], [p["accuracy"] for p in front],
                        where="post", color=MUTED, lw=1.1, ls="--", zorder=1)
            for p in mine:
                variants_seen[p["variant"]] = None
                area = 40 + 360 * (p["size_bytes"] or 0) / biggest
                dot = ax.scatter([p["median_ms"]], [p["accuracy"]], s=area,
                                 zorder=4 if p["on_front"] else 3,
                                 color=variant_colour(p["variant"]),
                                 alpha=0.95 if p["on_front"] else 0.45,
                                 edgecolors=INK if p["is_float"] else "white",
                                 linewidths=1.8 if p["is_float"] else 0.8,
                                 marker="D" if p["is_float"] else "o")
                tips.add(dot, f"{model} · {p['variant']}"
                              + (" (float)" if p["is_float"] else "")
                              + f"\nmedian {_ms(p['median_ms'])} at {p['threads']} thread(s)\n"
                                f"{metric.upper()} {p['accuracy']:.4g} {unit}, F1 "
                                f"{'-' if p['f1'] is None else format(p['f1'], '.3g')}, "
                                f"size {_kib(p['size_bytes'])}"
                              + ("\non the Pareto front" if p["on_front"] else ""))
                if p["is_float"]:
                    reach = math.sqrt(area) / 2 + 2
                    ax.annotate("float", (p["median_ms"], p["accuracy"]), xytext=(reach, reach),
                                textcoords="offset points", fontsize=8, color=INK, zorder=5)
            ax.margins(x=0.18, y=0.22)
            ax.set_title(model)
            ax.set_xlabel(f"median latency (ms, {mine[0]['threads']} thread)")
            ax.set_ylabel(f"{metric.upper()} ({unit}, {better} is better)")
        _hide_unused(axes, len(models))
        handles = [Line2D([], [], color=variant_colour(v), marker="D" if v == FLOAT_VARIANT
                          else "o", ls="", ms=7, label=v) for v in variant_order(variants_seen)]
        handles += [Line2D([], [], color=MUTED, ls="--", label="Pareto front (solid points)"),
                    Line2D([], [], color="white", marker="o", mfc=MUTED, ms=9, ls="",
                           label="marker area ∝ size on disk")]
        fig.legend(handles=handles, loc="outside upper center",
                   ncol=_legend_cols(cols, len(handles)))
        svg = _to_svg(fig, name, tips)
    return Plot(name, svg, f"Accuracy against latency on {target}: one point per quantization "
                           "mode; points on the dashed front are not beaten on both axes by any "
                           "other mode of the same model. The diamond is the float model.")


# --------------------------------------------------------------------------- profile

def profile_plot(data: dict[str, Any]) -> Plot | None:
    """Stacked time per node type per model variant; whole-model median as a tick; sum/whole."""
    bars = data["bars"]
    if not bars:
        return None
    name = "profile"
    tips = _Tooltips(name)
    types = data["types"]
    colours = {t: ("#d1d5db" if t == "other" else OP_COLOURS[i % len(OP_COLOURS)])
               for i, t in enumerate(types)}
    several_targets = len({b["target"] for b in bars}) > 1
    several_methods = len({b["method"] for b in bars}) > 1
    labels = [_label([b["target"] if several_targets else None, b["model"], b["variant"],
                      b["method"] if several_methods else None]) for b in bars]
    with _style():
        fig = Figure(figsize=(11, 0.34 * len(bars) + 1.3), layout="constrained")
        ax = fig.subplots()
        longest = max(max(sum(b["types"].values()), b["whole_ms"] or 0) for b in bars)
        lefts = [0.0] * len(bars)
        for node_type in types:
            widths = [bar["types"].get(node_type, 0.0) for bar in bars]
            rects = ax.barh(range(len(bars)), widths, left=lefts, height=0.62,
                            color=colours[node_type], edgecolor="white", linewidth=0.6)
            for row, (rect, ms) in enumerate(zip(rects, widths)):
                if ms:
                    share = ms / sum(bars[row]["types"].values())
                    tips.add(rect, f"{labels[row]}\n{node_type}: {_ms(ms)} "
                                   f"({share:.0%} of op time)")
                else:
                    rect.set_visible(False)
            lefts = [left + width for left, width in zip(lefts, widths)]
        for row, bar in enumerate(bars):
            left = lefts[row]
            if bar["whole_ms"] is not None:
                (tick,) = ax.plot([bar["whole_ms"]], [row], marker="|", ms=15, mew=2.2,
                                  color=INK, ls="")
                tips.add(tick, f"{labels[row]}\nwhole model median {_ms(bar['whole_ms'])}")
            ratio = "-" if bar["ratio"] is None else f"{bar['ratio']:.2f}"
            ax.text(max(left, bar["whole_ms"] or 0) + longest * 0.012, row,
                    f"sum/whole {ratio}", va="center", fontsize=8, color=MUTED)
        _rows_axis(ax, labels)
        ax.set_xlim(0, longest * 1.2)
        ax.set_xlabel("time per inference (ms)")
        handles = [Patch(color=colours[t], label=t) for t in types]
        handles.append(Line2D([], [], marker="|", ms=12, mew=2.2, color=INK, ls="",
                              label="whole model (median)"))
        fig.legend(handles=handles, loc="outside upper center", ncol=min(len(handles), 6))
        svg = _to_svg(fig, name, tips)
    return Plot(name, svg, "Where the time goes: per-operator medians summed by node type "
                           "(bars); the black tick is the whole-model median; sum/whole near 1 "
                           "means the split accounts for the whole inference.")


# --------------------------------------------------------------------------- memory

MEMORY_PANELS = [("size_bytes", "size on disk (KiB)", 1 / 1024),
                 ("rss_footprint_mb", "RSS footprint (MB)", 1.0),
                 ("tflm_arena_bytes", "TFLM arena (KiB)", 1 / 1024)]


def memory_plot(records: list[dict[str, Any]]) -> Plot | None:
    """Bars per model variant: size on disk, RSS footprint, TFLM arena (against board RAM)."""
    if not records:
        return None
    name = "memory"
    tips = _Tooltips(name)
    panels = [p for p in MEMORY_PANELS if any(r[p[0]] is not None for r in records)]
    several_targets = len({r["target"] for r in records}) > 1
    labels = [_label([r["target"] if several_targets else None, r["model"], r["variant"]])
              for r in records]
    with _style():
        fig = Figure(figsize=(11, 0.3 * len(records) + 1.2), layout="constrained")
        axes = list(fig.subplots(1, len(panels), sharey=True, squeeze=False).flat)
        for ax, (metric, title, scale) in zip(axes, panels):
            top = 0.0
            for row, record in enumerate(records):
                value = record[metric]
                if value is None:
                    continue
                shown = value * scale
                top = max(top, shown)
                (rect,) = ax.barh(row, shown, height=0.62,
                                  color=variant_colour(record["variant"]))
                text = _kib(value) if metric.endswith("bytes") else f"{value:.3g} MB"
                ram = record["ram_kb"] if metric == "tflm_arena_bytes" else None
                if ram:
                    text += f" of {ram:g} KiB RAM ({value / 1024 / ram:.0%})"
                    ax.vlines(ram, row - 0.42, row + 0.42, color=BAD, lw=1.6, ls="--")
                    top = max(top, ram)
                tips.add(rect, f"{labels[row]}\n{title.split(' (')[0]}: {text}")
                share = f" ({value / 1024 / ram:.0%} of RAM)" if ram else ""
                ax.text(shown, row, f" {shown:.3g}{share}", va="center", fontsize=7.5,
                        color=MUTED)
            ax.set_xlim(0, top * 1.3 or 1)
            ax.set_title(title)
            _rows_axis(ax, labels)
        if any(r["ram_kb"] for r in records) and "tflm_arena_bytes" in [p[0] for p in panels]:
            fig.legend(handles=[Line2D([], [], color=BAD, ls="--", label="board RAM (inventory "
                                                                         "ram_kb)")],
                       loc="outside upper right")
        svg = _to_svg(fig, name, tips)
    ram_note = ("; the red dashed line is the board's RAM from the inventory"
                if any(r["ram_kb"] for r in records) else
                "; no target in this run gives ram_kb in the inventory")
    return Plot(name, svg, "Memory and size per model variant, coloured by quantization mode"
                           + ram_note + ".")


# --------------------------------------------------------------------------- comparison

def comparison_plot(rows: list[dict[str, Any]]) -> Plot | None:
    """Forest plot: each row's ratio (current / baseline) with its interval, against threshold."""
    rows = [r for r in rows if r["ratio"] is not None and r["ratio"] > 0]  # log axis
    if not rows:
        return None
    name = "comparison"
    tips = _Tooltips(name)
    labels = [_label([r["target"], r["model"], r["variant"],
                      None if r["threads"] is None else f"{r['threads']}t", r["metric"]])
              for r in rows]
    with _style():
        fig = Figure(figsize=(11, 0.32 * len(rows) + 1.3), layout="constrained")
        ax = fig.subplots()
        ax.set_xscale("log")
        span = [r["ratio"] for r in rows]
        for row, r in enumerate(rows):
            colour = DECISION_COLOURS.get(r["decision"], MUTED)
            low, high = r["ci_low"], r["ci_high"]
            if low is not None and high is not None and low > 0:
                ax.hlines(row, low, high, color=colour, lw=2.2, alpha=0.6)
                span += [low, high]
            if r["threshold"] is not None:
                limit = 1 + r["threshold"]
                ax.vlines(limit, row - 0.38, row + 0.38, color=BAD, lw=1.3, ls=":")
                span.append(limit)
            (dot,) = ax.plot([r["ratio"]], [row], "s", ms=7, color=colour)
            interval = ("-" if low is None or high is None else f"[{low:.3f}, {high:.3f}]")
            threshold = "-" if r["threshold"] is None else f"+{r['threshold']:.0%}"
            tips.add(dot, f"{labels[row]}\nratio {r['ratio']:.4f}, interval {interval}, "
                          f"threshold {threshold}: {r['decision']}")
            ax.annotate(r["decision"], (1, row), xycoords=("axes fraction", "data"),
                        xytext=(6, 0), textcoords="offset points", va="center", fontsize=8,
                        color=colour, fontweight="bold")
        ax.axvline(1.0, color=INK, lw=1)
        plain = FuncFormatter(lambda value, _: f"{value:g}")
        ax.xaxis.set_major_formatter(plain)
        ax.xaxis.set_minor_formatter(plain)
        low, high = min(span), max(span)
        pad = (high / low) ** 0.08 if high > low else 1.05
        ax.set_xlim(min(low, 1) / pad, max(high, 1) * pad)
        _rows_axis(ax, labels)
        ax.set_xlabel("ratio current / baseline (log scale; 1 = no change)")
        decisions = list(dict.fromkeys(r["decision"] for r in rows))
        handles = [Line2D([], [], color=DECISION_COLOURS.get(d, MUTED), marker="s", lw=2.2,
                          label=d) for d in decisions]
        handles.append(Line2D([], [], color=BAD, ls=":", label="1 + threshold"))
        fig.legend(handles=handles, loc="outside upper center", ncol=len(handles))
        svg = _to_svg(fig, name, tips)
    return Plot(name, svg, "Comparison with the baseline: each row's ratio (square) and its "
                           "interval (line); the dotted red tick is where a regression starts.")


# --------------------------------------------------------------------------- history

LINE_STYLES = ["-", "--", ":", "-."]


def history_plot(series: list[dict[str, Any]]) -> Plot | None:
    """Each series over runs, one panel per target × model × metric; change points in red."""
    if not series:
        return None
    name = "history"
    tips = _Tooltips(name)
    runs = sorted({(run["timestamp"] or "", run["run_id"]) for s in series for run in s["runs"]})
    position = {run_id: i for i, (_, run_id) in enumerate(runs)}
    panels = list(dict.fromkeys((s["target"], s["model"], s["metric"]) for s in series))
    rows, cols = _grid(len(panels), 2)
    with _style():
        fig = Figure(figsize=(7.5 if cols == 1 else 11, 3.0 * rows + 0.8), layout="constrained")
        axes = list(fig.subplots(rows, cols, squeeze=False).flat)
        variants_seen: dict[str, None] = {}
        step = max(1, math.ceil(len(runs) / 8))
        threads = sorted({s["threads"] or 0 for s in series})
        for ax, panel in zip(axes, panels):
            mine = [s for s in series if (s["target"], s["model"], s["metric"]) == panel]
            for s in mine:
                variants_seen[s["variant"]] = None
                colour = variant_colour(s["variant"])
                points = [r for r in s["runs"] if r["value"] is not None]
                xs = [position[r["run_id"]] for r in points]
                style = LINE_STYLES[threads.index(s["threads"] or 0) % len(LINE_STYLES)]
                (line,) = ax.plot(xs, [r["value"] for r in points], color=colour, lw=1.4,
                                  ls=style, marker="o", ms=3.5)
                tips.add(line, f"{s['variant']} · {s['threads'] or 'n/a'} thread(s)")
                for r in points:
                    if r["change_point"]:
                        (mark,) = ax.plot([position[r["run_id"]]], [r["value"]], "o", ms=11,
                                          mfc="none", mec=BAD, mew=2)
                        ax.axvline(position[r["run_id"]], color=BAD, lw=1, ls="--", alpha=0.6)
                        tips.add(mark, f"change point: {s['variant']} "
                                       f"{s['threads'] or ''} thread(s) at run {r['run_id']} "
                                       f"({r['value']:.4g})")
            ax.set_title(_label(panel))
            ax.set_xticks(range(0, len(runs), step),
                          [(runs[i][0] or runs[i][1])[:16].replace("T", " ")
                           for i in range(0, len(runs), step)], rotation=30, ha="right")
            ax.set_xlim(-0.5, len(runs) - 0.5)
            ax.set_ylabel(panel[2])
        _hide_unused(axes, len(panels))
        handles = [Line2D([], [], color=variant_colour(v), marker="o", ms=4, label=v)
                   for v in variant_order(variants_seen)]
        if len(threads) > 1:
            handles += [Line2D([], [], color=MUTED, ls=LINE_STYLES[i % len(LINE_STYLES)],
                               label=f"{t or 'n/a'} thread{'s' if t != 1 else ''}")
                        for i, t in enumerate(threads)]
        handles.append(Line2D([], [], color=BAD, marker="o", mfc="none", ls="--",
                              label="change point"))
        fig.legend(handles=handles, loc="outside upper center", ncol=min(len(handles), 6))
        svg = _to_svg(fig, name, tips)
    return Plot(name, svg, "Each series over the stored runs (oldest left); a red ring and "
                           "dashed line mark a detected change point. Line styles separate "
                           "thread counts of one mode.")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "x"
