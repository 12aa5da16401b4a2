"""Nightly mode end to end through the CLI: baseline set, compare, --fail-on-regression exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from testutil import ROOT, run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def nightly(tmp_path_factory: pytest.TempPathFactory, harness_cache: Path) -> dict:
    """A copy of the smoke suite whose latency threshold is wide (this test is about the plumbing,
    not about noise), one run of it, and a baseline set from that run."""
    tmp = tmp_path_factory.mktemp("nightly")
    suite = tmp / "nightly.yaml"
    suite.write_text((ROOT / "suites" / "smoke.yaml").read_text().replace(
        "name: smoke", "name: nightly").replace("  profile:", "  # profile:")
        + "thresholds: {median_ms: 10.0}\n")
    env = {"HARNESS_CACHE": str(harness_cache)}
    args = ["--targets", "host", "--out", str(tmp / "out"), "--baselines", str(tmp / "baselines")]
    first = run_cli("run", str(suite), *args, env=env)
    assert first.returncode == 0, first.stderr[-2000:]
    run_dir = sorted((tmp / "out" / "nightly").glob("2*"))[0]
    baseline = run_cli("baseline", "set", str(run_dir), "--baselines", str(tmp / "baselines"))
    assert baseline.returncode == 0, baseline.stdout + baseline.stderr
    return {"tmp": tmp, "suite": suite, "env": env, "args": args, "run": run_dir,
            "baseline": tmp / "baselines" / "nightly.json"}


def test_baseline_file_is_written_and_diff_friendly(nightly: dict) -> None:
    text = nightly["baseline"].read_text()
    assert len(text.splitlines()) > 10  # one line per row / series, not one huge line
    document = json.loads(text)
    assert document["suite"] == "nightly"


def test_unchanged_run_exits_zero(nightly: dict) -> None:
    result = run_cli("run", str(nightly["suite"]), *nightly["args"], "--compare-baseline",
                     "--fail-on-regression", env=nightly["env"])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    run_dir = sorted((nightly["tmp"] / "out" / "nightly").glob("2*"))[-1]
    assert (run_dir / "compare.md").is_file()
    assert (nightly["tmp"] / "out" / "history.sqlite").is_file()


def test_bigger_model_is_a_regression_exit_one(nightly: dict, tmp_path: Path) -> None:
    # the baseline says the models used to be half the size: tonight's build "grew"
    baselines = tmp_path / "baselines"
    baselines.mkdir()
    lines = []
    for line in nightly["baseline"].read_text().splitlines():
        if '"size_bytes"' in line and '"value":' in line:
            row = json.loads(line.rstrip(","))
            row["value"] = row["value"] / 2
            line = json.dumps(row, sort_keys=True) + ("," if line.rstrip().endswith(",") else "")
        lines.append(line)
    (baselines / "nightly.json").write_text("\n".join(lines) + "\n")
    args = [a if a != str(nightly["tmp"] / "baselines") else str(baselines) for a in nightly["args"]]
    result = run_cli("run", str(nightly["suite"]), *args, "--compare-baseline",
                     "--fail-on-regression", env=nightly["env"])
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    assert "size_bytes" in result.stdout


def test_compare_command_against_itself_is_clean(nightly: dict) -> None:
    result = run_cli("compare", str(nightly["run"]), "--against", str(nightly["run"]))
    assert result.returncode == 0, result.stdout + result.stderr
