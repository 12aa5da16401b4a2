"""The A/B step after the stored comparison (harness.regress): which series are re-measured, the
artifacts they come from (the artifact store), what the reports say, and the exit code.

Run directories are written by the real RunDir from rows made by the harness's row code. The A/B
driver (`harness.remeasure`) is replaced by a small stand-in with the driver's interface that
feeds scripted per-process log-ratios through the real `SequentialAB` and `decide_rows`; the real
driver's end-to-end test lives with the driver.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest
from typer.testing import CliRunner

from _cmp_fixtures import (ARTIFACT_A, ARTIFACT_B, ENV, SHA, SHA_B, frame, latency,
                           real_samples_us, size_row, store_artifacts, suite_dict, write_run)
from harness import defaults, regress
from harness.compare import REMEASURE, compare_runs
from harness.config.suite import RegressionSpec
from harness.errors import UserError
from harness.results.artifact_store import ArtifactStore, store_of_run
from harness.results.baseline import read_baseline, set_baseline
from harness.sequential_ab import DEFAULT_LOOKS, SequentialAB, decide_rows

X = real_samples_us(0)
VARIANTS = ("w8", "w8_a8", "f16")
INVENTORY = """targets:
  host:
    kind: cpu
    workdir: {workdir}
  gone:
    kind: cpu
    ssh: nobody@127.0.0.1:1
    connect_timeout: 5
"""


# --------------------------------------------------------------------------- the stand-in driver

@dataclass(frozen=True)
class StandInSeries:
    """harness.remeasure.ABSeries as the driver's interface defines it."""

    target: str
    model: str
    variant: str
    runtime: str
    threads: int
    baseline: Path
    candidate: Path

    @property
    def key(self) -> tuple:
        return (self.target, self.model, self.variant, self.runtime, self.threads)


class StandInDriver:
    """`remeasure` with the driver's signature: each series' pairs are scripted log(B/A) values
    (by variant), decided by the real SequentialAB; a variant without a script gets no pairs (its
    budget ran out before it was reached)."""

    def __init__(self, scripts: dict[str, list[float]]) -> None:
        self.scripts = scripts
        self.calls: list[dict[str, Any]] = []
        self.ABSeries = StandInSeries

    def remeasure(self, series: list[StandInSeries], *, inventory_path: Path,
                  threshold: float | Callable = 0.10, alpha: float = 0.015,
                  budget_seconds: float | None = None, looks: tuple[int, ...] | None = None,
                  progress: Callable[[str], None] | None = None, stretch: float = 1.0) -> dict:
        self.calls.append(dict(series=list(series), inventory_path=inventory_path,
                               threshold=threshold, alpha=alpha, budget_seconds=budget_seconds,
                               looks=looks))
        states = {}
        for s in series:
            assert s.baseline.read_bytes() == ARTIFACT_A and s.candidate.read_bytes() == ARTIFACT_B
            script = self.scripts.get(s.variant)
            if script is None:
                continue
            state = SequentialAB(threshold, alpha, looks or DEFAULT_LOOKS, rows=len(series))
            for d in script:
                if state.decision() is not None:
                    break
                state.add(1.0, math.exp(d))
            state.decision()
            states[s.key] = state
            if progress:
                progress(f"A/B {s.variant}: {state.result().describe()}")
        return decide_rows(states)


