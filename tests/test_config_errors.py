"""Bad input gets exit code 2 and one line naming the file and field (through the real CLI)."""

from __future__ import annotations

from pathlib import Path

import pytest

from testutil import ROOT, run_cli

GOOD_SUITE = (ROOT / "suites" / "smoke.yaml").read_text()
# each test starts the CLI in a new process (about 2 s of CPU): the fast suite keeps a few
SLOW_CLI = pytest.mark.slow


def _suite(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    return path


def _error_line(result) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr  # one line, no traceback
    assert "Traceback" not in result.stderr
    return lines[0]


@SLOW_CLI
def test_suite_that_does_not_exist(tmp_path: Path) -> None:
    line = _error_line(run_cli("run", str(tmp_path / "nope.yaml"), "--targets", "host"))
    assert "suite file not found" in line and "nope.yaml" in line


@SLOW_CLI
def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = _suite(tmp_path, "name: x\nvariants: [w8\nmodels: {\n")
    line = _error_line(run_cli("run", str(path), "--targets", "host"))
    assert f"{path}:" in line and "YAML syntax error" in line


@SLOW_CLI
def test_unknown_key_in_suite(tmp_path: Path) -> None:
    path = _suite(tmp_path, GOOD_SUITE.replace("variants:", "colour: blue\nvariants:"))
    line = _error_line(run_cli("run", str(path), "--targets", "host"))
    assert "colour" in line and "unknown key" in line and str(path) in line
    lineno = GOOD_SUITE.replace("variants:", "colour: blue\nvariants:").splitlines().index(
        "colour: blue") + 1
    assert f"{path}:{lineno}:" in line


@SLOW_CLI
def test_thread_count_zero(tmp_path: Path) -> None:
    path = _suite(tmp_path, GOOD_SUITE.replace("threads: [1, 2]", "threads: [0, 2]"))
    line = _error_line(run_cli("run", str(path), "--targets", "host"))
    assert "measurements.latency" in line and "thread count 0" in line


@SLOW_CLI
def test_unknown_quantization_mode(tmp_path: Path) -> None:
    path = _suite(tmp_path, GOOD_SUITE.replace("[convert_only, w8_a8]", "[convert_only, int4]"))
    line = _error_line(run_cli("run", str(path), "--targets", "host"))
    assert "variants.1" in line and "'int4'" in line and "w8_a16" in line


@SLOW_CLI
def test_unknown_target_lists_targets_and_groups() -> None:
    line = _error_line(run_cli("run", "suites/smoke.yaml", "--targets", "nosuch"))
    assert "'nosuch'" in line and "host" in line and "rpi4" in line and "groups: arm" in line


@SLOW_CLI
def test_inventory_target_without_kind(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text("targets:\n  host:\n    workdir: /tmp/x\n")
    line = _error_line(run_cli("run", "suites/smoke.yaml", "--targets", "host", "--inventory",
                               str(inventory)))
    assert f"{inventory}:3:" in line and "targets.host.kind" in line and "missing" in line


@pytest.mark.parametrize("name", ["a;touch pwned", "$(id)"])
def test_unsafe_target_names_are_rejected(tmp_path: Path, name: str) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(f"targets:\n  '{name}':\n    kind: cpu\n")
    line = _error_line(run_cli("targets", "--inventory", str(inventory), cwd=tmp_path))
    assert "not allowed" in line
    assert not (tmp_path / "pwned").exists()


@SLOW_CLI
def test_workload_errors_name_the_field_inside_the_kind(tmp_path: Path) -> None:
    text = ("name: mine\nworkload:\n  kind: generic\n  models: [{name: m, path: m.keras}]\n"
            "  data: d.npz\n  metric: f1\n")
    path = _suite(tmp_path, text)
    line = _error_line(run_cli("run", str(path), "--targets", "host"))
    assert f"{path}:6: workload.metric:" in line and "'f1'" in line and "top_k" in line
    path = _suite(tmp_path, GOOD_SUITE.replace("kind: nilm", "kind: vision"))
    line = _error_line(run_cli("run", str(path), "--targets", "host"))
    assert "workload" in line and "nilm or generic" in line


def test_epochs_per_architecture(tmp_path: Path) -> None:
    """`training.epochs` is one number or one per architecture; a mapping that leaves out an
    architecture of the suite is an error naming the field."""
    from harness.config import load_suite
    from harness.errors import UserError

    text = GOOD_SUITE.replace("training: {epochs: 1,", "training: {epochs: {cnn: 3, transformer: 5},")
    assert text != GOOD_SUITE
    training = load_suite(_suite(tmp_path, text)).workload.training
    assert (training.epochs_for("cnn"), training.epochs_for("transformer")) == (3, 5)
    text = GOOD_SUITE.replace("training: {epochs: 1,", "training: {epochs: {transformer: 5},")
    with pytest.raises(UserError, match=r"training\.epochs has no entry for 'cnn'"):
        load_suite(_suite(tmp_path, text))
