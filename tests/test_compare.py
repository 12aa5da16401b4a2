"""harness.compare: pairing, marks (+ - ~ ! * x ?), what changed, protocol, noise, A/B merge.

Rows are made by the harness's own row code (latency_rows, error_row, make_row) from real samples.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from _cmp_fixtures import (ENV, SHA, SHA_B, accuracy_row, failure, fields, frame, latency,
                           real_samples_us, size_row, suite_dict)
from harness.compare import (REMEASURE, Policy, apply_ab, compare_runs, environment_diff,
                             fingerprint, is_timing, measurement_protocol, policy_for,
                             protocol_diff, row_key, series_key, series_noise)
from harness.results.schema import failure_row, make_row
from harness.sequential_ab import DEFAULT_ALPHA, DEFAULT_LOOKS, SequentialAB

ENVS = {"host": ENV, "rpi4": ENV}
X = real_samples_us(0)


def rows_of(*parts) -> list[dict]:
    """Rows from latency(...) tuples and single row dicts."""
    out: list[dict] = []
    for part in parts:
        out += part[0] if isinstance(part, tuple) else [part]
    return out


def compare(cur: list[dict], base: list[dict], cur_env=None, base_env=None, **kw):
    return compare_runs(frame(cur), frame(base), current_env=ENVS if cur_env is None else cur_env,
                        baseline_env=ENVS if base_env is None else base_env, **kw)


def row(comparison, metric="median_ms", **where):
    rows = comparison.rows[comparison.rows["metric"] == metric]
    for column, value in where.items():
        rows = rows[rows[column] == value]
    assert len(rows) == 1, comparison.rows[["mark", "target", "model", "metric", "reason"]]
    return rows.iloc[0]


# --------------------------------------------------------------------------- unchanged

def test_same_run_is_same():
    run = rows_of(latency(X), size_row(100_000), accuracy_row("f1", 0.8))
    c = compare(run, run)
    assert set(c.rows["mark"]) == {"~"} and not c.regressed and c.exit_code() == 0
    assert "nothing under test changed" in row(c)["reason"]
    assert c.remeasure.empty
    # spread and count rows are not verdicts and are left out
    assert not c.rows["metric"].isin(["iqr_ms", "outliers"]).any()


def test_unchanged_rerun_never_cries_wolf():
    # two real runs of the same artifact differ by ~5 % with thousands of "significant" samples:
    # nothing under test changed, so it is the same, whatever the within-run statistics say
    c = compare(rows_of(latency(real_samples_us(0))), rows_of(latency(real_samples_us(1))))
    assert row(c)["mark"] == "~" and not c.regressed
    # even a large move of the same artifact is the machine, not the product
    c = compare(rows_of(latency(X, 1.3)), rows_of(latency(X)))
    assert row(c)["mark"] == "~" and not c.regressed


# --------------------------------------------------------------------------- a new build

def test_new_build_is_compared_not_skipped():
    base = rows_of(latency(X), size_row(100_000))
    cur = rows_of(latency(X, 2.0, sha=SHA_B), size_row(200_000, sha=SHA_B))
    c = compare(cur, base)
    size = row(c, "size_bytes")
    assert size["mark"] == "+" and size["counts"] and size["change_pct"] == pytest.approx(100)
    assert f"artifact {SHA[:12]} -> {SHA_B[:12]}" in size["changed"]
    assert c.regressed and c.exit_code() == 1
    # the latency of the new build is suspect (stored runs are no evidence): re-measure, not x
    lat = row(c)
    assert lat["mark"] == "?" and lat["state"] == REMEASURE and lat["counts"]
    assert "needs A/B" in lat["reason"] and "artifact" in lat["changed"]
    assert c.remeasure_series() == [("host", "cnn", "w8", "ai_edge_litert", "1")]
    assert "1 ? to re-measure (A/B)" in c.summary()


def test_new_build_with_doubled_latency_only_does_not_pass_silently():
    c = compare(rows_of(latency(X, 2.0, sha=SHA_B)), rows_of(latency(X)))
    assert not (c.rows["mark"] == "x").any()
    assert row(c)["mark"] == "?" and len(c.remeasure) == 1


def test_runtime_version_change_is_reported_next_to_the_verdict():
    cur = rows_of(latency(X, 1.5, runtime_version="2.4.0"), size_row(103_000,
                                                                     runtime_version="2.4.0"))
    base = rows_of(latency(X), size_row(100_000))
    cur_env = {"host": dict(ENV, runtimes={"ai_edge_litert": "2.4.0"})}
    c = compare(cur, base, cur_env=cur_env)
    size = row(c, "size_bytes")
    assert size["mark"] == "+" and "runtime_version 2.3.0 -> 2.4.0" in size["reason"]
    assert size["runtime_version"] == "2.4.0" and size["baseline_runtime_version"] == "2.3.0"
    assert row(c)["mark"] == "?" and "runtime_version 2.3.0 -> 2.4.0" in row(c)["changed"]
    # said once, not again as an environment difference
    assert row(c)["changed"].count("2.4.0") == 1


@pytest.mark.parametrize("key,new", [("governor", "powersave"), ("cpu_model", "Cortex-A72"),
                                     ("os", "Linux-6.6")])
def test_environment_change_is_what_changed_not_a_skip(key, new):
    cur_env = {"host": dict(ENV, **{key: new})}
    c = compare(rows_of(size_row(150_000), latency(X)), rows_of(size_row(100_000), latency(X)),
                cur_env=cur_env)
    assert row(c, "size_bytes")["mark"] == "+" and c.regressed
    assert key in c.environment_diffs["host"] and key in row(c, "size_bytes")["changed"]
    # the same artifact on a changed machine: a latency change is suspect, not "nothing changed"
    assert row(c)["mark"] == "?"


def test_harness_version_change_makes_latency_suspect():
    cur_env = {"host": dict(ENV, harness_version="9.9")}
    base_env = {"host": dict(ENV, harness_version="0.1.0")}
    c = compare(rows_of(latency(X, 1.3)), rows_of(latency(X)), cur_env=cur_env,
                base_env=base_env)
    assert row(c)["mark"] == "?" and "harness 0.1.0 -> 9.9" in row(c)["changed"]


# --------------------------------------------------------------------------- failures

def test_failure_of_a_runtime_auto_target_is_newly_failing():
    ok = rows_of(latency(X, variant="w8"), latency(X, variant="f16"),
                 size_row(100, variant="f16"))
    failed = rows_of(latency(X, variant="w8"), failure(variant="f16"))
    assert failed[-1]["runtime"] == "auto" and ok[-1]["runtime"] == "ai_edge_litert"
    c = compare(failed, ok)
    bang = row(c, "status")
    assert bang["mark"] == "!" and bang["variant"] == "f16" and bang["runtime"] == "auto"
    assert bang["error_kind"] == "runner_crash" and "ok in baseline: 9 rows" in bang["reason"]
    assert c.regressed and c.newly_failing and c.exit_code() == 1
    # the f16 rows of the baseline are consumed by the failure, not listed as missing
    assert not (c.rows["reason"] == "in baseline, missing from this run").any()

    c = compare(ok, failed)
    fixed = row(c, "status")
    assert fixed["mark"] == "*" and "fixed" in fixed["reason"] and not c.regressed

    c = compare(failed, failed)
    assert row(c, "status")["mark"] == "~" and row(c, "status")["state"] == "still_failing"
    assert not c.regressed


def test_failure_with_a_resolved_runtime_still_pairs():
    ok = rows_of(latency(X, variant="f16"))
    failed = rows_of(failure(variant="f16", runtime="ai_edge_litert"))
    assert row(compare(failed, ok), "status")["mark"] == "!"
    # another target's failure does not cover this one's rows
    c = compare(rows_of(latency(X), failure(target="rpi4")), rows_of(latency(X),
                                                                    latency(X, target="rpi4")))
    assert row(c, "status")["mark"] == "!" and row(c, "status")["target"] == "rpi4"
    assert row(c, target="host")["mark"] == "~"


def test_a_measurement_failure_claims_only_what_it_lost():
    base = rows_of(latency(X), accuracy_row("f1", 0.8), accuracy_row("mae_w", 20.0))
    # devices/cpu.py collect_rows: an accuracy failure inside an ok job
    cur = rows_of(latency(X), failure_row(measurement="accuracy", error_kind="accuracy_failed",
                                          message="bad outputs", **fields()))
    c = compare(cur, base)
    bang = row(c, "status")
    assert bang["mark"] == "!" and "ok in baseline: 2 rows" in bang["reason"]
    assert row(c)["mark"] == "~"                          # latency is still there and judged


# --------------------------------------------------------------------------- noisy measurements

def _noisy(samples: list[float]) -> list[float]:
    """Real samples with every other one 40 % slower: IQR/median well above 10 %."""
    return [s * (1.4 if i % 2 else 1.0) for i, s in enumerate(samples)]


def test_untrustworthy_measurement_leads_to_remeasure_not_a_silent_pass():
    cur = rows_of(latency(_noisy(X), 1.75, sha=SHA_B))
    assert cur[0]["valid"] is False and "spread" in cur[0]["hint"]
    c = compare(cur, rows_of(latency(X)))
    lat = row(c)
    assert lat["mark"] == "?" and lat["state"] == REMEASURE and lat["counts"]
    assert "this run not trustworthy" in lat["reason"] and "re-measure A/B" in lat["reason"]
    assert len(c.remeasure) == 1
    # a noisy baseline as well
    c = compare(rows_of(latency(X, 1.75, sha=SHA_B)), rows_of(latency(_noisy(X))))
    assert row(c)["mark"] == "?" and "baseline not trustworthy" in row(c)["reason"]


# --------------------------------------------------------------------------- noise from history

def _history(values_by_run: list[tuple[str, str, float, bool]]) -> pd.DataFrame:
    """Runs of one latency row: (run_id, artifact, median scale, valid)."""
    rows = []
    for run_id, sha, scale, valid in values_by_run:
        for r in latency(X, scale, sha=sha)[0]:
            r["run_id"] = run_id
            if not valid:
                r["valid"] = False
            rows.append(r)
    return frame(rows)


def test_noise_is_pooled_within_one_artifact_and_skips_invalid_runs():
    flat = [0.99, 1.0, 1.01, 1.0]
    runs = [(f"a{i}", SHA, s, True) for i, s in enumerate(flat)]
    # a past regression: tonight's build was 30 % slower for four nights; and an invalid night
    runs += [(f"b{i}", SHA_B, 1.3 * s, True) for i, s in enumerate(flat)]
    runs += [("bad", SHA, 2.0, False)]
    noise = series_noise(_history(runs))
    key = next(k for k in noise if k[6] == "median_ms")
    logs = np.log(flat)
    pooled = math.sqrt(2 * ((logs - logs.mean()) ** 2).sum() / 6)   # 2 segments, 6 df
    from scipy.stats import chi2

    assert noise[key] == pytest.approx(pooled * math.sqrt(6 / chi2.ppf(0.10, 6)), rel=1e-6)
    assert noise[key] < 0.03                 # the 30 % level shift is not noise
    # too few runs of one artifact: no estimate
    assert series_noise(_history(runs[:2] + runs[4:6])) == {}


def test_noise_segments_by_environment():
    runs = [(f"r{i}", SHA, s, True) for i, s in enumerate((1.0, 1.01, 0.99, 1.0, 1.5, 1.51, 1.49,
                                                            1.5))]
    history = _history(runs)
    moved = dict(ENV, cpu_model="Cortex-A72")
    environments = {f"r{i}": {"host": ENV if i < 4 else moved} for i in range(8)}
    key = next(k for k in series_noise(history) if k[6] == "median_ms")
    assert series_noise(history)[key] > 0.1                          # one segment: the move
    assert series_noise(history, environments=environments)[key] < 0.03


def test_known_small_noise_lets_stored_runs_say_same():
    base, cur = rows_of(latency(X)), rows_of(latency(X, 1.01, sha=SHA_B))
    key = row_key(next(r for r in base if r["metric"] == "median_ms"))
    assert row(compare(cur, base))["mark"] == "?"                           # noise unknown
    quiet = compare(cur, base, noise={key: 0.005})
    assert row(quiet)["mark"] == "~" and "rules out +10.0 %" in row(quiet)["reason"]
    noisy = compare(cur, base, noise={key: 0.05})
    assert row(noisy)["mark"] == "?" and "cannot rule out" in row(noisy)["reason"]


# --------------------------------------------------------------------------- protocol

def test_changed_measurement_protocol_is_not_comparable():
    base = rows_of(latency(X), size_row(100_000), accuracy_row("f1", 0.8))
    cur = rows_of(latency(X, sha=SHA_B), size_row(100_000, sha=SHA_B),
                  accuracy_row("f1", 0.8, sha=SHA_B))
    before = measurement_protocol(suite_dict())
    after = measurement_protocol(suite_dict(runs=60))
    c = compare(cur, base, baseline_protocol=before, current_protocol=after)
    lat = row(c)
    assert lat["mark"] == "x" and "measurement protocol changed: runs 30 -> 60" in lat["reason"]
    assert row(c, "size_bytes")["mark"] == "~"                      # deterministic: unaffected
    assert row(c, "f1")["mark"] == "~"
    # a thread list is part of the row key, not the protocol
    assert protocol_diff(before, measurement_protocol(suite_dict(threads=[1, 2, 4])),
                         "latency") == {}
    # other evaluation data makes accuracy incomparable
    other = suite_dict()
    other["workload"]["dataset"]["seed"] = 7
    c = compare(cur, base, baseline_protocol=before, current_protocol=measurement_protocol(other))
    assert row(c, "f1")["mark"] == "x" and "dataset.seed 0 -> 7" in row(c, "f1")["reason"]
    # unknown on one side: nothing to tell
    assert row(compare(cur, base, current_protocol=after))["mark"] == "?"


def test_measurement_protocol_of_the_smoke_suite():
    proto = measurement_protocol(suite_dict())
    assert proto["latency"] == {"warmup_runs": 5, "warmup_seconds": 0.05, "runs": 30,
                                "min_seconds": 0.2, "rounds": 3}
    assert proto["profile"]["runs"] == 10 and "models" not in proto["profile"]
    assert proto["accuracy"]["dataset"]["seed"] == 0
    assert measurement_protocol(None) is None


# --------------------------------------------------------------------------- deterministic

def test_size_uses_the_threshold_alone():
    base = [size_row(100_000)]
    assert row(compare([size_row(101_500)], base), "size_bytes")["mark"] == "+"
    assert row(compare([size_row(100_900)], base), "size_bytes")["mark"] == "~"
    assert row(compare([size_row(98_000)], base), "size_bytes")["mark"] == "-"
    assert compare([size_row(101_500)], base).regressed


def test_accuracy_f1_absolute_and_mae_relative():
    base = [accuracy_row("f1", 0.80), accuracy_row("mae_w", 20.0), accuracy_row("nde", 0.5)]
    c = compare([accuracy_row("f1", 0.775), accuracy_row("mae_w", 20.9), accuracy_row("nde", 0.9)],
                base)
    f1 = row(c, "f1")
    assert f1["mark"] == "+" and f1["change"] == pytest.approx(-0.025) and f1["counts"]
    assert row(c, "mae_w")["mark"] == "~"                      # +4.5 % < 5 %
    nde = row(c, "nde")
    assert nde["mark"] == "+" and not nde["counts"]            # informational unless named
    c = compare([accuracy_row("f1", 0.785), accuracy_row("mae_w", 21.5), accuracy_row("nde", 0.5)],
                base)
    assert row(c, "f1")["mark"] == "~" and row(c, "mae_w")["mark"] == "+"
    assert compare([accuracy_row("f1", 0.85)], [accuracy_row("f1", 0.80)]
                   ).rows["mark"].tolist() == ["-"]


def _memory(metric: str, value: float, unit: str = "B", **kw) -> dict:
    return make_row(**fields(**kw), measurement="memory", method="tflm", metric=metric,
                    value=value, unit=unit, n=1)


def test_arena_and_mcu_fit_are_counted():
    c = compare([_memory("tflm_arena_bytes", 20_480), _memory("mcu_fits", 0, "bool")],
                [_memory("tflm_arena_bytes", 16_384), _memory("mcu_fits", 1, "bool")])
    assert row(c, "tflm_arena_bytes")["mark"] == "+" and row(c, "tflm_arena_bytes")["counts"]
    assert row(c, "mcu_fits")["mark"] == "+" and c.regressed


def test_delegate_coverage_from_the_latency_rows():
    base = rows_of(latency(X, delegated_nodes=2))
    cur = rows_of(latency(X, sha=SHA_B, delegated_nodes=1, undelegated_ops=["GELU", "TANH"]))
    c = compare(cur, base)
    nodes = row(c, "delegated_nodes")
    assert nodes["mark"] == "+" and nodes["counts"] and nodes["change"] == -1
    ops = row(c, "undelegated_ops")
    assert ops["mark"] == "+" and ops["value"] == 2 and "undelegated: GELU,TANH" in ops["reason"]
    assert c.regressed
    # the same coverage is the same
    c = compare(rows_of(latency(X, sha=SHA_B)), rows_of(latency(X)))
    assert row(c, "delegated_nodes")["mark"] == "~" and row(c, "undelegated_ops")["mark"] == "~"


def test_edgetpu_ops_on_cpu_is_counted():
    def ops(n):
        return make_row(**fields(), measurement="build", metric="ops_on_cpu_total", value=n,
                        unit="count", n=1)
    c = compare([ops(1)], [ops(0)])
    assert row(c, "ops_on_cpu_total")["mark"] == "+" and c.regressed


def test_policies_and_timing():
    assert policy_for("latency", "median_ms", {}) == Policy(0.10)
    assert not policy_for("latency", "p99_ms", {}).counts
    assert policy_for("latency", "p99_ms", {"p99_ms": 0.2}) == Policy(0.2)
    assert policy_for("memory", "peak_rss_mb", {}) == Policy(0.05)
    assert policy_for("memory", "tflm_arena_bytes", {}) == Policy(0.01)
    assert policy_for("size", "size_bytes", {}) == Policy(0.01)
    assert policy_for("size", "parameter_count", {}) == Policy(0.01)
    assert policy_for("accuracy", "f1", {}) == Policy(0.02, relative=False, higher_is_better=True)
    assert policy_for("accuracy", "mae_w", {}) == Policy(0.05)
    assert is_timing("latency", "median_ms", "ms") and is_timing("memory", "init_ms", "ms")
    assert is_timing("profile", "node_ms") and is_timing("latency", "loop_rate_hz", "Hz")
    assert not is_timing("latency", "delegated_nodes", "count")
    assert not is_timing("memory", "peak_rss_mb", "MB") and not is_timing("size", "size_bytes")


def test_suite_threshold_and_alpha():
    base, cur = [size_row(100_000)], [size_row(100_500)]
    assert row(compare(cur, base), "size_bytes")["mark"] == "~"
    c = compare(cur, base, thresholds={"size_bytes": 0.002, "alpha": 0.01})
    assert row(c, "size_bytes")["mark"] == "+" and c.alpha == 0.01
    assert compare(cur, base).alpha == DEFAULT_ALPHA


def test_fingerprint_from_runner_environment():
    fp = fingerprint(ENV)
    assert fp == {"runtime": "ai_edge_litert", "runtime_version": "2.3.0",
                  "cpu_model": "AMD EPYC", "governor": "performance", "os": "Linux-6.1-x86_64"}
    assert environment_diff(ENV, dict(ENV, governor="powersave")) == {
        "governor": ("performance", "powersave")}
    assert environment_diff(ENV, {}) == {}


# --------------------------------------------------------------------------- one side only

def test_target_missing_from_baseline_and_absent_from_run():
    c = compare(rows_of(latency(X), latency(X, target="rpi4")), rows_of(latency(X)))
    assert c.missing_targets == ["rpi4"]
    r = c.rows[c.rows["target"] == "rpi4"].iloc[0]
    assert r["mark"] == "x" and "target rpi4 not in baseline" in r["reason"]
    assert "not in baseline: rpi4" in c.summary()
    c = compare(rows_of(latency(X)), rows_of(latency(X), latency(X, target="rpi4")))
    assert c.absent_targets == ["rpi4"] and (c.rows["target"] != "rpi4").all()


def test_row_only_on_one_side():
    c = compare(rows_of(latency(X), latency(X, threads=2)), rows_of(latency(X)))
    assert row(c, threads=2)["mark"] == "x" and row(c, threads=2)["reason"] == "not in baseline"
    c = compare(rows_of(latency(X)), rows_of(latency(X), latency(X, threads=2)))
    assert row(c, threads=2)["reason"] == "in baseline, missing from this run"


# --------------------------------------------------------------------------- A/B merged in

def _ab(log_ratios: list[float]) -> SequentialAB:
    state = SequentialAB()
    for d in log_ratios:
        state.add(1.0, math.exp(d))
        state.decision()
    return state


def test_apply_ab_decides_the_latency_rows():
    base = rows_of(latency(X), latency(X, variant="f16"), latency(X, variant="w8_a8"),
                   latency(X, variant="w8_a16"))
    cur = rows_of(latency(X, 1.5, sha=SHA_B), latency(X, 1.5, variant="f16", sha=SHA_B),
                  latency(X, 1.5, variant="w8_a8", sha=SHA_B),
                  latency(X, 1.5, variant="w8_a16", sha=SHA_B))
    c = compare(cur, base)
    keys = {r["variant"]: series_key(r) for r in c.remeasure.to_dict("records")}
    assert set(keys) == {"w8", "f16", "w8_a8", "w8_a16"} and not c.regressed
    slower = _ab([0.18, 0.22, 0.2, 0.19, 0.21, 0.2])                  # +22 %, tight: REGRESSED
    same = _ab([0.01, -0.01] * 3)                                      # SAME at the first look
    wide = _ab([0.3, -0.25] * (DEFAULT_LOOKS[-1] // 2))                   # budget spent: UNKNOWN
    pending = _ab([0.1, 0.1])                                          # too few pairs
    decided = apply_ab(c, {keys["w8"]: slower.result(), keys["f16"]: same.result(),
                           keys["w8_a8"]: wide.result(), keys["w8_a16"]: pending.result()})
    w8, f16 = row(decided, variant="w8"), row(decided, variant="f16")
    assert w8["mark"] == "+" and w8["state"] == "regressed" and w8["pairs"] == 6
    assert w8["ratio"] == pytest.approx(math.exp(0.2)) and w8["ci_low"] > 1
    assert w8["change_pct"] == pytest.approx((math.exp(0.2) - 1) * 100)
    assert "A/B REGRESSED" in w8["reason"] and "stored runs +50.0 %" in w8["reason"]
    assert f16["mark"] == "~" and f16["state"] == "same" and f16["ci_high"] < 1.1
    assert row(decided, variant="w8_a8")["state"] == "unknown"
    assert row(decided, variant="w8_a16")["state"] == REMEASURE
    assert decided.regressed and decided.exit_code() == 1
    assert len(decided.remeasure) == 1 and "1 ? undecided by A/B" in decided.summary()
    # informational rows of the series are left as they were
    assert row(decided, "p90_ms", variant="w8")["mark"] == "?"
    # UNKNOWN and pending never fail
    assert not apply_ab(c, {keys["w8_a8"]: wide.result()}).regressed


# --------------------------------------------------------------------------- output

def test_output_columns_and_order():
    c = compare(rows_of(latency(X, 1.2, sha=SHA_B), size_row(110, sha=SHA_B)),
                rows_of(latency(X), size_row(100)))
    for column in ("mark", "state", "change_pct", "p_value", "reason", "changed", "counts",
                   "baseline_value", "value", "ratio", "ci_low", "ci_high", "pairs"):
        assert column in c.rows.columns
    assert c.rows["mark"].iloc[0] == "+"          # regressions first, then re-measure
    assert c.rows["mark"].iloc[1] == "?"
    assert c.count("+", counted_only=True) == 1


def test_renderers_show_every_mark():
    import io

    from rich.console import Console

    from harness.report.comparison import render_rich, to_csv, to_markdown

    base = rows_of(latency(X, variant="w8"), latency(X, variant="f16"), latency(X, model="tr"),
                   size_row(100), failure(model="old"))
    cur = rows_of(latency(X, 1.3, variant="w8", sha=SHA_B), latency(X, model="tr"),
                  latency(X, model="old"), latency(X, target="rpi4"), size_row(90),
                  failure(variant="f16"))
    c = compare(cur, base)
    assert {"?", "-", "!", "*", "x", "~"} <= set(c.rows["mark"])
    buf = io.StringIO()
    render_rich(c, Console(file=buf, width=250), show_unchanged=True)
    text = buf.getvalue()
    for needle in ("REGRESSION", "runner_crash", "fixed", "needs A/B",
                   "rpi4: not in the baseline"):
        assert needle in text
    md = to_markdown(c, show_unchanged=True)
    assert md.count("\n| ") == len(c.rows) + 1
    csv = to_csv(c)
    assert csv.splitlines()[0].startswith("target,model,variant")
    assert len(csv.splitlines()) == len(c.rows) + 1
