"""End to end: `harness run suites/smoke.yaml --targets host` through the real CLI, runtime and cache."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from testutil import run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory: pytest.TempPathFactory, harness_cache: Path) -> dict:
    """Two consecutive runs of the smoke suite sharing one artifact cache."""
    tmp = tmp_path_factory.mktemp("smoke")
    env = {"HARNESS_CACHE": str(harness_cache)}
    first = run_cli("run", "suites/smoke.yaml", "--targets", "host", "--out", str(tmp / "out"),
                    env=env)
    second = run_cli("run", "suites/smoke.yaml", "--targets", "host", "--out", str(tmp / "out"),
                     env=env)
    runs = sorted((tmp / "out" / "smoke").iterdir())
    return {"first": first, "second": second, "runs": runs}


def test_run_succeeds_and_stores_the_run(smoke_runs: dict) -> None:
    first = smoke_runs["first"]
    assert first.returncode == 0, first.stderr[-3000:]
    run_dir = smoke_runs["runs"][0]
    for name in ("results.csv", "run.json", "report.md", "samples.jsonl", "harness.log"):
        assert (run_dir / name).is_file(), name
    assert "Latency on host" in first.stdout


def test_latency_rows_cover_every_variant_and_thread_count(smoke_runs: dict) -> None:
    frame = pd.read_csv(smoke_runs["runs"][0] / "results.csv")
    latency = frame[(frame.measurement == "latency") & (frame.metric == "median_ms")]
    assert set(zip(latency.variant, latency.threads)) == {
        ("convert_only", 1), ("convert_only", 2), ("w8_a8", 1), ("w8_a8", 2)}
    assert (latency.value > 0).all()
    assert (latency.runtime == "ai_edge_litert").all()
    # XNNPACK takes the whole graph of the float and the int8 model
    assert (latency.delegate == "XNNPACK").all()
    assert (latency.delegated_nodes == 1).all() and (latency.undelegated_ops == 0).all()
    assert (latency.n >= 30).all()
    assert set(frame.suite.dropna()) == {"smoke"}


def test_raw_samples_match_the_summary(smoke_runs: dict) -> None:
    run_dir = smoke_runs["runs"][0]
    frame = pd.read_csv(run_dir / "results.csv")
    series = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]
    assert len(series) == 4
    one = series[0]
    row = frame[(frame.metric == "median_ms") & (frame.variant == one["variant"])
                & (frame.threads == one["threads"])].iloc[0]
    assert row.n == len(one["samples"])
    assert row.value == pytest.approx(float(pd.Series(one["samples"]).median()), rel=1e-3)


def test_run_json_records_environment_and_versions(smoke_runs: dict) -> None:
    meta = json.loads((smoke_runs["runs"][0] / "run.json").read_text())
    env = meta["environment"]["host"]
    assert env["arch"] and env["cpu_model"] and env["cores"] >= 1
    assert env["runtimes"]["ai_edge_litert"]
    assert meta["suite"]["name"] == "smoke" and meta["inventory"]["host"]["kind"] == "cpu"


def test_accuracy_and_memory_rows(smoke_runs: dict) -> None:
    frame = pd.read_csv(smoke_runs["runs"][0] / "results.csv")
    accuracy = frame[frame.measurement == "accuracy"]
    assert set(accuracy.metric) >= {"mae", "f1", "mcc", "sae", "nde", "acc"}
    memory = frame[frame.measurement == "memory"]
    assert set(memory.metric) >= {"rss_footprint_mb", "init_ms"}
    size = frame[frame.measurement == "size"]
    assert (size[size.unit == "B"].value > 1000).all()              # bytes on disk, gzipped
    assert set(size.metric) >= {"size_bytes", "gzip_bytes", "parameter_count", "weight_sparsity"}
    sparsity = size[size.metric == "weight_sparsity"].value
    assert ((sparsity >= 0) & (sparsity < 0.05)).all()             # nothing was pruned


def test_second_run_rebuilds_nothing(smoke_runs: dict) -> None:
    second = smoke_runs["second"]
    assert second.returncode == 0, second.stderr[-3000:]
    assert "0 built" in second.stdout
    first = pd.read_csv(smoke_runs["runs"][0] / "results.csv")
    again = pd.read_csv(smoke_runs["runs"][1] / "results.csv")
    assert set(first.artifact_sha256.dropna()) == set(again.artifact_sha256.dropna())


def test_report_rerenders_a_stored_run(smoke_runs: dict, tmp_path: Path) -> None:
    run_dir = smoke_runs["runs"][0]
    md = run_cli("report", str(run_dir), "--format", "md")
    assert md.returncode == 0 and "## Latency on host" in md.stdout
    assert md.stdout == (run_dir / "report.md").read_text()
    csv = run_cli("report", str(run_dir), "--format", "csv", "--output", str(tmp_path / "r.csv"))
    assert csv.returncode == 0
    assert len(pd.read_csv(tmp_path / "r.csv")) == len(pd.read_csv(run_dir / "results.csv"))


def test_resume_measures_only_what_is_missing(smoke_runs: dict, harness_cache: Path,
                                              tmp_path: Path) -> None:
    """A copy of a run whose w8_a8 job never finished (its rows gone, no results.csv yet):
    `--resume` measures that job into the same directory and keeps everything else as it was."""
    import shutil

    run_dir = tmp_path / smoke_runs["runs"][0].name
    shutil.copytree(smoke_runs["runs"][0], run_dir)
    lines = (run_dir / "rows.jsonl").read_text().splitlines()
    kept = [line for line in lines if json.loads(line)["variant"] != "w8_a8"
            or json.loads(line)["measurement"] not in ("latency", "accuracy", "memory")]
    assert len(kept) < len(lines)
    (run_dir / "rows.jsonl").write_text("\n".join(kept) + "\n")
    (run_dir / "results.csv").unlink()
    before = pd.read_json(run_dir / "rows.jsonl", lines=True, precise_float=True)
    before = before[(before.metric == "median_ms")].set_index(["variant", "threads"]).value

    result = run_cli("run", "--resume", str(run_dir), env={"HARNESS_CACHE": str(harness_cache)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert str(run_dir) in result.stdout and "0 built" in result.stdout
    frame = pd.read_csv(run_dir / "results.csv")
    medians = frame[frame.metric == "median_ms"].set_index(["variant", "threads"]).value
    assert set(medians.index) == {("convert_only", 1), ("convert_only", 2), ("w8_a8", 1),
                                  ("w8_a8", 2)}
    assert medians.loc[before.index].equals(before)     # nothing measured earlier changed
    assert set(frame[frame.measurement == "accuracy"].variant) >= {"convert_only", "w8_a8"}
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["format_version"] == 1 and meta["run_id"] == run_dir.name
    assert meta["environment"]["host"]["cores"] >= 1


def test_the_run_says_where_its_time_went(smoke_runs: dict) -> None:
    """run.json and the terminal split the wall time: training, conversion, measuring, other."""
    meta = json.loads((smoke_runs["runs"][1] / "run.json").read_text())
    split = meta["time_split"]
    assert set(split) == {"training", "conversion", "measuring", "other"}
    assert split["training"] == 0.0                     # the second run reuses the cached model
    assert split["measuring"] > 0 and all(seconds >= 0 for seconds in split.values())
    assert sum(split.values()) == pytest.approx(meta["seconds"], abs=0.5)
    assert "time: training 0 s, conversion" in smoke_runs["second"].stdout
