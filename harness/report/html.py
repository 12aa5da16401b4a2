"""Render a run (and optionally its comparison and history) as one self-contained HTML page.

The page works offline: styles, the sorting script, the plot font (a subset of DejaVu Sans, the
font matplotlib lays the plots out with) and the plots (inline SVG) are all in the file, and a
Content-Security-Policy forbids any request. Plots come first, then the same tables as report.md
(`harness.report.model`), sortable by clicking a column header. The numbers every plot draws are
embedded as JSON (`<script type="application/json" id="plot-data">`), keyed by plot.
"""

from __future__ import annotations

import base64
import functools
import html
import io
import json
import re
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import pandas as pd

from harness.report import plot_data, plots
from harness.report.model import Report, Table, build_report, fmt

FONT_CHARS = ("".join(chr(c) for c in range(0x20, 0x7F))
              + "µ–—·×≤≥∝Δ≈→←−…°±²³½¼éèüöäÅ‰•")


class HistoryData(NamedTuple):
    """Series over runs and their change points, for the trends section.

    series: DataFrame with columns run_id, timestamp, target, model, variant, threads, metric, value
    (`plot_data.series_from_trend` makes it from `History.trend(...)`).
    change_points: [(series key, run_id)], series key = (target, model, variant, threads, metric).
    """

    series: pd.DataFrame
    change_points: Sequence[tuple[tuple, str]]


# --------------------------------------------------------------------------- page parts

@functools.lru_cache(maxsize=1)
def _font_faces() -> str:
    """@font-face rules with a WOFF subset of matplotlib's DejaVu Sans (regular and bold)."""
    import matplotlib
    from fontTools import subset

    rules = []
    for file, weight in (("DejaVuSans.ttf", "normal"), ("DejaVuSans-Bold.ttf", "bold")):
        path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / file
        options = subset.Options()
        options.flavor = "woff"
        options.layout_features = ["kern", "liga"]
        options.drop_tables += ["FFTM"]
        font = subset.load_font(str(path), options)
        subsetter = subset.Subsetter(options)
        subsetter.populate(text=FONT_CHARS)
        subsetter.subset(font)
        buffer = io.BytesIO()
        subset.save_font(font, buffer, options)
        data = base64.b64encode(buffer.getvalue()).decode("ascii")
        rules.append(f'@font-face{{font-family:"{plots.FONT}";font-weight:{weight};'
                     f'src:url(data:font/woff;base64,{data}) format("woff");}}')
    return "\n".join(rules)


CSS = """
:root{--ink:#1f2937;--muted:#6b7280;--line:#e5e7eb;--bg:#f6f7f9;--card:#fff;--accent:#0072B2}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);
 font:15px/1.5 system-ui,-apple-system,"Segoe UI","DejaVu Sans",sans-serif}
header{background:#111827;color:#f9fafb;padding:22px 32px 16px}
header h1{margin:0 0 6px;font-size:22px;font-weight:650}
header ul{margin:0;padding:0;list-style:none;color:#d1d5db;font-size:13px}
nav{position:sticky;top:0;z-index:2;background:#fff;border-bottom:1px solid var(--line);
 padding:8px 32px;font-size:13px;display:flex;flex-wrap:wrap;gap:4px 18px}
nav a{color:var(--accent);text-decoration:none}nav a:hover{text-decoration:underline}
main{max-width:1240px;margin:0 auto;padding:8px 24px 48px}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;
 margin:20px 0;padding:18px 22px}
h2{font-size:18px;margin:0 0 4px}h3{font-size:15px;margin:18px 0 6px}
p.caption{color:var(--muted);font-size:13px;margin:2px 0 10px}
p.empty{color:var(--muted);font-style:italic}
figure{margin:8px 0 14px}
.plot-svg{display:block;width:100%;height:auto;max-width:100%}
.plot-svg text{font-family:"DejaVu Sans",sans-serif}
.table-wrap{overflow-x:auto}
table{border-collapse:collapse;font-size:13px;margin:6px 0 12px;min-width:50%}
th,td{padding:5px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:#f3f4f6;position:sticky;top:0;cursor:pointer;user-select:none;white-space:nowrap}
th:hover{background:#e5e7eb}
th[aria-sort=ascending]::after{content:" ▲";color:var(--muted)}
th[aria-sort=descending]::after{content:" ▼";color:var(--muted)}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr:hover td{background:#f9fafb}
.decision-REGRESSED{color:#dc2626;font-weight:600}.decision-SAME{color:#16a34a}
.decision-UNKNOWN{color:#d97706}.decision-IMPROVED{color:#2563eb}
footer{color:var(--muted);font-size:12px;text-align:center;padding:8px}
"""

