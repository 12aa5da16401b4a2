"""The HTML report wired to stored runs, the history and the comparison; change points in
`harness history`. Runs are made of real latency samples turned into rows by the harness's own
row code (harness.results.rows via _cmp_fixtures), stored by RunDir and History."""

from __future__ import annotations

import io
import json
import re
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from _cmp_fixtures import SHA_B, latency, real_samples_us, size_row, write_run
from harness import api
from harness.compare import compare_runs
from harness.report.comparison import to_csv, to_markdown
from harness.report import plot_data
from harness.report.trend import find_change_points
from harness.results.history import History
from harness.results.rundir import RunDir, RunMeta
from harness.results.schema import to_frame
from testutil import run_cli

STEP_AT = 5
IDS = [f"202611{day:02d}-020000-{day:04x}" for day in range(1, 11)]


def plot_json(text: str) -> dict[str, Any]:
    """The plotted numbers embedded in a rendered page."""
    match = re.search(r'<script type="application/json" id="plot-data">(.*?)</script>', text, re.S)
    assert match, "no plot-data script in the page"
    return json.loads(match.group(1).replace("<\\/", "</"))


def _sections(text: str) -> list[str]:
    return re.findall(r'<section id="([a-z]+)"', text)


def _night(i: int, scale: float) -> tuple[list[dict], list[dict]]:
    """One night's rows: a series that steps (w8) and one that does not (w8_a8), 1 thread."""
    samples = real_samples_us(i % 3)
    rows, series = latency(samples, scale, variant="w8")
    more_rows, more_series = latency(samples, 1.0, variant="w8_a8")
    return rows + more_rows, series + more_series


@pytest.fixture
def stepped_history(tmp_path) -> History:
    """Ten nights appended through History.append; the w8 series is 30 % slower from night 6."""
    db = History(tmp_path / "history.sqlite")
    for i, run_id in enumerate(IDS):
        rows, series = _night(i, 1.3 if i >= STEP_AT else 1.0)
        for row in rows:
            row["run_id"] = run_id
        db.append(frame=to_frame(rows), samples=series,
                  meta=RunMeta(run_id=run_id, suite={"name": "smoke"}))
    return db


def test_change_points_find_the_step_in_the_stepped_series_only(stepped_history) -> None:
    trend = stepped_history.trend(suite="smoke", metric="median_ms")
    changes = find_change_points(plot_data.series_from_trend(trend))
    assert [(c.key, c.run_id) for c in changes] == [
        (("host", "cnn", "w8", 1, "median_ms"), IDS[STEP_AT])]
    (change,) = changes
    assert change.point.relative_change == pytest.approx(0.3, abs=0.03)
    assert change.arrow == "▲" and f"change point at run {IDS[STEP_AT]}" in change.describe()


@pytest.mark.slow  # the CLI in a fresh process
def test_history_cli_marks_change_points_and_writes_the_page(stepped_history, tmp_path) -> None:
    page = tmp_path / "history.html"
    db = str(stepped_history.path)
    result = run_cli("history", "--suite", "smoke", "--history", db, "--html", str(page))
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"change point at run {IDS[STEP_AT]}" in result.stdout
    assert "▲" in result.stdout and "▼" not in result.stdout
    history = plot_json(page.read_text(encoding="utf-8"))["history"]
    marked = [(s["variant"], r["run_id"]) for s in history for r in s["runs"] if r["change_point"]]
    assert marked == [("w8", IDS[STEP_AT])]
    assert {s["variant"] for s in history} == {"w8", "w8_a8"}



def test_history_formats_carry_the_change_points(stepped_history) -> None:
    from harness.cli import app

    db = str(stepped_history.path)
    cli = CliRunner()
    md = cli.invoke(app, ["history", "--suite", "smoke", "--history", db, "--format", "md"])
    assert md.exit_code == 0 and "### Change points" in md.output
    assert f"change point at run {IDS[STEP_AT]}" in md.output
    csv = cli.invoke(app, ["history", "--suite", "smoke", "--history", db, "--format", "csv"])
    table = pd.read_csv(io.StringIO(csv.output))
    flagged = table[table["change_point"].fillna("") != ""]
    assert list(zip(flagged["run_id"], flagged["variant"], flagged["metric"])) == [
        (IDS[STEP_AT], "w8", "median_ms")]
    # a shift smaller than --min-change is not marked
    big = cli.invoke(app, ["history", "--suite", "smoke", "--history", db, "--min-change", "0.5"])
    assert big.exit_code == 0 and "change point at run" not in big.output
    assert "no change points" in big.output


# --------------------------------------------------------------------------- run report

