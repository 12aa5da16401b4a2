"""The accuracy–size–latency front: Pareto marks, computed picks and findings, in every report.

The rows come from a real smoke run through the CLI (a host target that declares RAM and flash in
its inventory, as an MCU target does). Variants the smoke suite does not build (a pruned and a
clustered model) are the run's own rows copied under a new variant name, as the NILM-scale HTML
test does, with their accuracy (and, for clustering, latency) changed; the pruned model keeps the
float model's size on disk, as pruning without compression does, and both get a gzip size row.
The copies are stored by the production RunDir and re-rendered by `harness report`.
"""

from __future__ import annotations

import copy
import json
import math
import re
from pathlib import Path

import pandas as pd
import pytest

from harness.report.front import FRONT_THREADS, fronts, main_metric, pareto_mask
from harness.results.rundir import RunDir, RunMeta
from testutil import run_cli

RAM_KB = 256
FLASH_KB = 64            # between the smoke CNN's int8 (~26 KiB) and float (~82 KiB) sizes
F1 = {"convert_only": 0.80, "prune50": 0.79, "w8_a8": 0.78, "cluster16": 0.70}
GZIP_SHARE = {"convert_only": 0.90, "prune50": 0.50}   # gzip size / size on disk
CLUSTER_SLOWDOWN = 1.5


# --------------------------------------------------------------------------- fast: the rule

def test_pareto_mask_dominated_ties_and_missing() -> None:
    # (accuracy up, size down, latency down)
    points = [(0.8, 100, 2.0),   # most accurate
              (0.7, 30, 1.0),    # smallest and fastest
              (0.7, 30, 1.0),    # an exact tie of the one above: both stay on the front
              (0.6, 30, 1.5),    # beaten by the two above on all three
              (0.7, 100, 2.0),   # beaten by the first (same size and latency, less accurate)
              (0.9, None, 0.5)]  # no size: not judged, and beats nobody
    assert pareto_mask(points, (True, False, False)) == [True, True, True, False, False, None]
    # the direction matters: with accuracy minimised (an error such as MAE) the ranking turns
    assert pareto_mask([(10.0, 5, 1.0), (12.0, 5, 1.0)], (False, False, False)) == [True, False]
    assert pareto_mask([(10.0, 5, 1.0), (12.0, 5, 1.0)], (True, False, False)) == [False, True]


def test_main_metric_prefers_f1_then_a_generic_workloads_only_metric() -> None:
    assert main_metric(["mae", "sae", "f1", "mcc"]) == "f1"
    assert main_metric(["rmse"]) == "rmse"
    assert main_metric(["my_score"]) == "my_score"
    assert main_metric([]) is None


# --------------------------------------------------------------------------- slow: a real run

@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory, harness_cache: Path) -> Path:
    """A real smoke run on a host whose inventory entry declares ram_kb and flash_kb."""
    out = tmp_path_factory.mktemp("front-smoke")
    inventory = out / "inventory.yaml"
    inventory.write_text(f"targets:\n  host:\n    kind: cpu\n    workdir: {out / 'work'}\n"
                         f"    ram_kb: {RAM_KB}\n    flash_kb: {FLASH_KB}\n")
    result = run_cli("run", "suites/smoke.yaml", "--targets", "host", "--inventory",
                     str(inventory), "--out", str(out / "reports"),
                     env={"HARNESS_CACHE": str(harness_cache)})
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (out / "reports" / "smoke").iterdir()
    return run_dir


def _variant_rows(rows: list[dict], source: str, variant: str) -> list[dict]:
    copies = [copy.deepcopy(r) for r in rows if r["variant"] == source and r["status"] == "ok"]
    for row in copies:
        row["variant"] = variant
        if row["measurement"] == "accuracy" and row["metric"] == "f1":
            row["value"] = F1[variant]
        if variant == "cluster16" and row["measurement"] == "latency" \
                and str(row["unit"]) == "ms":
            row["value"] *= CLUSTER_SLOWDOWN
    return copies