# Click a header to sort its table; numbers (with KiB/MiB/%/ms units) sort numerically, '-' last.
SORT_JS = """
(function(){
  const units={KiB:1024,MiB:1048576,GiB:1073741824};
  function key(text){
    const t=text.trim(); if(t===""||t==="-")return null;
    const m=t.replace(/,/g,"").match(/^([-+]?\\d*\\.?\\d+(?:e[-+]?\\d+)?)\\s*(KiB|MiB|GiB)?/i);
    return m?parseFloat(m[1])*(units[m[2]]||1):t.toLowerCase();
  }
  function compare(a,b){
    if(a===null)return b===null?0:1; if(b===null)return -1;
    if(typeof a===typeof b)return a<b?-1:a>b?1:0;
    return typeof a==="number"?-1:1;
  }
  document.querySelectorAll("table.sortable").forEach(function(table){
    table.querySelectorAll("th").forEach(function(th,col){
      th.addEventListener("click",function(){
        const up=th.getAttribute("aria-sort")!=="ascending";
        table.querySelectorAll("th").forEach(h=>h.removeAttribute("aria-sort"));
        th.setAttribute("aria-sort",up?"ascending":"descending");
        const body=table.tBodies[0];
        const rows=Array.from(body.rows).map((r,i)=>[key(r.cells[col].textContent),i,r]);
        rows.sort((x,y)=>(up?1:-1)*compare(x[0],y[0])||x[1]-y[1]);
        rows.forEach(r=>body.appendChild(r[2]));
      });
    });
  });
})();
"""

CSP = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
       "font-src data:; img-src data:")
NUMERIC = re.compile(r"^[-+]?[\d,]*\.?\d+(e[-+]?\d+)?( ?(KiB|MiB|GiB|%|ms|MB))?( \(.*\))?$")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _table_html(table: Table, anchor: str) -> str:
    """A report-model table as a sortable HTML table with an anchor."""
    head = "".join(f"<th scope=col>{html.escape(c)}</th>" for c in table.columns)
    body = []
    for row in table.rows:
        cells = []
        for cell in row:
            css = ' class="num"' if NUMERIC.match(cell) else ""
            cells.append(f"<td{css}>{html.escape(cell)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    note = f'<p class="caption">{html.escape(table.note)}</p>' if table.note else ""
    return (f'<h3 id="{anchor}">{html.escape(table.title)}</h3><div class="table-wrap">'
            f'<table class="sortable"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>{note}')


def _figure(plot: plots.Plot) -> str:
    return (f'<figure class="plot" id="plot-{plot.name}">{plot.svg}'
            f'<p class="caption">{html.escape(plot.caption)}</p></figure>')


def _section(anchor: str, title: str, intro: str, body: str) -> str:
    return (f'<section id="{anchor}"><h2>{html.escape(title)}</h2>'
            f'<p class="caption">{html.escape(intro)}</p>{body}</section>')


def _empty(text: str) -> str:
    return f'<p class="empty">{html.escape(text)}</p>'


def _json_script(data: dict[str, Any]) -> str:
    text = json.dumps(data, separators=(",", ":"), allow_nan=False, default=str)
    text = text.replace("</", "<\\/")
    return f'<script type="application/json" id="plot-data">{text}</script>'


def _page(title: str, summary: list[str], sections: list[tuple[str, str, str]],
          data: dict[str, Any]) -> str:
    """The whole document: header, navigation, sections (anchor, title, html), data, script."""
    nav = "".join(f'<a href="#{anchor}">{html.escape(name)}</a>' for anchor, name, _ in sections)
    items = "".join(f"<li>{html.escape(line)}</li>" for line in summary)
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        '<link rel=icon href="data:,">'
        f"<title>{html.escape(title)}</title><style>{_font_faces()}{CSS}</style></head><body>"
        f"<header><h1>{html.escape(title)}</h1><ul>{items}</ul></header>"
        f"<nav>{nav}</nav><main>{''.join(body for _, _, body in sections)}</main>"
        "<footer>generated by harness · self-contained, works offline · hover a point for its "
        f"value</footer>{_json_script(data)}<script>{SORT_JS}</script></body></html>\n")


