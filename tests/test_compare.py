"""harness.compare: every mark (+ - ~ ! * x), missing targets, thresholds, noise; with real samples."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from _cmp_fixtures import (ENV, accuracy_row, failure, frame, latency, real_samples_us, size_row)
from harness.compare import (DECISION_FRACTION, Policy, compare_runs, environment_diff, fingerprint,
                             policy_for, series_noise)

ENVS = {"host": ENV, "rpi4": ENV}


def run(rows_series: list[tuple[list[dict], list[dict]]], extra_rows: list[dict] = ()):
    rows, series = [], []
    for r, s in rows_series:
        rows += r
        series += s
    return frame(rows + list(extra_rows)), series


def compare(cur, base, thresholds=None, cur_env=None, base_env=None, **kw):
    (cf, cs), (bf, bs) = cur, base
    return compare_runs(cf, cs, bf, bs, thresholds or {}, cur_env or ENVS, base_env or ENVS, **kw)


def mark(comparison, metric="median_ms", **where):
    rows = comparison.rows[comparison.rows["metric"] == metric]
    for column, value in where.items():
        rows = rows[rows[column] == value]
    assert len(rows) == 1, comparison.rows[["mark", "target", "model", "metric", "reason"]]
    return rows.iloc[0]


X = real_samples_us(0)


def test_same_run_is_unchanged():
    c = compare(run([latency(X)]), run([latency(X)]))
    row = mark(c)
    assert row["mark"] == "~" and row["p_value"] == pytest.approx(1.0)
    assert row["change_pct"] == 0 and not c.regressed and c.exit_code() == 0
    assert set(c.rows["mark"]) == {"~"}
    # spread and count rows are not verdicts and are left out
    assert not c.rows["metric"].isin(["iqr_ms", "outliers"]).any()


def test_twenty_percent_slower_is_a_regression():
    c = compare(run([latency(X, 1.20)]), run([latency(X)]))
    row = mark(c)
    assert row["mark"] == "+" and row["counts"]
    assert row["change_pct"] == pytest.approx(20.0)
    assert row["shift_pct"] == pytest.approx(20.0)
    assert row["p_value"] < 0.01
    assert "beyond decision point" in row["reason"]
    assert c.regressed and c.exit_code() == 1
    # p90 etc. are marked too, but informational
    p90 = mark(c, "p90_ms")
    assert p90["mark"] == "+" and not p90["counts"] and "informational" in p90["reason"]


def test_twenty_percent_faster_is_an_improvement():
    c = compare(run([latency(X, 0.80)]), run([latency(X)]))
    assert mark(c)["mark"] == "-" and not c.regressed


def test_small_significant_shift_is_not_a_regression():
    # +3 %: with 100 samples per side clearly significant, but below the decision point
    c = compare(run([latency(X, 1.03)]), run([latency(X)]))
    row = mark(c)
    assert row["p_value"] < 0.01
    assert row["mark"] == "~" and "within decision point" in row["reason"]


def test_large_shift_without_significance_is_not_a_regression():
    # 6 real samples; half of them 30 % slower: HL shift +14 %, but p = 0.11
    a = X[:6]
    row = mark(compare(run([latency([v * 1.3 for v in a[:3]] + a[3:])]), run([latency(a)])))
    assert row["shift_pct"] > 10
    assert row["p_value"] > 0.01 and row["mark"] == "~" and "not significant" in row["reason"]
    # fewer than 5 samples per side: no test, the threshold alone decides (8 % < 10 %)
    row = mark(compare(run([latency(X[:4], 1.08)]), run([latency(X[:4])])))
    assert math.isnan(row["p_value"]) and row["mark"] == "~"


def test_suite_threshold_and_alpha_override():
    cur, base = run([latency(X, 1.03)]), run([latency(X)])
    c = compare(cur, base, thresholds={"median_ms": 0.02})      # 0.555 * 2 % = 1.1 % < 3 %
    assert mark(c)["mark"] == "+" and c.regressed
    c = compare(cur, base, thresholds={"latency": 0.02, "alpha": 1e-300})
    assert mark(c)["mark"] == "~" and c.alpha == 1e-300


def test_newly_failing_and_fixed():
    ok = run([latency(X, variant="w8"), latency(X, variant="f16")])
    failed = run([latency(X, variant="w8")], [failure(variant="f16")])
    c = compare(failed, ok)
    row = mark(c, "status")
    assert row["mark"] == "!" and row["variant"] == "f16" and row["error_kind"] == "runner_crash"
    assert "ok in baseline" in row["reason"] and c.regressed and c.newly_failing
    # the f16 rows of the baseline are consumed by the failure, not listed as missing
    assert not (c.rows["reason"] == "in baseline, missing from this run").any()

    c = compare(ok, failed)
    row = mark(c, "status")
    assert row["mark"] == "*" and "fixed" in row["reason"] and not c.regressed

    c = compare(failed, failed)
    row = mark(c, "status")
    assert row["mark"] == "~" and "still failing" in row["reason"] and not c.regressed


def test_artifact_hash_differs_is_not_comparable():
    c = compare(run([latency(X, 1.5, sha="b" * 64)]), run([latency(X)]))
    row = mark(c)
    assert row["mark"] == "x" and "artifact_sha256 differs: aaaaaaaaaaaa -> bbbbbbbbbbbb" in row["reason"]
    assert not c.regressed
    # opt-in: compare anyway, and say so
    c = compare(run([latency(X, 1.5, sha="b" * 64)]), run([latency(X)]),
                compare_changed_artifacts=True)
    assert mark(c)["mark"] == "+" and "artifact_sha256 differs" in mark(c)["reason"]


@pytest.mark.parametrize("key,new", [("governor", "powersave"), ("cpu_model", "Cortex-A72"),
                                     ("os", "Linux-6.6"), ("runtimes", {"ai_edge_litert": "2.4.0"})])
def test_environment_fingerprint_differs_is_not_comparable(key, new):
    cur_env = {"host": dict(ENV, **{key: new})}
    c = compare(run([latency(X, 1.5)]), run([latency(X)]), cur_env=cur_env)
    row = mark(c)
    assert row["mark"] == "x" and "environment differs" in row["reason"]
    what = "runtime_version" if key == "runtimes" else key
    assert what in c.environment_diffs["host"] and not c.regressed


def test_harness_version_and_unknown_keys_do_not_block():
    cur_env = {"host": dict(ENV, harness_version="9.9", hostname="other", governor=None)}
    c = compare(run([latency(X, 1.5)]), run([latency(X)]), cur_env=cur_env)
    assert mark(c)["mark"] == "+"


def test_row_runtime_version_differs_is_not_comparable():
    cur_rows, cur_series = latency(X)
    for r in cur_rows:
        r["runtime_version"] = "2.4.0"
    c = compare((frame(cur_rows), cur_series), run([latency(X)]), cur_env={}, base_env={})
    assert mark(c)["mark"] == "x" and "runtime_version differs: 2.3.0 -> 2.4.0" in mark(c)["reason"]


def test_target_missing_from_baseline_and_absent_from_run():
    c = compare(run([latency(X), latency(X, target="rpi4")]), run([latency(X)]))
    assert c.missing_targets == ["rpi4"]
    row = c.rows[c.rows["target"] == "rpi4"].iloc[0]
    assert row["mark"] == "x" and "target rpi4 not in baseline" in row["reason"]
    assert "not in baseline: rpi4" in c.summary()
    c = compare(run([latency(X)]), run([latency(X), latency(X, target="rpi4")]))
    assert c.absent_targets == ["rpi4"] and (c.rows["target"] != "rpi4").all()


def test_row_only_on_one_side():
    c = compare(run([latency(X), latency(X, threads=2)]), run([latency(X)]))
    row = mark(c, threads=2)
    assert row["mark"] == "x" and row["reason"] == "not in baseline"
    c = compare(run([latency(X)]), run([latency(X), latency(X, threads=2)]))
    assert mark(c, threads=2)["reason"] == "in baseline, missing from this run"


def test_size_uses_the_threshold_alone():
    base = run([], [size_row(100_000)])
    assert mark(compare(run([], [size_row(101_500)]), base), "size_bytes")["mark"] == "+"
    assert mark(compare(run([], [size_row(100_900)]), base), "size_bytes")["mark"] == "~"
    assert mark(compare(run([], [size_row(98_000)]), base), "size_bytes")["mark"] == "-"
    assert compare(run([], [size_row(101_500)]), base).regressed


def test_accuracy_f1_absolute_and_mae_relative():
    base = run([], [accuracy_row("f1", 0.80), accuracy_row("mae_w", 20.0),
                    accuracy_row("nde", 0.5)])
    cur = run([], [accuracy_row("f1", 0.775), accuracy_row("mae_w", 20.9),
                   accuracy_row("nde", 0.9)])
    c = compare(cur, base)
    f1 = mark(c, "f1")
    assert f1["mark"] == "+" and f1["change"] == pytest.approx(-0.025) and f1["counts"]
    assert mark(c, "mae_w")["mark"] == "~"                      # +4.5 % < 5 %
    nde = mark(c, "nde")
    assert nde["mark"] == "+" and not nde["counts"]            # informational unless named
    cur = run([], [accuracy_row("f1", 0.785), accuracy_row("mae_w", 21.5),
                   accuracy_row("nde", 0.5)])
    c = compare(cur, base)
    assert mark(c, "f1")["mark"] == "~" and mark(c, "mae_w")["mark"] == "+"
    assert compare(run([], [accuracy_row("f1", 0.85)]), run([], [accuracy_row("f1", 0.80)])
                   ).rows["mark"].tolist() == ["-"]


def test_policies():
    assert policy_for("latency", "median_ms", {}) == Policy(0.10)
    assert not policy_for("latency", "p99_ms", {}).counts
    assert policy_for("latency", "p99_ms", {"p99_ms": 0.2}) == Policy(0.2)
    assert policy_for("memory", "peak_rss_mb", {}) == Policy(0.05)
    assert policy_for("size", "size_bytes", {}) == Policy(0.01)
    assert policy_for("accuracy", "f1", {}) == Policy(0.02, relative=False, higher_is_better=True)
    assert policy_for("accuracy", "mae_w", {}) == Policy(0.05)


def test_fingerprint_from_runner_environment():
    fp = fingerprint(ENV)
    assert fp == {"runtime": "ai_edge_litert", "runtime_version": "2.3.0",
                  "cpu_model": "AMD EPYC", "governor": "performance", "os": "Linux-6.1-x86_64"}
    assert environment_diff(ENV, dict(ENV, governor="powersave")) == {
        "governor": ("performance", "powersave")}
    assert environment_diff(ENV, {}) == {}


def test_history_noise_raises_the_decision_point():
    # past runs whose medians wander by ~10 %: a +8 % change cannot be told from noise
    past = pd.concat([frame(latency(X, s)[0]) for s in (0.9, 1.0, 1.1, 0.95, 1.05)])
    noise = series_noise(past)
    key = next(k for k in noise if k[6] == "median_ms")
    sd = pd.Series([0.9, 1.0, 1.1, 0.95, 1.05]).map(math.log).std()
    assert noise[key] == pytest.approx(sd * 1.9398, rel=1e-3)   # 90 % upper bound from 5 runs
    cur, base = run([latency(X, 1.08)]), run([latency(X)])
    assert mark(compare(cur, base))["mark"] == "+"
    row = mark(compare(cur, base, noise=noise))
    assert row["mark"] == "~" and "cannot resolve" in row["reason"] and "noise" in row["reason"]
    # a change far beyond the noise is still caught
    assert mark(compare(run([latency(X, 2.0)]), base, noise=noise))["mark"] == "+"
    # fewer than 4 runs: no estimate
    assert series_noise(pd.concat([frame(latency(X, s)[0]) for s in (0.9, 1.1)])) == {}


def test_decision_point_between_zero_and_threshold():
    # the documented balance point: z_0.98 / (z_0.98 + z_0.95)
    from scipy.stats import norm

    assert DECISION_FRACTION == pytest.approx(norm.ppf(0.98) / (norm.ppf(0.98) + norm.ppf(0.95)),
                                              abs=1e-3)


def test_output_columns_and_order():
    c = compare(run([latency(X, 1.2)], [size_row(100)]), run([latency(X)], [size_row(100)]))
    for column in ("mark", "change_pct", "p_value", "reason", "counts", "baseline_value", "value"):
        assert column in c.rows.columns
    assert c.rows["mark"].iloc[0] == "+"          # regressions first
    assert c.count("+", counted_only=True) == 1


def test_renderers_show_every_mark():
    import io

    from rich.console import Console

    from harness.report.comparison import render_rich, to_csv, to_markdown

    base = run([latency(X, variant="w8"), latency(X, variant="f16"), latency(X, model="tr")],
               [size_row(100), failure(model="old")])
    cur = run([latency(X, 1.3, variant="w8"), latency(X, model="tr", sha="b" * 64),
               latency(X, model="old"), latency(X, target="rpi4")],
              [size_row(90), failure(variant="f16")])
    c = compare(cur, base)
    assert {"+", "-", "!", "*", "x"} <= set(c.rows["mark"])
    buf = io.StringIO()
    render_rich(c, Console(file=buf, width=250), show_unchanged=True)
    text = buf.getvalue()
    for needle in ("REGRESSION", "runner_crash", "fixed", "artifact_sha256 differs",
                   "rpi4: not in the baseline"):
        assert needle in text
    md = to_markdown(c, show_unchanged=True)
    assert md.count("\n| ") == len(c.rows) + 1
    csv = to_csv(c)
    assert csv.splitlines()[0].startswith("target,model,variant") and len(csv.splitlines()) == len(c.rows) + 1
