"""Nightly mode end to end through the CLI, with the suites' real thresholds: baseline set (pinned in
the artifact store), an unchanged rerun, a wider model, a variant that no longer converts, and
the exit codes of --fail-on-regression.

Every run is a real `harness run` in a fresh process. The A/B re-measurement driver lives on its
own branch: the runs that have suspect latency rows use --no-ab here (those rows stay `?`, named);
the unchanged rerun runs with A/B on and has nothing to re-measure. The latency verdict through
the driver is tested with the driver.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from testutil import ROOT, run_cli

pytestmark = pytest.mark.slow

SMOKE = ROOT / "suites" / "smoke.yaml"


def _latest(out: Path, suite: str) -> Path:
    return sorted((out / suite).glob("2*"))[-1]


def _compare_csv(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "compare.csv", dtype={"ab": "string", "reason": "string"})


def _counted_medians(table: pd.DataFrame) -> pd.DataFrame:
    return table[(table["metric"] == "median_ms") & table["counts"]]


INVENTORY = """\
targets:
  host:
    kind: cpu
    workdir: {workdir}
    runtime: {runtime}
"""


def _inventory(tmp: Path, runtime: str = "auto") -> Path:
    """A host target with a work directory of its own: job ids are not unique across runs, so
    two runs sharing ~/.cache/harness/targets/host at the same time read each other's results."""
    path = tmp / f"inventory-{runtime}.yaml"
    path.write_text(INVENTORY.format(workdir=tmp / "work", runtime=runtime))
    return path


@pytest.fixture(scope="module")
def nightly(tmp_path_factory: pytest.TempPathFactory, harness_cache: Path) -> dict:
    """One run of suites/smoke.yaml (its real thresholds) and a baseline set from it."""
    tmp = tmp_path_factory.mktemp("nightly")
    env = {"HARNESS_CACHE": str(harness_cache), "HARNESS_ARTIFACT_STORE": ""}
    args = ["--targets", "host", "--out", str(tmp / "out"), "--baselines", str(tmp / "baselines"),
            "--inventory", str(_inventory(tmp))]
    first = run_cli("run", str(SMOKE), *args, env=env)
    assert first.returncode == 0, first.stderr[-2000:]
    run_dir = _latest(tmp / "out", "smoke")
    baseline = run_cli("baseline", "set", str(run_dir), "--baselines", str(tmp / "baselines"),
                       env=env)
    assert baseline.returncode == 0, baseline.stdout + baseline.stderr
    return {"tmp": tmp, "env": env, "args": args, "run": run_dir, "set": baseline.stdout,
            "baseline": tmp / "baselines" / "smoke.json"}


def test_baseline_is_written_pinned_and_diff_friendly(nightly: dict) -> None:
    text = nightly["baseline"].read_text()
    assert len(text.splitlines()) > 10  # one line per row / series, not one huge line
    document = json.loads(text)
    assert document["suite"] == "smoke"
    assert document["protocol"]["latency"]["runs"] == 30          # the measurement protocol
    medians = [r for r in document["rows"] if r["metric"] == "median_ms"]
    assert len(medians) == 4 and all(len(r["artifact_sha256"]) == 64 for r in medians)
    # the run stored its artifacts; `baseline set` found every one of them (pinned)
    store = nightly["tmp"] / "out" / "artifacts"
    assert "pinned in" in nightly["set"]
    for row in medians:
        assert (store / f"{row['artifact_sha256']}.tflite").is_file()


def test_unchanged_rerun_exits_zero(nightly: dict) -> None:
    result = run_cli("run", str(SMOKE), *nightly["args"], "--compare-baseline",
                     "--fail-on-regression", env=nightly["env"])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    run_dir = _latest(nightly["tmp"] / "out", "smoke")
    assert run_dir != nightly["run"] and (run_dir / "compare.md").is_file()
    assert (nightly["tmp"] / "out" / "history.sqlite").is_file()
    table = _compare_csv(run_dir)
    counted = table[table["counts"]]
    assert not counted["mark"].isin(["+", "!", "?"]).any(), counted[["mark", "metric", "reason"]]
    medians = _counted_medians(table)
    assert len(medians) == 4 and (medians["mark"] == "~").all()
    assert medians["reason"].str.contains("nothing under test changed").all()
    # A/B was on and had nothing to re-measure: the same artifacts on both sides
    assert "A/B (auto, budget 300 s, at most 20 series): 0 series re-measured" in result.stdout
    assert "no regression" in result.stdout