@pytest.fixture(scope="module")
def variant_run(smoke_run: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The smoke run's rows plus pruned and clustered copies, stored as a run and re-rendered
    by `harness report` in the terminal, Markdown and HTML formats."""
    source = RunDir.open(smoke_run)
    rows = source.rows()
    for row in rows:
        if row["measurement"] == "accuracy" and row["metric"] == "f1":
            row["value"] = F1[row["variant"]]
    rows += _variant_rows(rows, "convert_only", "prune50") + \
        _variant_rows(rows, "w8_a8", "cluster16")
    # the run's own gzip rows (every variant has one), set to known shares of the size on
    # disk; the clustered copy loses its gzip row (an older run, or a failed read-back)
    size = {r["variant"]: r["value"] for r in rows
            if r["metric"] == "size_bytes" and r["measurement"] == "size"}
    gzip = [r for r in rows if r["metric"] == "gzip_bytes"]
    assert {r["variant"] for r in gzip} >= {"convert_only", "prune50", "cluster16"}
    for row in gzip:
        if row["variant"] in GZIP_SHARE:
            row["value"] = round(size[row["variant"]] * GZIP_SHARE[row["variant"]])
    rows = [r for r in rows if not (r["metric"] == "gzip_bytes" and r["variant"] == "cluster16")]
    meta = source.meta()
    run = RunDir.create(tmp_path_factory.mktemp("front-variants"), "smoke", meta.run_id)
    run.append(rows, source.samples())
    run.write_meta(RunMeta.from_json(meta.to_json(), "run.json"))
    run.finish()
    rendered = {}
    for fmt in ("terminal", "md"):
        result = run_cli("report", str(run.path), "--format", fmt, env={"COLUMNS": "250"})
        assert result.returncode == 0, result.stderr[-3000:]
        rendered[fmt] = result.stdout
    result = run_cli("report", str(run.path), "--format", "html")
    assert result.returncode == 0, result.stderr[-3000:]
    rendered["html"] = (run.path / "report.html").read_text(encoding="utf-8")
    csv = pd.read_csv(run.path / "results.csv")
    return {"path": run.path, "frame": run.frame(), "meta": run.meta().to_json(), "csv": csv,
            **rendered}


def _stored(csv: pd.DataFrame, variant: str, metric: str, threads: int | None = None) -> float:
    rows = csv[(csv.variant == variant) & (csv.metric == metric) & (csv.status == "ok")]
    if threads is not None:
        rows = rows[rows.threads == threads]
    return float(rows.value.iloc[0])


@pytest.mark.slow
def test_smoke_run_report_has_the_front_with_the_board_limits(smoke_run: Path) -> None:
    """Two variants with accuracy rows are enough: the run's own report.md and report.html."""
    report_md = (smoke_run / "report.md").read_text()
    assert "## Accuracy–size–latency front: kettle_cnn on host" in report_md
    assert "## Recommendation: kettle_cnn on host" in report_md
    picks = report_md.split("## Recommendation: kettle_cnn on host")[1].split("\n## ")[0]
    assert "| best that fits the board | w8_a8 |" in picks  # the float model is over 64 KiB
    assert f"flash {FLASH_KB:.1f} KiB" in picks and "no limit declared" not in picks
    assert 'id="plot-front"' in (smoke_run / "report.html").read_text(encoding="utf-8")


@pytest.mark.slow
def test_pareto_set_with_dominated_variants(variant_run: dict) -> None:
    (front,) = fronts(variant_run["frame"], variant_run["meta"])
    assert (front.target, front.model, front.metric) == ("host", "kettle_cnn", "f1")
    assert front.front_threads == FRONT_THREADS == 1
    marks = {p.variant: p.pareto for p in front.points}
    # prune50: the float model's size and latency, lower F1; cluster16: w8_a8's size, slower,
    # lower F1. The float model (most accurate) and w8_a8 (smallest) stay on the front.
    assert marks == {"convert_only": True, "w8_a8": True, "prune50": False, "cluster16": False}
    beaten = {p.variant: p.beaten_by for p in front.points if p.pareto is False}
    assert beaten == {"prune50": ["convert_only"], "cluster16": ["w8_a8"]}
    # the numbers are the stored ones
    csv = variant_run["csv"]
    for p in front.points:
        assert p.accuracy == pytest.approx(_stored(csv, p.variant, "f1"))
        assert p.size_bytes == _stored(csv, p.variant, "size_bytes")
        assert p.front_latency_ms == pytest.approx(_stored(csv, p.variant, "median_ms", 1))
        assert p.arena_bytes == _stored(csv, p.variant, "tflm_arena_bytes")
    by = {p.variant: p for p in front.points}
    assert by["prune50"].accuracy_delta == pytest.approx(F1["prune50"] - F1["convert_only"])
    assert by["convert_only"].accuracy_delta is None


@pytest.mark.slow
def test_recommendations_are_computed_from_the_numbers(variant_run: dict) -> None:
    (front,) = fronts(variant_run["frame"], variant_run["meta"])
    picks = {p.what: p for p in front.picks}
    csv = variant_run["csv"]
    # smallest: w8_a8 and cluster16 share a size; the tie goes to the more accurate w8_a8
    assert picks["smallest model"].variant == "w8_a8"
    assert "tied with cluster16" in picks["smallest model"].why
    # least F1 lost against the float model
    assert picks["best accuracy preserved"].variant == "prune50"
    assert "f1 loss 0.01" in picks["best accuracy preserved"].why
    # fastest at one thread, from the stored medians (prune50 ties the float model: the more
    # accurate wins)
    medians = {v: _stored(csv, v, "median_ms", 1) for v in ("convert_only", "w8_a8")}
    assert picks["fastest inference"].variant == min(medians, key=medians.get)
    assert "at 1 thread" in picks["fastest inference"].why
    # the board: file in flash, TFLM arena in RAM
    fitting = [v for v in F1 if _stored(csv, v, "size_bytes") <= FLASH_KB * 1024
               and _stored(csv, v, "tflm_arena_bytes") <= RAM_KB * 1024]
    assert sorted(fitting) == ["cluster16", "w8_a8"]
    assert picks["best that fits the board"].variant == max(fitting, key=F1.get) == "w8_a8"


@pytest.mark.slow
def test_without_declared_limits_the_board_pick_says_so(variant_run: dict) -> None:
    meta = json.loads(json.dumps(variant_run["meta"]))
    for entry in meta["inventory"].values():
        entry.pop("ram_kb"), entry.pop("flash_kb")
    (front,) = fronts(variant_run["frame"], meta)
    board = {p.what: p for p in front.picks}["best that fits the board"]
    assert board.variant is None and board.why.startswith("no limit declared for host")
    assert all(p.fits is None for p in front.points)


@pytest.mark.slow
def test_pruning_saves_nothing_on_flash_finding(variant_run: dict) -> None:
    (front,) = fronts(variant_run["frame"], variant_run["meta"])
    csv = variant_run["csv"]
    saved = 1 - _stored(csv, "prune50", "gzip_bytes") / \
        _stored(csv, "convert_only", "gzip_bytes")
    pruning = [f for f in front.findings if f.startswith("pruning")]
    assert len(pruning) == 1
    assert pruning[0].startswith("pruning saves nothing on flash without compression "
                                 f"(gzip saves {saved * 100:.0f} %)")
    assert round(saved * 100) == round((1 - GZIP_SHARE["prune50"] / GZIP_SHARE["convert_only"])
                                       * 100)
    clustering = [f for f in front.findings if f.startswith("clustering")]
    assert clustering and "(no gzip size recorded)" in clustering[0]
    # w8_a8 takes less flash than the float model: no finding about it
    assert not any(f.startswith("w8_a8") for f in front.findings)


def _md_section(text: str, title: str) -> str:
    return text.split(f"## {title}")[1].split("\n## ")[0]


@pytest.mark.slow
def test_markdown_has_the_front_table_and_the_picks(variant_run: dict) -> None:
    md = variant_run["md"]
    table = _md_section(md, "Accuracy–size–latency front: kettle_cnn on host")
    header = table.strip().splitlines()[0]
    assert header.startswith("| variant | f1 | Δ vs float | size | gzip size | median ms @1t | "
                             "median ms @2t | TFLM arena | fits board | Pareto |")
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines()
            if line.startswith("| ") and not line.startswith("| variant")}
    assert set(rows) == set(F1)
    assert rows["prune50"].endswith("| no (beaten by convert_only) |")
    assert rows["w8_a8"].endswith("| yes |") and rows["convert_only"].endswith("| yes |")
    assert "| -0.01 |" in rows["prune50"] and "| float |" in rows["convert_only"]
    assert "1-thread median" in table and "exact ties stay on it" in table
    picks = _md_section(md, "Recommendation: kettle_cnn on host")
    assert "| smallest model | w8_a8 |" in picks
    assert "| best accuracy preserved | prune50 |" in picks
    assert "| best that fits the board | w8_a8 |" in picks
    assert re.search(r"\| finding \| - \| pruning saves nothing on flash without compression "
                     r"\(gzip saves \d+ %\)", picks)