# --------------------------------------------------------------------------- sections

def _latency_section(frame: pd.DataFrame, data: dict[str, Any]) -> tuple[str, str, str]:
    points = plot_data.latency_points(frame)
    data["latency"] = points
    figures = [plots.latency_plot(points, target) for target in plot_data.targets_of(frame)]
    body = "".join(_figure(f) for f in figures if f) or _empty("No latency medians in this run.")
    return ("latency", "Latency vs threads", _section(
        "latency", "Latency vs threads",
        "Per target and model: each quantization mode's median latency per thread count, the bar "
        "from p10 to p90 of the raw samples (as stored in results.csv).", body))


def _pareto_section(frame: pd.DataFrame, data: dict[str, Any]) -> tuple[str, str, str]:
    points = plot_data.pareto_points(frame)
    data["pareto"] = points
    figures = [plots.pareto_plot(points, target) for target in plot_data.targets_of(frame)]
    body = "".join(_figure(f) for f in figures if f) or _empty(
        "No accuracy rows with a latency median in this run.")
    return ("pareto", "Accuracy vs latency", _section(
        "pareto", "Accuracy–latency trade-off",
        "Per target and model (appliance × architecture): MAE on held-out data against median "
        "latency; lower-left is better.", body))


def _profile_section(frame: pd.DataFrame, data: dict[str, Any]) -> tuple[str, str, str]:
    bars = plot_data.profile_bars(frame)
    data["profile"] = bars
    figure = plots.profile_plot(bars)
    body = _figure(figure) if figure else _empty("No per-op profile in this run.")
    return ("profile", "Where the time goes", _section(
        "profile", "Where the time goes",
        "Per model variant: operator time by node type from the per-op profile.", body))


def _memory_section(frame: pd.DataFrame, meta: dict[str, Any],
                    data: dict[str, Any]) -> tuple[str, str, str]:
    records = plot_data.memory_bars(frame, meta)
    data["memory"] = records
    figure = plots.memory_plot(records)
    body = _figure(figure) if figure else _empty("No memory or size rows in this run.")
    return ("memory", "Memory and size", _section(
        "memory", "Memory and size",
        "Size on disk, resident memory added by loading and running the model, and the TFLM "
        "tensor arena.", body))


def _comparison_section(comparison: pd.DataFrame,
                        data: dict[str, Any]) -> tuple[str, str, str]:
    rows = plot_data.comparison_rows(comparison)
    data["comparison"] = rows
    figure = plots.comparison_plot(rows)
    table = Table("Comparison rows", ["decision", "target", "model", "variant", "threads",
                                      "metric", "ratio", "interval", "threshold"])
    for r in rows:
        interval = ("-" if r["ci_low"] is None or r["ci_high"] is None
                    else f"{r['ci_low']:.4g} – {r['ci_high']:.4g}")
        threshold = "-" if r["threshold"] is None else f"{r['threshold']:.0%}"
        table.rows.append([r["decision"], fmt(r["target"]), fmt(r["model"]), fmt(r["variant"]),
                           fmt(r["threads"]), fmt(r["metric"]), fmt(r["ratio"], 4), interval,
                           threshold])
    body = (_figure(figure) if figure else _empty("No comparable rows.")) + \
        _table_html(table, "table-comparison-rows")
    body = re.sub(r"<td>(REGRESSED|SAME|UNKNOWN|IMPROVED)</td>",
                  r'<td class="decision-\1">\1</td>', body)
    return ("comparison", "Comparison", _section(
        "comparison", "Comparison with the baseline",
        "Ratio of this run to the baseline per row, with its interval and the row's threshold: "
        "rows re-measured A/B, and rows that count towards the verdict and changed (compare.md "
        "lists every row).",
        body))


