"""`harness targets --check`: probe over a real sshd, hints, rendering."""

from __future__ import annotations

import platform

import pytest
from rich.console import Console

from harness.config.inventory import Inventory
from harness.probe import check_targets, hints_for, pick_runtime, probe, render_check
from harness.transport import connect


def test_probe_a_loopback_target(sshd):
    target = sshd.target()
    with connect("lo", target) as tr:
        info = probe(tr, target)
    assert info["reachable"] is True and info["reason"] is None
    assert info["arch"] == platform.machine()
    assert info["python"].count(".") == 2
    assert info["os"]
    assert isinstance(info["disk_free_mb"], int) and info["disk_free_mb"] > 0
    assert isinstance(info["hints"], list)


def test_probe_reports_a_missing_python(sshd):
    target = sshd.target(python="/nonexistent/python3")
    with connect("lo", target) as tr:
        info = probe(tr, target)
    assert info["reachable"] is True
    assert "not found" in info["reason"]


def test_hints_name_the_fix():
    assert any("pip install ai-edge-litert" in h for h in hints_for({"runtimes": {}, "numpy": "1.26.4"}))
    hints = hints_for({"runtimes": {"tflite_runtime": {"version": "2.14.0", "error": "ImportError"}},
                       "numpy": "2.1.0"})
    assert any('pip install "numpy<2"' in h for h in hints)
    assert not any("numpy<2" in h for h in hints_for(
        {"runtimes": {"tflite_runtime": {"version": "2.14.0"}}, "numpy": "1.26.4"}))
    assert any("performance" in h for h in hints_for(
        {"runtimes": {"ai_edge_litert": {"version": "2.3.0"}}, "numpy": "2.0", "governor": "ondemand"}))


def test_runtime_order_follows_the_runner():
    assert pick_runtime({"tensorflow": {"version": "2.16"}, "tflite_runtime": {"version": "2.14"}}) \
        == ("tflite_runtime", "2.14")
    assert pick_runtime({"tflite_runtime": {"version": "2.14", "error": "x"},
                         "tensorflow": {"version": "2.16"}}) == ("tensorflow", "2.16")
    assert pick_runtime({}) == (None, None)


def test_check_targets_reports_down_devices_as_rows(sshd_factory):
    up, down = sshd_factory(), sshd_factory()
    down.stop()
    inv = Inventory(targets={"up": up.inventory_entry(), "down": down.inventory_entry()})
    results = check_targets(["up", "down"], inv)
    by = {r["target"]: r for r in results}
    assert by["up"]["reachable"] is True and by["up"]["arch"] == platform.machine()
    assert by["down"]["reachable"] is False and by["down"]["error_kind"] == "unreachable"
    console = Console(width=200, record=True)
    console.print(render_check(results))
    text = console.export_text()
    assert "down" in text and "refused" in text and platform.machine() in text


@pytest.mark.slow  # the CLI in a fresh process
def test_targets_check_cli(sshd_factory, tmp_path):
    import sys

    import yaml

    from testutil import run_cli

    up, down = sshd_factory(), sshd_factory()
    down.stop()
    inv = tmp_path / "inventory.yaml"
    inv.write_text(yaml.safe_dump({"targets": {
        "up": up.inventory_entry(python=sys.executable), "down": down.inventory_entry()}}))
    proc = run_cli("targets", "--check", "--inventory", str(inv), "--targets", "up")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert platform.machine() in proc.stdout and "ai_edge_litert" in proc.stdout
    proc = run_cli("targets", "--check", "--inventory", str(inv))
    assert proc.returncode == 3
    assert "refused" in proc.stdout and "up" in proc.stdout