def test_wider_cnn_is_a_regression_naming_its_size(nightly: dict, tmp_path: Path) -> None:
    suite = tmp_path / "smoke.yaml"
    text = SMOKE.read_text()
    assert "cnn: {filters: [8, 8]," in text
    suite.write_text(text.replace("cnn: {filters: [8, 8],", "cnn: {filters: [32, 32],"))
    result = run_cli("run", str(suite), *nightly["args"], "--compare-baseline",
                     "--fail-on-regression", "--no-ab", env=nightly["env"])
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    assert "REGRESSION" in result.stdout and "size_bytes" in result.stdout
    table = _compare_csv(_latest(nightly["tmp"] / "out", "smoke"))
    size = table[(table["metric"] == "size_bytes") & (table["measurement"] == "size")]
    assert len(size) == 2 and (size["mark"] == "+").all() and size["counts"].all()
    assert size["changed"].str.startswith("artifact ").all()       # tonight's build: new sha256
    params = table[table["metric"] == "parameter_count"]
    assert (params["mark"] == "+").all()
    assert "changed: artifact kettle_cnn/convert_only" in result.stdout
    # latency of the new build: `?` (A/B off here), never a silent pass and never `x`
    medians = _counted_medians(table)
    assert len(medians) == 4 and (medians["mark"] == "?").all()
    assert (medians["ab"] == "not A/B-tested: A/B off").all()
    # a noisy candidate (IQR/median > 10 %, as stored) says so in its reason
    rows = pd.read_csv(_latest(nightly["tmp"] / "out", "smoke") / "results.csv")
    stored = rows[(rows["metric"] == "median_ms")]
    for record in stored.to_dict("records"):
        row = medians[(medians["variant"] == record["variant"])
                      & (medians["threads"] == record["threads"])].iloc[0]
        if record["valid"] is False or str(record["valid"]) == "False":
            assert "this run not trustworthy" in row["reason"], row["reason"]
    assert not (table["mark"] == "x").any(), table[table["mark"] == "x"][["metric", "reason"]]


# --------------------------------------------------------------------------- a lost variant

GENERIC = """\
name: lost
workload:
  kind: generic
  models: [{{name: tiny, path: {model}}}]
  data: data.npz
  metric: mae
variants: [convert_only, w8_a16]
measurements:
  latency: {{threads: [1], warmup_runs: 2, warmup_seconds: 0, runs: 20, min_seconds: 0.05, rounds: 1}}
"""
def _keras_models(folder: Path) -> None:
    """Two versions of one model: Dense layers, and the same with a LayerNormalization, which the
    16x8 converter refuses ("Quantization to 16x8-bit not yet supported for op: 'NEG'")."""
    import keras
    import numpy as np

    keras.utils.set_random_seed(0)
    layers = keras.layers
    for name, norm in (("dense.keras", False), ("normed.keras", True)):
        inputs = keras.Input((16,))
        x = layers.Dense(8, activation="relu")(inputs)
        if norm:
            x = layers.LayerNormalization()(x)
        keras.Model(inputs, layers.Dense(1)(x)).save(folder / name)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 16)).astype(np.float32)
    np.savez(folder / "data.npz", x=x, y=x[:, :1])


@pytest.fixture(scope="module")
def lost(tmp_path_factory: pytest.TempPathFactory, harness_cache: Path) -> dict:
    """A baseline of the generic model in convert_only and w8_a16, both converted and measured."""
    tmp = tmp_path_factory.mktemp("lost")
    _keras_models(tmp)
    for model in ("dense", "normed"):
        (tmp / f"{model}.yaml").write_text(GENERIC.format(model=f"{model}.keras"))
    for runtime in ("auto", "ai_edge_litert"):
        _inventory(tmp, runtime)
    env = {"HARNESS_CACHE": str(harness_cache), "HARNESS_ARTIFACT_STORE": ""}
    args = ["--targets", "host", "--out", str(tmp / "out"), "--baselines", str(tmp / "baselines")]
    first = run_cli("run", str(tmp / "dense.yaml"), *args, "--inventory",
                    str(tmp / "inventory-auto.yaml"), env=env)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    frame = pd.read_csv(_latest(tmp / "out", "lost") / "results.csv")
    ok = frame[(frame["metric"] == "median_ms") & (frame["status"] == "ok")]
    assert set(ok["variant"]) == {"convert_only", "w8_a16"}         # both converted
    baseline = run_cli("baseline", "set", str(_latest(tmp / "out", "lost")), "--baselines",
                       str(tmp / "baselines"), env=env)
    assert baseline.returncode == 0, baseline.stdout + baseline.stderr
    return {"tmp": tmp, "env": env, "args": args}


@pytest.mark.parametrize("runtime", ["auto", "ai_edge_litert"])
def test_variant_that_no_longer_converts_is_newly_failing(lost: dict, runtime: str) -> None:
    tmp = lost["tmp"]
    result = run_cli("run", str(tmp / "normed.yaml"), *lost["args"], "--inventory",
                     str(tmp / f"inventory-{runtime}.yaml"), "--compare-baseline",
                     "--fail-on-regression", "--no-ab", env=lost["env"])
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    assert "newly failing" in result.stdout and "conversion_failed" in result.stdout
    table = _compare_csv(_latest(tmp / "out", "lost"))
    bang = table[table["mark"] == "!"]
    assert len(bang) == 1, table[["mark", "variant", "metric", "reason"]]
    row = bang.iloc[0]
    assert (row["variant"], row["runtime"], row["error_kind"]) == ("w8_a16", runtime,
                                                                    "conversion_failed")
    assert "16x8" in row["reason"] and "ok in baseline" in row["reason"]
    # the baseline's w8_a16 rows are consumed by the failure, not listed as missing
    assert not table["reason"].str.contains("missing from this run").any()


def test_compare_command_against_itself_is_clean(nightly: dict) -> None:
    result = run_cli("compare", str(nightly["run"]), "--against", str(nightly["run"]),
                     env=nightly["env"])
    assert result.returncode == 0, result.stdout + result.stderr
