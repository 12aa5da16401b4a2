"""The HTML report: plotted numbers equal the tidy table, and the page works in headless Chromium.

The slow tests make a real smoke run through the CLI, render it with `render_html` and open it in
a real Chromium (Debian `chromium` + `chromium-driver`, driven by Selenium). Outside CI the browser
tests skip when no Chromium is installed; in CI (CI set) they fail instead.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from harness.report import plot_data
from harness.report.html import render_history_html, render_html
from harness.results.schema import make_row, to_frame
from harness.results.rundir import RunDir
from testutil import ROOT, run_cli

sys.path.insert(0, str(ROOT / "scripts"))
from report_screenshot import (browser_paths, crop, full_page_screenshot,  # noqa: E402
                               open_browser)

SMOKE_LIMIT = 2 * 1024 ** 2
FULL_LIMIT = 8 * 1024 ** 2


def plot_json(text: str) -> dict[str, Any]:
    """The plotted numbers embedded in a rendered page."""
    match = re.search(r'<script type="application/json" id="plot-data">(.*?)</script>', text, re.S)
    assert match, "no plot-data script in the page"
    return json.loads(match.group(1).replace("<\\/", "</"))


# --------------------------------------------------------------------------- fast: pivots

def _latency_rows(model: str, variant: str, threads: int, median: float, **extra: Any) -> list:
    common = dict(target="host", model=model, variant=variant, runtime="ai_edge_litert",
                  threads=threads, measurement="latency", method="runner", unit="ms", n=40,
                  valid=True, **extra)
    return [make_row(**common, metric="median_ms", value=median),
            make_row(**common, metric="min_ms", value=median * 0.8),
            make_row(**common, metric="p10_ms", value=median * 0.9),
            make_row(**common, metric="p90_ms", value=median * 1.2)]


def _model_rows(model: str, variant: str, median: float, mae: float, size: int) -> list:
    accuracy = dict(target="host", model=model, variant=variant, runtime="ai_edge_litert",
                    measurement="accuracy", key="kettle")
    return (_latency_rows(model, variant, 1, median) + _latency_rows(model, variant, 2, median / 2)
            + [make_row(**accuracy, metric="mae", value=mae, unit="W"),
               make_row(**accuracy, metric="f1", value=0.5),
               make_row(target="host", model=model, variant=variant, runtime="ai_edge_litert",
                        measurement="size", metric="size_bytes", value=size, unit="B",
                        method="file")])


def test_pareto_front_and_float_marking() -> None:
    frame = to_frame(_model_rows("m", "convert_only", 2.0, 10.0, 4000)
                     + _model_rows("m", "w8_a8", 1.0, 12.0, 1000)
                     + _model_rows("m", "w8", 2.5, 11.0, 1000)  # slower and worse than float
                     + _model_rows("m", "f16", 1.5, 10.0, 2000))  # beats the float on latency
    points = {p["variant"]: p for p in plot_data.pareto_points(frame)}
    assert {v: p["on_front"] for v, p in points.items()} == {
        "convert_only": False, "w8_a8": True, "w8": False, "f16": True}
    assert points["convert_only"]["is_float"] and not points["f16"]["is_float"]
    # latency at the lowest thread count, accuracy and size as stored
    assert points["w8_a8"]["median_ms"] == 1.0 and points["w8_a8"]["threads"] == 1
    assert points["w8_a8"]["accuracy"] == 12.0 and points["w8_a8"]["size_bytes"] == 1000


def test_latency_points_keep_stored_values_and_skip_rows_without_a_median() -> None:
    rows = _latency_rows("m", "w8", 1, 3.0) + [
        make_row(target="host", model="m", variant="w8", runtime="benchmark_model", threads=1,
                 measurement="latency", method="benchmark_model", metric="mean_ms", value=2.0)]
    rows[0]["valid"] = False
    rows[0]["hint"] = "spread too wide"
    points = plot_data.latency_points(to_frame(rows))
    assert len(points) == 1
    assert points[0]["median_ms"] == 3.0 and points[0]["p90_ms"] == pytest.approx(3.6)
    assert points[0]["valid"] is False and points[0]["hint"] == "spread too wide"


def test_latency_band_runs_from_p10_and_falls_back_to_min_without_p10() -> None:
    with_p10 = _latency_rows("m", "w8", 1, 2.0)
    without = [r for r in _latency_rows("m", "f16", 1, 3.0) if r["metric"] != "p10_ms"]
    frame = to_frame(with_p10 + without)
    points = {p["variant"]: p for p in plot_data.latency_points(frame)}
    assert points["w8"]["band_low"] == pytest.approx(1.8) and points["w8"]["p10_ms"] == 1.8
    assert points["w8"]["band_low_metric"] == "p10_ms"
    assert points["f16"]["band_low"] == pytest.approx(2.4)  # the stored minimum
    assert points["f16"]["band_low_metric"] == "min_ms" and points["f16"]["p10_ms"] is None
    text = render_html(frame, {"run_id": "r", "suite": {"name": "t"}})
    assert "p10 – p90 (min – p90 where no p10 is stored)" in text
    only_p10 = render_html(to_frame(with_p10), {"run_id": "r", "suite": {"name": "t"}})
    assert "p10 – p90" in only_p10 and "min – p90" not in only_p10
    assert "p10 1.8 ms" in only_p10  # the dot's tooltip


def test_comparison_frame_must_have_the_documented_columns() -> None:
    with pytest.raises(ValueError, match="ci_low"):
        plot_data.comparison_rows(pd.DataFrame({"target": ["host"], "ratio": [1.0]}))


def _comparison() -> pd.DataFrame:
    return pd.DataFrame([
        dict(target="host", model="m", variant="w8", threads=1, metric="median_ms", ratio=1.3,
             ci_low=1.2, ci_high=1.4, threshold=0.1, decision="REGRESSED"),
        dict(target="host", model="m", variant="w8", threads=2, metric="median_ms", ratio=1.0,
             ci_low=0.97, ci_high=1.03, threshold=0.1, decision="SAME"),
        dict(target="host", model="m", variant="w8_a8", threads=1, metric="median_ms",
             ratio=1.05, ci_low=None, ci_high=None, threshold=0.1, decision="unknown")])


def _history() -> tuple[pd.DataFrame, list]:
    rows = []
    for i in range(6):
        for variant, jump in (("w8", 1.0), ("w8_a8", 1.5)):
            rows.append(dict(run_id=f"r{i}", timestamp=f"2026-01-0{i + 1}T00:00:00+00:00",
                             target="host", model="m", variant=variant, threads=1,
                             metric="median_ms", value=1.0 * (jump if i >= 3 else 1.0)))
    return pd.DataFrame(rows), [(("host", "m", "w8_a8", 1, "median_ms"), "r3")]


@pytest.mark.slow  # renders every plot of a full report
def test_run_report_with_comparison_and_history_sections() -> None:
    frame = to_frame(_model_rows("m", "convert_only", 2.0, 10.0, 4000)
                     + _model_rows("m", "w8", 1.0, 12.0, 1000))
    text = render_html(frame, {"run_id": "r", "suite": {"name": "t"}},
                       comparison=_comparison(), history=_history())
    data = plot_json(text)
    assert [r["decision"] for r in data["comparison"]] == ["REGRESSED", "SAME", "UNKNOWN"]
    assert 'data-plot="comparison"' in text and 'data-plot="history"' in text
    assert '<td class="decision-REGRESSED">REGRESSED</td>' in text
    # sections in order: comparison first, the tables last; two variants with accuracy: a front
    order = [m.group(1) for m in re.finditer(r'<section id="([a-z]+)"', text)]
    assert order == ["comparison", "latency", "pareto", "front", "profile", "memory", "trends",
                     "tables"]


def test_a_run_without_rows_renders_notes_instead_of_plots() -> None:
    text = render_html(to_frame([]), {})
    assert "<figure" not in text and text.count('class="empty"') == 4
    assert plot_json(text) == {"latency": [], "pareto": [], "profile": {"types": [], "bars": []},
                               "memory": []}


def test_history_page_marks_change_points() -> None:
    series, change_points = _history()
    text = render_history_html(series, change_points)
    history = plot_json(text)["history"]
    marked = [(s["variant"], r["run_id"]) for s in history for r in s["runs"] if r["change_point"]]
    assert marked == [("w8_a8", "r3")]
    assert "change point: w8_a8" in text  # the tooltip of the red ring
    namespaces = {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}
    assert set(re.findall(r'https?://[^"\s]*', text)) <= namespaces  # no link to fetch


def test_series_from_trend_takes_history_trend_output() -> None:
    trend = pd.DataFrame([dict(run_id="r1", started="2026-01-01T00:00:00", suite="s",
                               target="host", model="m", variant="w8", runtime="x", threads=1,
                               measurement="latency", metric="median_ms", key=None, value=1.5,
                               unit="ms", n=30, valid=True, status="ok", error_kind=None,
                               artifact_sha256="a"),
                          dict(run_id="r2", started="2026-01-02T00:00:00", suite="s",
                               target="host", model="m", variant="w8", runtime="x", threads=1,
                               measurement="latency", metric="status", key=None, value=None,
                               unit=None, n=None, valid=None, status="failed",
                               error_kind="timeout", artifact_sha256="a")])
    series = plot_data.series_from_trend(trend)
    assert list(series.columns) == plot_data.SERIES_COLUMNS
    assert series["run_id"].tolist() == ["r1"]


# --------------------------------------------------------------------------- slow: a real run

@pytest.fixture(scope="module")
def smoke_report(tmp_path_factory: pytest.TempPathFactory, harness_cache: Path) -> dict:
    """A real smoke run through the CLI, and the report.html it wrote beside the run."""
    out = tmp_path_factory.mktemp("html-smoke")
    result = run_cli("run", "suites/smoke.yaml", "--targets", "host", "--out", str(out),
                     env={"HARNESS_CACHE": str(harness_cache)})
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (out / "smoke").iterdir()
    frame = RunDir.open(run_dir).frame()
    meta = json.loads((run_dir / "run.json").read_text())
    path = run_dir / "report.html"
    assert f"report {path}" in result.stdout
    text = path.read_text(encoding="utf-8")
    return {"run_dir": run_dir, "path": path, "text": text, "frame": frame, "meta": meta}


@pytest.mark.slow
def test_plotted_values_equal_results_csv(smoke_report: dict) -> None:
    csv = pd.read_csv(smoke_report["run_dir"] / "results.csv")
    data = plot_json(smoke_report["text"])
    lat = csv[(csv.measurement == "latency") & (csv.status == "ok")]
    stored = {(r.variant, int(r.threads), r.metric): r.value for r in lat.itertuples()}
    points = data["latency"]
    assert {(p["variant"], p["threads"]) for p in points} == {
        ("convert_only", 1), ("convert_only", 2), ("w8_a8", 1), ("w8_a8", 2)}
    for p in points:
        for metric in ("median_ms", "p10_ms", "min_ms", "p90_ms", "p99_ms"):
            assert p[metric] == pytest.approx(stored[(p["variant"], p["threads"], metric)],
                                              rel=1e-12)
        assert p["band_low_metric"] == "p10_ms" and p["band_low"] == p["p10_ms"]
        assert p["min_ms"] <= p["p10_ms"] <= p["median_ms"] <= p["p90_ms"]
        # the drawn dot's tooltip shows the same median
        assert f"median {p['median_ms'] * 1000:.3g} µs" in smoke_report["text"]
    (float_point,) = [p for p in data["pareto"] if p["variant"] == "convert_only"]
    mae = csv[(csv.measurement == "accuracy") & (csv.metric == "mae")
              & (csv.variant == "convert_only")].value.item()
    size = csv[(csv.metric == "size_bytes") & (csv.variant == "convert_only")].value.item()
    assert float_point["is_float"] and float_point["threads"] == 1
    assert float_point["median_ms"] == pytest.approx(stored[("convert_only", 1, "median_ms")])
    assert float_point["accuracy"] == pytest.approx(mae)
    assert float_point["size_bytes"] == size
    ratios = {b["variant"]: b["ratio"] for b in data["profile"]["bars"]}
    prof = csv[(csv.measurement == "profile") & (csv.metric == "sum_vs_whole_ratio")]
    assert ratios == pytest.approx({r.variant: r.value for r in prof.itertuples()})
    # the tables are report.md's: every latency median string is in both
    report_md = (smoke_report["run_dir"] / "report.md").read_text()
    latency_md = report_md.split("## Latency on host")[1].split("\n## ")[0]
    cells = re.findall(r"\| kettle_cnn \| \S+ \| \S+ \| \d \| (\S+) \|", latency_md)
    assert len(cells) == 4
    for cell in cells:
        assert f'<td class="num">{cell}</td>' in smoke_report["text"]


@pytest.mark.slow
def test_smoke_report_size(smoke_report: dict) -> None:
    size = smoke_report["path"].stat().st_size
    print(f"smoke report.html: {size / 1024:.0f} KiB")
    assert size <= SMOKE_LIMIT


@pytest.mark.slow
def test_full_suite_scale_report_size(smoke_report: dict) -> None:
    """The smoke run's real rows copied to the NILM suite's shape: 10 models x 6 variants
    (720 latency rows, 60 profiled variants) must stay within the 8 MB budget."""
    frame = smoke_report["frame"]
    parts = []
    for i, model in enumerate(f"{a}_{arch}" for a in ("kettle", "microwave", "fridge",
                                                      "dishwasher", "washing_machine")
                              for arch in ("cnn", "transformer")):
        for j, variant in enumerate(("convert_only", "w8", "w8_a8", "w8_a16", "f16",
                                     "w8_a8_denylist")):
            source = "convert_only" if variant in ("convert_only", "f16") else "w8_a8"
            part = frame[(frame["variant"] == source) & (frame["status"] == "ok")].copy()
            part["model"], part["variant"] = model, variant
            part["value"] = part["value"] * (1 + 0.01 * (i + j))
            parts.append(part)
    big = pd.concat(parts, ignore_index=True)
    assert (big["measurement"] == "latency").sum() >= 600
    text = render_html(big, smoke_report["meta"])
    data = plot_json(text)
    assert len(data["profile"]["bars"]) == 60 and len(data["pareto"]) == 60
    print(f"NILM-scale report.html: {len(text.encode()) / 1024:.0f} KiB")
    assert len(text.encode()) <= FULL_LIMIT


# --------------------------------------------------------------------------- slow: in Chromium

def _need_browser() -> None:
    browser, driver = browser_paths()
    if browser and driver:
        return
    reason = ("Chromium and chromedriver are needed (Debian: apt-get install chromium "
              f"chromium-driver; .ci/setup_ssh_tests.sh does it): found browser={browser}, "
              f"driver={driver}")
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    """A headless Chromium with console and network logs, through Selenium and chromedriver."""
    _need_browser()
    driver = open_browser(tmp_path_factory.mktemp("chromium-profile"), logs=True)
    yield driver
    driver.quit()


PLOTS_JS = """
return Array.from(document.querySelectorAll("figure.plot")).map(function (figure) {
  const svg = figure.querySelector("svg");
  if (!svg) return {id: figure.id, width: 0, height: 0, drawn: 0, texts: 0};
  const box = svg.getBoundingClientRect();
  const drawn = Array.from(svg.querySelectorAll("path, use")).filter(function (p) {
    const b = p.getBBox(); return b.width > 0 || b.height > 0; }).length;
  return {id: figure.id, width: box.width, height: box.height, drawn: drawn,
          texts: svg.querySelectorAll("text").length};
});
"""
FONTS_JS = """
const done = arguments[arguments.length - 1];
document.fonts.ready.then(function () {
  done(Array.from(document.fonts).map(f => [f.family.replace(/"/g, ""), f.weight, f.status]));
});
"""


@pytest.mark.slow
def test_report_renders_offline_in_chromium(smoke_report: dict, browser, tmp_path: Path) -> None:
    url = smoke_report["path"].resolve().as_uri()
    browser.get("about:blank")
    browser.get_log("performance")  # drop what came before this page
    browser.get_log("browser")
    browser.get(url)
    plots = browser.execute_script(PLOTS_JS)
    fonts = browser.execute_async_script(FONTS_JS)
    screenshot = tmp_path / "report.png"
    full_page_screenshot(browser, screenshot)
    print(f"screenshot of the smoke report: {screenshot}")
    plots_only = tmp_path / "report-plots.png"
    crop(screenshot, browser, ["#latency", "#pareto"], plots_only)
    print(f"latency + Pareto plots: {plots_only}")

    console = browser.get_log("browser")
    errors = [e for e in console if e["level"] in ("SEVERE", "ERROR")]
    assert not errors, errors
    requests = [json.loads(e["message"])["message"] for e in browser.get_log("performance")]
    sent = [m["params"] for m in requests if m["method"] == "Network.requestWillBeSent"]
    urls = [p["request"]["url"] for p in sent if p.get("documentURL") == url]
    assert url in urls, "the network log saw no request at all: it is not being recorded"
    assert [u for u in urls if u != url and not u.startswith("data:")] == []
    assert [p["request"]["url"] for p in sent if p["request"]["url"].startswith("http")] == []

    names = {p["id"] for p in plots}
    assert {"plot-latency-host", "plot-pareto-host", "plot-profile", "plot-memory"} <= names
    for plot in plots:
        assert plot["width"] > 300 and plot["height"] > 100, plot
        assert plot["drawn"] > 10 and plot["texts"] > 5, plot
    assert ["DejaVu Sans", "normal", "loaded"] in fonts, fonts  # the inline font, offline


@pytest.mark.slow
def test_tables_sort_by_clicking_a_header(smoke_report: dict, browser) -> None:
    from selenium.webdriver.common.by import By

    browser.get(smoke_report["path"].resolve().as_uri())
    table = browser.find_element(By.CSS_SELECTOR, "#table-latency-on-host + .table-wrap table")
    headers = [th.text for th in table.find_elements(By.CSS_SELECTOR, "th")]
    column = headers.index("median ms")

    def medians() -> list[float]:
        return [float(row.find_elements(By.CSS_SELECTOR, "td")[column].text)
                for row in table.find_elements(By.CSS_SELECTOR, "tbody tr")]

    before = medians()
    header = table.find_elements(By.CSS_SELECTOR, "th")[column]
    header.click()
    assert medians() == sorted(before)
    header.click()
    assert medians() == sorted(before, reverse=True)
    assert not math.isnan(sum(before))