SLOWER = [0.18, 0.22, 0.2, 0.19, 0.21, 0.2]     # +22 %, tight: REGRESSED at the first look
SAME = [0.01, -0.01] * 3                          # SAME at the first look
WIDE = [0.3, -0.25] * (DEFAULT_LOOKS[-1] // 2)   # the budget spent: UNKNOWN


# --------------------------------------------------------------------------- fixtures

def _night(root: Path, run_id: str, sha: str, scale: float, size: int, *,
           regression: dict | None = None, variants=VARIANTS, samples=X) -> Path:
    rows, series = [], []
    for variant in variants:
        r, s = latency(samples, scale, variant=variant, sha=sha)
        rows += r + [size_row(size, variant=variant, sha=sha)]
        series += s
    doc = suite_dict()
    if regression is not None:
        doc["regression"] = regression
    return write_run(root / "reports", run_id, rows, series, suite_doc=doc)


@pytest.fixture()
def nights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A baseline night (artifact A) set as the baseline, and tonight (artifact B, the same
    size, stored latency +30 %), both artifacts in the store; an inventory with `host`."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(defaults.ARTIFACT_STORE_ENV, raising=False)
    store_artifacts(tmp_path / "reports" / "artifacts")
    base = _night(tmp_path, "20261120-020000-aaaa", SHA, 1.0, 1000)
    set_baseline(base, tmp_path / "baselines", store=store_of_run(base))
    (tmp_path / "inventory.yaml").write_text(INVENTORY.format(workdir=tmp_path / "work"))
    return {"tmp": tmp_path, "base": base}


def _compare(run: Path, driver: Any, **options: Any) -> regress.RunComparison:
    return regress.compare_run(run, None, baselines=Path("baselines"),
                               history_path=Path("none.sqlite"),
                               ab=regress.ABOptions(driver=driver, **options))


def _median(result: regress.RunComparison, variant: str):
    rows = result.comparison.rows
    rows = rows[(rows["metric"] == "median_ms") & (rows["variant"] == variant)]
    assert len(rows) == 1
    return rows.iloc[0]


# --------------------------------------------------------------------------- the A/B step

def test_suspects_are_re_measured_and_decide_the_verdict(nights):
    tonight = _night(nights["tmp"], "20261121-020000-bbbb", SHA_B, 1.3, 1000)
    driver = StandInDriver({"w8": SLOWER, "w8_a8": SAME, "f16": WIDE})
    result = _compare(tonight, driver)
    call, = driver.calls
    assert {s.variant for s in call["series"]} == set(VARIANTS)
    assert call["threshold"] == 0.10 and call["alpha"] == 0.015
    assert call["budget_seconds"] == 300 and call["looks"] is None
    assert call["inventory_path"] == Path("inventory.yaml")
    w8, w8_a8, f16 = (_median(result, v) for v in VARIANTS)
    assert w8["mark"] == "+" and w8["ab"] == "A/B-tested" and w8["pairs"] == 6
    assert w8["ci_low"] > 1 and "A/B REGRESSED" in w8["reason"]
    assert w8_a8["mark"] == "~" and w8_a8["ci_high"] < 1.1
    assert f16["mark"] == "?" and f16["state"] == "unknown" and f16["pairs"] == DEFAULT_LOOKS[-1]
    assert result.regressed and result.comparison.exit_code() == 1
    # UNKNOWN never fails on its own
    result = _compare(tonight, StandInDriver({"w8": SAME, "w8_a8": SAME, "f16": WIDE}))
    assert not result.regressed and _median(result, "f16")["state"] == "unknown"


def test_reports_show_the_ab_rows_ratio_interval_pairs_and_what_changed(nights):
    from harness.report.comparison import summary_lines, to_csv, to_markdown

    tonight = _night(nights["tmp"], "20261121-020000-bbbb", SHA_B, 1.3, 1000)
    result = _compare(tonight, StandInDriver({"w8": SLOWER, "w8_a8": SAME}))
    lines = summary_lines(result.comparison)
    assert lines[0].startswith("REGRESSION")
    assert f"changed: artifact cnn/w8 {SHA[:12]} -> {SHA_B[:12]} (host)" in lines
    ab_line = next(line for line in lines if line.startswith("A/B (auto"))
    assert "2 series re-measured (1 REGRESSED, 1 SAME)" in ab_line
    assert "not A/B-tested: 1 (budget)" in ab_line
    assert "A/B-tested: host cnn/w8 1t +, host cnn/w8_a8 1t ~" in lines
    md = to_markdown(result.comparison, title=result.title)
    w8 = _median(result, "w8")
    assert f"{w8['ratio']:.3f} [{w8['ci_low']:.3f}, {w8['ci_high']:.3f}], 6 pairs" in md
    assert "not A/B-tested: budget" in md
    csv = to_csv(result.comparison)
    header = csv.splitlines()[0].split(",")
    for column in ("ratio", "ci_low", "ci_high", "pairs", "ab", "changed"):
        assert column in header
    assert "A/B-tested" in csv and "not A/B-tested: budget" in csv


def test_not_re_measured_within_the_budget_stays_unknown_with_the_reason(nights):
    regression = {"ab_max_rows": 1, "ab_sample_rows": 0}
    tonight = _night(nights["tmp"], "20261121-020000-bbbb", SHA_B, 1.3, 1000,
                     regression=regression)
    driver = StandInDriver({v: SAME for v in VARIANTS})
    result = _compare(tonight, driver)
    assert len(driver.calls[0]["series"]) == 1
    marks = [_median(result, v)["mark"] for v in VARIANTS]
    assert sorted(marks) == ["?", "?", "~"]
    for variant in VARIANTS:
        row = _median(result, variant)
        if row["mark"] == "?":
            assert row["state"] == REMEASURE and row["ab"] == "not A/B-tested: budget"
            assert row["reason"].startswith("not A/B-tested: budget; stored runs +30.0 %")
    assert not result.regressed
    # a series the driver could not reach in its time budget: the same reason
    result = _compare(tonight, StandInDriver({}), budget_seconds=1)
    assert _median(result, "w8")["ab"] == "not A/B-tested: budget"


def test_off_same_artifact_missing_artifact_and_unreachable_are_named(nights):
    tonight = _night(nights["tmp"], "20261121-020000-bbbb", SHA_B, 1.3, 1000)
    driver = StandInDriver({v: SLOWER for v in VARIANTS})
    result = _compare(tonight, driver, mode="off")
    assert not driver.calls and not result.regressed
    assert {_median(result, v)["ab"] for v in VARIANTS} == {"not A/B-tested: A/B off"}
    assert any(n.startswith("A/B off: 3 suspect latency series") for n in result.comparison.notes)
    # the same artifact on a changed machine: A/B cannot tell a runtime or environment change
    moved = write_run(nights["tmp"] / "reports", "20261121-030000-cccc",
                      *latency(X, 1.3), environment={"host": dict(ENV, governor="powersave")},
                      suite_doc=suite_dict())
    result = _compare(moved, driver)
    assert not driver.calls
    assert "same artifact on both sides" in _median(result, "w8")["reason"]
    # an artifact not in the store: its sha, model/variant and the fix
    (nights["tmp"] / "reports" / "artifacts" / f"{SHA_B}.tflite").unlink()
    result = _compare(tonight, driver)
    reason = _median(result, "w8")["reason"]
    assert not driver.calls and reason.startswith(f"not A/B-tested: artifact {SHA_B} (cnn/w8 on")
    assert "harness baseline set RUN" in reason and "copy the file into" in reason


def test_unreachable_target_is_not_re_measured(nights, tmp_path):
    rows, series = latency(X, 1.3, target="gone", sha=SHA_B)
    base_rows, base_series = latency(X, target="gone")
    base = write_run(tmp_path / "other", "20261120-020000-aaaa", base_rows, base_series,
                     suite_doc=suite_dict())
    store_artifacts(tmp_path / "other" / "artifacts")
    tonight = write_run(tmp_path / "other", "20261121-020000-bbbb", rows, series,
                        suite_doc=suite_dict())
    driver = StandInDriver({"w8": SLOWER})
    result = regress.compare_run(tonight, base, history_path=Path("none.sqlite"),
                                 ab=regress.ABOptions(driver=driver))
    assert not driver.calls
    row = result.comparison.rows.query("metric == 'median_ms'").iloc[0]
    assert row["mark"] == "?" and "not A/B-tested: target gone unreachable" in row["reason"]


def test_plan_rotates_a_sample_of_unchanged_series_and_all_takes_every_row():
    # stored runs call every series unchanged (known small noise): only the sample is A/B-tested
    base = [r for v in ("a", "b", "c", "d", "e") for r in latency(X, variant=v)[0]]
    cur = [r for v in ("a", "b", "c", "d", "e") for r in latency(X, 1.01, variant=v, sha=SHA_B)[0]]
    from harness.compare import row_key

    noise = {row_key(r): 0.002 for r in base if r["metric"] == "median_ms"}
    c = compare_runs(frame(cur), frame(base), current_env={"host": ENV},
                     baseline_env={"host": ENV}, noise=noise)
    assert c.remeasure.empty
    spec = RegressionSpec(ab_sample_rows=2)
    seen = []
    for night in range(3):
        plan = regress.plan_ab(c, spec, "auto", rotation=night)
        assert plan.selected == plan.sampled and len(plan.sampled) == 2
        seen += [k[2] for k in plan.sampled]
    assert set(seen) == {"a", "b", "c", "d", "e"}                # every series comes round
    assert regress.plan_ab(c, spec, "auto", rotation=0).sampled != \
        regress.plan_ab(c, spec, "auto", rotation=1).sampled
    assert len(regress.plan_ab(c, spec, "all").selected) == 5
    assert regress.plan_ab(c, spec, "off").selected == []
    with pytest.raises(UserError, match="--ab 'some'"):
        regress.plan_ab(c, spec, "some")


def test_most_changed_suspects_first():
    base = [r for v in ("a", "b", "c") for r in latency(X, variant=v)[0]]
    cur = [r for v, s in (("a", 1.2), ("b", 1.9), ("c", 0.5))
           for r in latency(X, s, variant=v, sha=SHA_B)[0]]
    c = compare_runs(frame(cur), frame(base), current_env={"host": ENV},
                     baseline_env={"host": ENV})
    plan = regress.plan_ab(c, RegressionSpec(ab_max_rows=2, ab_sample_rows=0), "auto")
    assert [k[2] for k in plan.selected] == ["b", "c"] and plan.skipped == {
        ("host", "cnn", "a", "ai_edge_litert", "1"): "budget"}


# --------------------------------------------------------------------------- the CLI

@pytest.mark.slow  # the whole CLI pipeline, several runs
def test_cli_compare_exit_codes_with_ab(nights, monkeypatch):
    from harness.cli import app

    tonight = _night(nights["tmp"], "20261121-020000-bbbb", SHA_B, 1.3, 1000)
    cli = CliRunner()
    driver = StandInDriver({"w8": SAME, "w8_a8": SAME, "f16": SAME})
    monkeypatch.setattr(regress, "load_ab_driver", lambda: driver)
    result = cli.invoke(app, ["compare", str(tonight)])
    assert result.exit_code == 0, result.output
    assert "A/B-tested: host cnn/f16 1t ~" in result.output and len(driver.calls) == 1
    driver.scripts["w8"] = SLOWER
    result = cli.invoke(app, ["compare", str(tonight), "--format", "md"])
    assert result.exit_code == 1 and "A/B REGRESSED" in result.output
    # --no-ab: the suspects stay `?`, named, and do not fail
    calls = len(driver.calls)
    result = cli.invoke(app, ["compare", str(tonight), "--no-ab"])
    assert result.exit_code == 0 and len(driver.calls) == calls
    assert "A/B off: 3 suspect latency series" in result.output
    result = cli.invoke(app, ["compare", str(tonight), "--ab", "nope"])
    assert isinstance(result.exception, UserError) and "--ab" in str(result.exception)
    result = cli.invoke(app, ["compare", str(tonight), "--ab", "all", "--no-ab"])
    assert isinstance(result.exception, UserError)


def test_noisy_candidate_is_to_re_measure_never_a_silent_pass(nights):
    from harness.cli import app

    # tonight's build measured on a contended machine: IQR/median far above 10 %, as stored
    noisy = [s * (1.4 if i % 2 else 1.0) for i, s in enumerate(X)]
    tonight = _night(nights["tmp"], "20261121-020000-bbbb", SHA_B, 1.0, 1000, samples=noisy)
    rows = [r for r in (Path(tonight) / "rows.jsonl").read_text().splitlines()
            if '"median_ms"' in r]
    assert rows and all('"valid": false' in r for r in rows)
    result = CliRunner().invoke(app, ["compare", str(tonight), "--no-ab", "--format", "csv"])
    assert result.exit_code == 0
    import io

    import pandas as pd

    table = pd.read_csv(io.StringIO(result.output))
    medians = table[table["metric"] == "median_ms"]
    assert len(medians) == 3 and set(medians["mark"]) == {"?"}
    assert medians["reason"].str.contains("this run not trustworthy").all()
    assert not (table["mark"] == "x").any()


# --------------------------------------------------------------------------- the store

def test_artifact_store_put_get_and_the_error(tmp_path, monkeypatch):
    source = tmp_path / "cache" / "m.tflite"
    source.parent.mkdir()
    source.write_bytes(ARTIFACT_A)
    store = ArtifactStore(tmp_path / "store")
    assert SHA not in store and store.find(SHA) is None
    path = store.put(source, SHA)
    assert path == tmp_path / "store" / f"{SHA}.tflite" and path.read_bytes() == ARTIFACT_A
    assert os.stat(path).st_ino == os.stat(source).st_ino          # a hard link, no copy
    assert store.put(source, SHA) == path and SHA in store
    assert store.get(SHA) == path
    assert not list((tmp_path / "store").glob("*.tmp")) and len(list(store.root.iterdir())) == 1
    with pytest.raises(UserError) as error:
        store.get(SHA_B, model="kettle_cnn", variant="w8_a8", target="rpi4")
    text = str(error.value)
    assert SHA_B in text and "kettle_cnn/w8_a8 on rpi4" in text and str(store.root) in text
    assert "harness baseline set RUN" in text and "copy the file into" in text
    with pytest.raises(UserError, match="not a sha256"):
        store.put(source, "../../etc/passwd")
    # the default root: <reports>/artifacts, or $HARNESS_ARTIFACT_STORE
    monkeypatch.delenv(defaults.ARTIFACT_STORE_ENV, raising=False)
    assert defaults.artifact_store_dir(tmp_path) == tmp_path / "artifacts"
    assert store_of_run(tmp_path / "reports" / "smoke" / "r1").root == \
        (tmp_path / "reports" / "artifacts").resolve()
    monkeypatch.setenv(defaults.ARTIFACT_STORE_ENV, str(tmp_path / "elsewhere"))
    assert defaults.artifact_store_dir(tmp_path) == tmp_path / "elsewhere"


def test_baseline_set_pins_and_after_run_update_pins(nights):
    b = read_baseline(nights["tmp"] / "baselines" / "smoke.json")
    assert set(b.frame["artifact_sha256"].dropna()) == {SHA}
    tonight = _night(nights["tmp"], "20261121-020000-bbbb", SHA_B, 1.0, 1000)
    (nights["tmp"] / "reports" / "artifacts" / f"{SHA_B}.tflite").unlink()
    with pytest.raises(UserError, match="not in the artifact store"):
        regress.after_run(tonight, update_baseline=True, record_history=False,
                          baselines=nights["tmp"] / "baselines")
    assert read_baseline(nights["tmp"] / "baselines" / "smoke.json").source_run == b.source_run


def test_regression_section_is_validated(tmp_path):
    from harness.config import load_suite

    text = (Path(__file__).resolve().parent.parent / "suites" / "smoke.yaml").read_text()
    path = tmp_path / "s.yaml"
    path.write_text(text + "regression: {ab_budget_seconds: 60, ab_looks: [6, 4]}\n")
    with pytest.raises(UserError, match="ab_looks"):
        load_suite(path)
    path.write_text(text + "regression: {ab_max_rows: 5, ab: all}\n")
    assert load_suite(path).regression == RegressionSpec(ab_max_rows=5, ab="all")
    path.write_text(text + "regression: {budget: 5}\n")
    with pytest.raises(UserError, match="budget"):
        load_suite(path)