@pytest.fixture
def compared_runs(tmp_path) -> dict:
    """Three stored runs of one suite in reports/ with their history; the last is 30 % slower
    with a new artifact and compared with the first (compare.csv as harness.regress writes it)."""
    reports = tmp_path / "reports"
    samples = real_samples_us(0)
    dirs = []
    for run_id, scale, sha in ((IDS[0], 1.0, "a" * 64), (IDS[1], 1.0, "a" * 64),
                               (IDS[2], 1.3, SHA_B)):
        rows, series = latency(samples, scale, sha=sha)
        rows.append(size_row(1000, sha=sha))
        dirs.append(write_run(reports, run_id, rows, series))
    history = reports / "history.sqlite"
    for run_dir in dirs:
        History(history).append(run_dir)
    base, current = RunDir.open(dirs[0]), RunDir.open(dirs[2])
    comparison = compare_runs(current.frame(), base.frame(),
                              current_env=current.meta().environment,
                              baseline_env=base.meta().environment)
    current.write_comparison(to_markdown(comparison), to_csv(comparison))  # as harness.regress
    return {"dirs": dirs, "history": history}


@pytest.mark.slow  # the CLI in a fresh process
def test_report_html_has_the_comparison_and_trends(compared_runs, tmp_path) -> None:
    current = compared_runs["dirs"][2]
    page = tmp_path / "page.html"
    result = run_cli("report", str(current), "--format", "html", "-o", str(page))
    assert result.returncode == 0, result.stderr[-3000:]
    text = page.read_text(encoding="utf-8")
    assert _sections(text) == ["comparison", "latency", "pareto", "profile", "memory", "trends",
                               "tables"]
    data = plot_json(text)
    # the stored-run change of the counted latency row: suspect (?) until re-measured A/B
    (row,) = data["comparison"]
    assert (row["model"], row["variant"], row["threads"], row["metric"]) == (
        "cnn", "w8", 1, "median_ms")
    assert row["ratio"] == pytest.approx(1.3) and row["decision"] == "UNKNOWN"
    assert row["ci_low"] is None and row["threshold"] == pytest.approx(0.10)
    # trends: the reports directory's history (found beside the run), up to this run
    (series,) = data["history"]
    assert [r["run_id"] for r in series["runs"]] == IDS[:3]
    assert series["runs"][2]["value"] == pytest.approx(series["runs"][0]["value"] * 1.3)


@pytest.mark.slow  # the CLI in a fresh process
def test_report_html_of_an_earlier_run_stops_at_that_run(compared_runs) -> None:
    first, second, _ = compared_runs["dirs"]
    data = plot_json(api.html_report(second, compared_runs["history"]))
    assert [r["run_id"] for r in data["history"][0]["runs"]] == IDS[:2]
    assert "comparison" not in data                      # no compare.csv in that run
    alone = api.html_report(first, compared_runs["history"])
    assert "trends" not in _sections(alone)              # no earlier run of the suite
    assert "trends" not in _sections(api.html_report(second, None))


@pytest.mark.slow  # renders a full report through the CLI
def test_report_html_default_writes_report_html_in_the_run(compared_runs) -> None:
    from harness.cli import app

    current = compared_runs["dirs"][2]
    result = CliRunner().invoke(app, ["report", str(current), "--format", "html"])
    assert result.exit_code == 0, result.output
    assert f"report written: {current / 'report.html'}" in result.output.replace("\n", "")
    assert "trends" in _sections((current / "report.html").read_text(encoding="utf-8"))


def test_comparison_columns_are_read_defensively(compared_runs) -> None:
    compare = pd.read_csv(compared_runs["dirs"][2] / "compare.csv")
    median = (compare["metric"] == "median_ms").idxmax()
    # an A/B decision as a newer writer may store it: ratio, interval, a decision column
    decided = compare.copy()
    decided.loc[median, ["ratio", "ci_low", "ci_high"]] = [1.28, 1.2, 1.36]
    decided["decision"] = None
    decided.loc[median, "decision"] = "regressed"
    (row,) = plot_data.comparison_from_csv(decided).to_dict("records")
    assert (row["ratio"], row["ci_low"], row["ci_high"], row["decision"]) == (
        1.28, 1.2, 1.36, "REGRESSED")
    # an older or slimmer file: no state, no interval columns; the mark decides
    slim = compare.drop(columns=["state", "ci_low", "ci_high", "ratio"])
    (row,) = plot_data.comparison_from_csv(slim).to_dict("records")
    assert row["decision"] == "UNKNOWN" and row["ratio"] == pytest.approx(1.3)
    assert plot_data.comparison_from_csv(compare.iloc[0:0]).empty