@pytest.mark.slow
def test_terminal_has_the_front_table_and_the_picks(variant_run: dict) -> None:
    text = variant_run["terminal"]
    assert "Accuracy–size–latency front: kettle_cnn on host" in text
    assert "Recommendation: kettle_cnn on host" in text
    front = text.split("Accuracy–size–latency front")[1].split("Recommendation")[0]
    assert re.search(r"prune50 .*no \(beaten by convert_only\)", front)
    assert re.search(r"cluster16 .*no \(beaten by w8_a8\)", front)
    picks = " ".join(text.split("Recommendation: kettle_cnn on host")[1].split())
    assert "pruning saves nothing on flash without compression (gzip saves" in picks
    assert re.search(r"best that fits the .*w8_a8", picks)


@pytest.mark.slow
def test_html_has_the_front_plot_and_tables(variant_run: dict) -> None:
    text = variant_run["html"]
    section = text.split('<section id="front">')[1].split("</section>")[0]
    assert '<figure class="plot" id="plot-front">' in section and 'data-plot="front"' in section
    assert "Accuracy–size–latency front: kettle_cnn on host" in section
    assert "pruning saves nothing on flash without compression" in section
    data = json.loads(re.search(r'<script type="application/json" id="plot-data">(.*?)</script>',
                                text, re.S).group(1).replace("<\\/", "</"))
    (front,) = data["front"]
    plotted = {p["variant"]: p for p in front["points"]}
    assert {v: p["pareto"] for v, p in plotted.items()} == {
        "convert_only": True, "w8_a8": True, "prune50": False, "cluster16": False}
    csv = variant_run["csv"]
    for variant, point in plotted.items():
        assert point["size_bytes"] == _stored(csv, variant, "size_bytes")
        assert math.isclose(point["accuracy"], _stored(csv, variant, "f1"))
        assert f"<title>kettle_cnn on host · {variant}" in section  # its tooltip
