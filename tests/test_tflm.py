"""TFLM arena through the real tflite-micro interpreter, and the MCU fit check."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.artifacts import tflm_arena as tflm
from harness.parsers.tflm import parse_print_allocations
from harness.results.profile_rows import tflm_rows
from testutil import FIXTURES

runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def seq2point_int8(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seq2point-shaped NILM CNN (window 599), full-integer int8 (bench/opsplit_ratio.py)."""
    import sys

    sys.path.insert(0, str(ROOT / "bench"))
    from opsplit_ratio import build_cnn, convert

    path = tmp_path_factory.mktemp("tflm") / "cnn_w8_a8.tflite"
    path.write_bytes(convert(build_cnn(), "w8_a8", calibration_windows=4))
    return path


def test_parse_fixture() -> None:
    text = (FIXTURES / "tflm" / "print_allocations_cnn_int8.txt").read_text()
    parsed = parse_print_allocations(text)
    assert (parsed["total_bytes"], parsed["head_bytes"], parsed["tail_bytes"]) == (59184, 53920, 5264)
    records = {r["what"]: r for r in parsed["records"]}
    assert records["Persistent buffer data"] == {"what": "Persistent buffer data",
                                                 "used_bytes": 2864, "requested_bytes": 2768,
                                                 "count": 24, "unit": "allocations"}
    assert records["TfLiteEvalTensor data"]["count"] == 29
    assert records["NodeAndRegistration struct"]["used_bytes"] == 768


def test_parse_without_total_is_a_user_error() -> None:
    from harness.errors import UserError

    with pytest.raises(UserError, match="Arena allocation total"):
        parse_print_allocations("nothing here\n")


def test_int8_cnn_arena_equals_print_allocations_and_one_byte_less_fails(
        seq2point_int8: Path) -> None:
    arena = tflm.tflm_arena(seq2point_int8)
    n = arena["arena_bytes"]
    # print_allocations() (captured from fd 2) for an interpreter with exactly that arena
    reported = parse_print_allocations(tflm.print_allocations(seq2point_int8, n))
    assert reported["total_bytes"] == n == arena["reported_bytes"]
    assert tflm.tflm_arena_bytes(seq2point_int8) == n
    # a generous arena reports the same up to the 16-byte alignment padding
    assert 0 <= arena["reported_generous_bytes"] - n < 16
    data = seq2point_int8.read_bytes()
    runtime.Interpreter.from_bytes(data, arena_size=n)  # exactly N works
    with pytest.raises(RuntimeError):
        runtime.Interpreter.from_bytes(data, arena_size=n - 1)


def test_tiny_int8_arena_covers_prepare_time_memory(tiny_models: dict) -> None:
    """Per-channel CONV_2D takes temporary memory while preparing: the arena can exceed the report."""
    path = tiny_models["w8_a8"]
    arena = tflm.tflm_arena(path)
    assert arena["arena_bytes"] >= arena["reported_bytes"]
    data = Path(path).read_bytes()
    runtime.Interpreter.from_bytes(data, arena_size=arena["arena_bytes"])
    with pytest.raises(RuntimeError):
        runtime.Interpreter.from_bytes(data, arena_size=arena["arena_bytes"] - 1)
    assert tflm.allocates(path, arena["arena_bytes"])
    assert not tflm.allocates(path, arena["arena_bytes"] - 1)


def test_float_model_runs_under_tflm(tiny_models: dict) -> None:
    assert tflm.tflm_supports(tiny_models["convert_only"]) == (True, None)
    assert tflm.tflm_arena_bytes(tiny_models["convert_only"]) > 0


def test_unloadable_model_is_reported() -> None:
    with pytest.raises(tflm.TFLMError):
        tflm.tflm_arena_bytes(FIXTURES / "tflm" / "print_allocations_cnn_int8.txt")


def test_variants() -> None:
    assert tflm.tflm_can_run("convert_only") and tflm.tflm_can_run("w8_a8")
    assert not tflm.tflm_can_run("w8") and not tflm.tflm_can_run("f16")
    assert "dynamic-range" in tflm.why_not("w8")
    assert tflm.why_not("w8_a8") is None


def test_fits_with_margins() -> None:
    fit = tflm.fits(59184, 120_000, ram_kb=256, flash_kb=1024)
    assert fit["fits"] is True
    assert fit["ram_margin_bytes"] == 256 * 1024 - 59184
    assert fit["flash_margin_bytes"] == 1024 * 1024 - 120_000
    assert fit["ram_used_pct"] == round(100 * 59184 / (256 * 1024), 2)
    too_big = tflm.fits(300_000, 2_000_000, ram_kb=256, flash_kb=1024)
    assert too_big["fits"] is False and too_big["ram_fits"] is False
    assert too_big["flash_margin_bytes"] == 1024 * 1024 - 2_000_000
    unknown = tflm.fits(1000, 1000, None, None)
    assert unknown["fits"] is None and unknown["ram_margin_bytes"] is None
    ram_only = tflm.fits(1000, 10**9, 8, None)
    assert ram_only["fits"] is True and ram_only["flash_fits"] is None


def test_rows(tiny_models: dict) -> None:
    fields = {"target": "arduino", "model": "tiny", "variant": "w8_a8"}
    rows = tflm_rows(tiny_models["w8_a8"], "w8_a8", fields, ram_kb=256, flash_kb=1024)
    metrics = {r["metric"]: r for r in rows}
    assert metrics["tflm_arena_bytes"]["value"] == tflm.tflm_arena_bytes(tiny_models["w8_a8"])
    assert metrics["tflm_arena_bytes"]["method"] == "tflm"
    assert metrics["mcu_fits"]["value"] == 1
    assert metrics["ram_margin_bytes"]["value"] == 256 * 1024 - metrics["tflm_arena_bytes"]["value"]
    assert tflm_rows(tiny_models["w8_a8"], "w8", fields) == []