def _history_section(history: HistoryData, data: dict[str, Any]) -> tuple[str, str, str]:
    series = plot_data.history_series(history.series, list(history.change_points))
    data["history"] = series
    figure = plots.history_plot(series)
    body = _figure(figure) if figure else _empty("No history for these series yet.")
    return ("trends", "Trends", _section(
        "trends", "Trends over runs",
        "Each series across the stored runs, with detected change points.", body))


def _tables_section(report: Report) -> tuple[str, str, str]:
    body = "".join(_table_html(t, f"table-{_slug(t.title)}") for t in report.tables)
    return ("tables", "Tables", _section(
        "tables", "Tables", "The same numbers as report.md; click a column header to sort.",
        body))


# --------------------------------------------------------------------------- entry points

def render_html(frame: pd.DataFrame, meta: dict[str, Any], *,
                comparison: pd.DataFrame | None = None,
                history: HistoryData | tuple[pd.DataFrame, Sequence[tuple[tuple, str]]]
                | None = None) -> str:
    """The run report as one self-contained HTML document (plots first, then the tables).

    frame: the run's tidy table (results.csv, `RunDir.frame()`); meta: run.json.
    comparison: optional, one row per compared key with columns target, model, variant, threads,
      metric, ratio (current / baseline), ci_low, ci_high (the ratio's interval), threshold (the
      relative change that counts, as a fraction: 0.10 = +10 %), decision (REGRESSED, SAME,
      UNKNOWN, or IMPROVED); drawn as a forest plot and listed as a table.
    history: optional `HistoryData(series, change_points)` (a plain 2-tuple works), the trends
      section; see `render_history_html`.
    """
    report = build_report(frame, meta)
    data: dict[str, Any] = {}
    sections = [_latency_section(frame, data), _pareto_section(frame, data),
                _profile_section(frame, data), _memory_section(frame, meta, data)]
    if comparison is not None:
        sections.insert(0, _comparison_section(comparison, data))
    if history is not None:
        sections.append(_history_section(HistoryData(*history), data))
    sections.append(_tables_section(report))
    return _page(report.title, report.summary, sections, data)


def render_history_html(series_frame: pd.DataFrame,
                        change_points: Sequence[tuple[tuple, str]],
                        title: str = "harness history") -> str:
    """Trends over runs as one self-contained HTML document (`harness history --html FILE`).

    series_frame: columns run_id, timestamp (ISO text), target, model, variant, threads, metric,
      value; one row per run and series (`plot_data.series_from_trend(History(...).trend(...))`).
    change_points: [(series key, run_id)], series key = (target, model, variant, threads, metric)
      with threads an int or None; each is marked on its series at that run.
    """
    data: dict[str, Any] = {}
    section = _history_section(HistoryData(series_frame, change_points), data)
    runs = series_frame["run_id"].nunique()
    series = len(data["history"])
    trend = Table("Values per run", ["target", "model", "variant", "threads", "metric", "run",
                                     "when", "value", "change point"])
    for s in data["history"]:
        for r in s["runs"]:
            trend.rows.append([fmt(s["target"]), fmt(s["model"]), fmt(s["variant"]),
                               fmt(s["threads"]), fmt(s["metric"]), r["run_id"],
                               fmt(r["timestamp"]), fmt(r["value"], 4),
                               "yes" if r["change_point"] else ""])
    tables = ("tables", "Tables", _section("tables", "Tables",
                                           "Click a column header to sort.",
                                           _table_html(trend, "table-values-per-run")))
    summary = [f"{series} series over {runs} runs · {len(change_points)} change points"]
    return _page(title, summary, [section, tables], data)
