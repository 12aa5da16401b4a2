"""`import_files`: every tool output fixture becomes tidy rows with the right values."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import UserError
from harness.importer import import_files
from harness.results.schema import COLUMNS, to_frame
from testutil import FIXTURES

IDS = {"target": "rpi4", "model": "kettle_cnn", "variant": "w8_a8"}


def rows_of(tool: str, *names: str) -> list[dict]:
    folder = {"benchmark_model": "benchmark_model", "edgetpu_compiler": "edgetpu_compiler",
              "trtexec": "trtexec"}[tool]
    return import_files(tool, [FIXTURES / folder / n for n in names], **IDS)


def one(rows: list[dict], metric: str, key: str | None = None, measurement: str | None = None,
        ) -> dict:
    found = [r for r in rows if r["metric"] == metric and (key is None or r["key"] == key)
             and (measurement is None or r["measurement"] == measurement)]
    assert len(found) == 1, (metric, key, len(found))
    return found[0]


def check_common(rows: list[dict], tool: str) -> None:
    assert rows
    for r in rows:
        assert set(r) == set(COLUMNS)
        assert (r["target"], r["model"], r["variant"]) == ("rpi4", "kettle_cnn", "w8_a8")
        assert r["method"] == tool and r["runtime"] == tool and r["status"] == "ok"
        assert r["measurement"] in ("latency", "profile", "memory", "size", "build")
    to_frame(rows)  # the store's frame accepts them


def test_every_benchmark_model_fixture_imports() -> None:
    files = sorted((FIXTURES / "benchmark_model").iterdir())
    assert len(files) == 11
    for f in files:
        rows = import_files("benchmark_model", [f], **IDS)
        check_common(rows, "benchmark_model")
        assert {r["device_kind"] for r in rows} == {"cpu"}


def test_benchmark_model_csv_rows() -> None:
    rows = rows_of("benchmark_model", "kettle_cnn_w8_a8_profile_aarch64.csv")
    fc = "Fully Connected (NC, QS8) GEMM"
    assert one(rows, "type_ms", fc)["value"] == pytest.approx(2.859)
    assert one(rows, "type_pct", fc)["value"] == pytest.approx(89.6238)
    assert one(rows, "type_count", fc)["value"] == pytest.approx(3)
    node = "Delegate/Fully Connected (NC, QS8) GEMM:19"
    assert one(rows, "node_ms", node)["value"] == pytest.approx(2.71996)
    assert one(rows, "node_ms", node)["node_type"] == fc
    assert one(rows, "node_pct", node)["value"] == pytest.approx(85.0978)
    copy = one(rows, "node_ms", "Delegate/Copy (NC, X8):0")
    assert copy["node_type"] == "Copy (NC, X8)" and copy["n"] == 305
    assert len([r for r in rows if r["metric"] == "node_ms"]) == 22
    # the final Timings line: latency rows in ms, n = count
    mean = one(rows, "mean_ms", measurement="latency")
    assert mean["value"] == pytest.approx(3.19628) and (mean["n"], mean["unit"]) == (305, "ms")
    assert one(rows, "min_ms")["value"] == pytest.approx(3.107) and one(rows, "max_ms")["value"] == pytest.approx(3.869)
    assert one(rows, "std_ms")["value"] == pytest.approx(0.059) and one(rows, "first_ms")["value"] == pytest.approx(3.431)
    assert one(rows, "whole_ms")["value"] == pytest.approx(3.19628)
    assert one(rows, "init_ms")["value"] == pytest.approx(55.884)  # initialization Timings
    assert one(rows, "init_node_avg_ms", "ModifyGraphWithDelegate/0")["value"] == pytest.approx(55.765)


def test_benchmark_model_csv_node_time_accounts_for_times_called() -> None:
    rows = rows_of("benchmark_model", "kettle_cnn_convert_only_profile_aarch64.csv")
    conv = "Delegate/Convolution (NHWC, F32) IGEMM:0"
    assert one(rows, "node_avg_ms", conv)["value"] == pytest.approx(0.137238)
    assert one(rows, "node_times_called", conv)["value"] == pytest.approx(5)
    assert one(rows, "node_ms", conv)["value"] == pytest.approx(0.68619)
    assert one(rows, "type_ms", "Fully Connected (NC, F32) GEMM")["value"] == pytest.approx(11.961)
    assert one(rows, "mean_ms")["value"] == pytest.approx(12.7992) and one(rows, "mean_ms")["n"] == 78
    ratio = one(rows, "sum_vs_whole_ratio")
    assert ratio["value"] == pytest.approx(1.0, abs=1e-3) and ratio["method"] == "benchmark_model"


def test_benchmark_model_transformer_and_mixed_names() -> None:
    rows = rows_of("benchmark_model", "kettle_transformer_w8_profile_x86.csv")
    assert one(rows, "type_ms", "FULLY_CONNECTED")["value"] == pytest.approx(16.101)
    assert one(rows, "type_count", "RESHAPE")["value"] == pytest.approx(48)
    assert len([r for r in rows if r["metric"] == "type_ms"]) == 25
    assert one(rows, "mean_ms")["value"] == pytest.approx(20.4962) and one(rows, "mean_ms")["n"] == 50
    rows = rows_of("benchmark_model", "microwave_cnn_w8_profile_x86.csv")
    types = {r["key"] for r in rows if r["metric"] == "type_ms"}
    assert {"FULLY_CONNECTED", "CONV_2D", "Convolution (NHWC, F32) IGEMM"} <= types
    assert one(rows, "type_pct", "FULLY_CONNECTED")["value"] == pytest.approx(53.5664)
    assert one(rows, "mean_ms")["value"] == pytest.approx(0.718723) and one(rows, "mean_ms")["n"] == 1325


def test_benchmark_model_console_generations() -> None:
    a = rows_of("benchmark_model", "stdout_variant_a_rpi4_xnnpack.txt")
    assert one(a, "init_ms", measurement="memory")["value"] == pytest.approx(21.406)
    assert one(a, "first_inference_ms")["value"] == pytest.approx(3.902)
    assert one(a, "warmup_mean_ms")["value"] == pytest.approx(3.3715) and one(a, "warmup_mean_ms")["n"] == 148
    assert one(a, "mean_ms")["value"] == pytest.approx(3.19628) and one(a, "mean_ms")["n"] == 305
    assert one(a, "footprint_overall_mb")["value"] == pytest.approx(23.3633)
    assert one(a, "footprint_init_mb")["value"] == pytest.approx(21.3594)
    assert one(a, "size_mb")["value"] == pytest.approx(10.648)
    assert {r["threads"] for r in a} == {4} and {r["delegate"] for r in a} == {"XNNPACK"}
    b = rows_of("benchmark_model", "stdout_variant_b_info_prefix.txt")
    assert one(b, "mean_ms")["value"] == pytest.approx(0.718723)
    assert one(b, "peak_monitored_mb")["value"] == pytest.approx(16.5234)
    assert one(b, "vmrss_mb")["value"] == pytest.approx(16)
    assert one(b, "rss_anon_mb")["value"] == pytest.approx(11) and one(b, "rss_file_shmem_mb")["value"] == pytest.approx(5)
    c = rows_of("benchmark_model", "stdout_variant_c_tf23.txt")
    assert one(c, "peak_overall_mb")["value"] == pytest.approx(84.957)
    assert one(c, "peak_init_mb")["value"] == pytest.approx(0)
    assert one(c, "mean_ms")["value"] == pytest.approx(12.7992) and one(c, "init_ms")["value"] == pytest.approx(1.184)
    assert one(c, "first_inference_ms")["value"] == pytest.approx(14.12)
    assert one(c, "warmup_mean_ms")["value"] == pytest.approx(13.0778)


def test_benchmark_model_console_tables_without_console_timings() -> None:
    """Only the profile tables pasted: latency from their Timings line, as from the CSV."""
    tables = rows_of("benchmark_model", "console_profile_tabs_start_rpi4.txt")
    recorded = rows_of("benchmark_model", "kettle_cnn_w8_a8_profile_aarch64.csv")
    assert [(r["measurement"], r["metric"], r["key"]) for r in tables] == \
        [(r["measurement"], r["metric"], r["key"]) for r in recorded]
    for got, want in zip(tables, recorded):
        assert got["value"] == pytest.approx(want["value"], rel=1e-3, abs=2e-3), got["metric"]
    assert one(tables, "mean_ms", measurement="latency")["value"] == pytest.approx(3.19628)


def test_benchmark_model_console_with_tables() -> None:
    """Console lines and profile tables in one paste: each metric once, latency from the console."""
    rows = rows_of("benchmark_model", "console_profile_info_spaces_x86.txt")
    seen = [(r["measurement"], r["metric"], r["key"]) for r in rows]
    assert len(seen) == len(set(seen))
    assert one(rows, "mean_ms")["value"] == pytest.approx(0.718723)
    assert one(rows, "mean_ms")["n"] == 1325
    assert one(rows, "peak_monitored_mb")["value"] == pytest.approx(16.5234)
    assert one(rows, "type_ms", "FULLY_CONNECTED")["value"] == pytest.approx(0.383)
    assert len([r for r in rows if r["metric"] == "node_ms"]) == 20


def test_benchmark_model_tf1_layouts() -> None:
    rows = rows_of("benchmark_model", "tf1_untitled_tables_average_timings.txt")
    assert one(rows, "mean_ms")["value"] == pytest.approx(12.7992)
    assert one(rows, "warmup_mean_ms")["value"] == pytest.approx(13.0778)
    assert one(rows, "init_ms")["value"] == pytest.approx(1.184)
    conv = "Delegate/Convolution (NHWC, F32) IGEMM:0"
    assert one(rows, "node_ms", conv)["value"] == pytest.approx(0.137)  # 0 calls counted as 1
    assert one(rows, "node_times_called", conv)["value"] == 0
    assert one(rows, "type_ms", "Fully Connected (NC, F32) GEMM")["value"] == pytest.approx(11.961)
    rows = rows_of("benchmark_model", "tf1_console_no_stats.txt")
    mean = one(rows, "mean_ms")
    assert mean["value"] == pytest.approx(3.19628) and mean["n"] == 305
    assert one(rows, "warmup_mean_ms")["value"] == pytest.approx(3.3715)
    assert one(rows, "init_ms")["value"] == pytest.approx(21.406)
    assert one(rows, "std_ms")["value"] == pytest.approx(0.059)


def test_benchmark_model_unknown_table_layout_names_the_line(tmp_path: Path) -> None:
    lines = (FIXTURES / "benchmark_model" / "console_profile_tabs_start_rpi4.txt").read_text() \
        .splitlines()
    row = next(i for i, line in enumerate(lines) if "Delegate/Copy (NC, X8):0" in line)
    lines[row] = lines[row].replace("%", "")
    odd = tmp_path / "odd.txt"
    odd.write_text("\n".join(lines))
    with pytest.raises(UserError, match=rf"line {row + 1}: 'Copy \(NC, X8\) 0.000 0.002"):
        import_files("benchmark_model", [odd], **IDS)


def test_several_files_in_one_import() -> None:
    rows = rows_of("benchmark_model", "kettle_cnn_w8_a8_profile_aarch64.csv",
                   "stdout_variant_a_rpi4_xnnpack.txt")
    assert {r["measurement"] for r in rows} == {"latency", "profile", "memory", "size"}


def test_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="unknown tool"):
        import_files("perf", [FIXTURES / "benchmark_model" / "stdout_variant_c_tf23.txt"], **IDS)
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(UserError, match="empty"):
        import_files("benchmark_model", [empty], **IDS)
    junk = tmp_path / "junk.txt"
    junk.write_text("hello\n")
    with pytest.raises(UserError, match="no benchmark_model.*line 1: 'hello'"):
        import_files("benchmark_model", [junk], **IDS)
    with pytest.raises(UserError, match="cannot read"):
        import_files("benchmark_model", [tmp_path / "missing.txt"], **IDS)


# --------------------------------------------------------------------------- other tools

def values(rows: list[dict]) -> set:
    return {round(float(r["value"]), 6) for r in rows if r["value"] is not None}


def test_edgetpu_compiler_fixtures() -> None:
    log = rows_of("edgetpu_compiler", "kettle_cnn_w8_a8_edgetpu.log")
    check_common(log, "edgetpu_compiler")
    assert {r["device_kind"] for r in log} == {"edgetpu"}
    counts = {r["key"]: r["value"] for r in log if r["key"] in
              ("MAX_POOL_2D", "FULLY_CONNECTED", "CONV_2D", "RESHAPE")}
    assert counts == {"MAX_POOL_2D": 4, "FULLY_CONNECTED": 3, "CONV_2D": 5, "RESHAPE": 10}
    summary = rows_of("edgetpu_compiler", "stdout_v2_partial_cpu.txt")
    check_common(summary, "edgetpu_compiler")
    assert {44, 17, 61, 2} <= values(summary)  # ops on TPU / CPU, total, subgraphs


def test_trtexec_fixtures() -> None:
    summary = rows_of("trtexec", "summary_trt10.txt")
    check_common(summary, "trtexec")
    assert {r["device_kind"] for r in summary} == {"tensorrt"}
    assert {1873.41, 0.521973, 0.503418, 0.688477} <= values(summary)  # qps, medians, p99
    profile = rows_of("trtexec", "profile_5key.json")
    check_common(profile, "trtexec")
    keys = {r["key"] for r in profile}
    assert "cnn/dense/MatMul + cnn/dense/Relu" in keys
    assert {0.299744, 58.7751} <= values(profile)
    console = rows_of("trtexec", "dump_profile_console.txt")
    check_common(console, "trtexec")


def test_benchmark_model_run_rows_without_duplicates() -> None:
    """A run with both outputs (as the runner path collects them): each metric once."""
    from harness.results.profile_rows import benchmark_model_rows

    folder = FIXTURES / "benchmark_model"
    rows = benchmark_model_rows((folder / "kettle_cnn_w8_a8_profile_aarch64.csv").read_text(),
                                (folder / "stdout_variant_a_rpi4_xnnpack.txt").read_text(), IDS)
    seen = [(r["measurement"], r["metric"], r["key"]) for r in rows]
    assert len(seen) == len(set(seen))
    assert one(rows, "mean_ms")["value"] == pytest.approx(3.19628)
    assert one(rows, "init_ms")["value"] == pytest.approx(21.406)  # console Init, not the CSV's
    assert one(rows, "type_ms", "Fully Connected (NC, QS8) GEMM")["value"] == pytest.approx(2.859)
