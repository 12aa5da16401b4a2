"""benchmark_model parser on the real (recorded CSV) and reconstructed (console) fixtures."""

from __future__ import annotations

import pytest

from harness.devices.cpu import benchmark_model_command
from harness.parsers.benchmark_model import parse
from testutil import FIXTURES

BM = FIXTURES / "benchmark_model"


def csv(name: str) -> dict:
    output = parse((BM / name).read_text())
    assert output.profile and not output.unplaced and not output.misread
    assert {k for k, v in output.console.items() if v} == {"generation"}
    return output.profile


def console(name: str) -> dict:
    output = parse((BM / name).read_text())
    assert output.profile == {} and not output.misread
    return output.console


def by_type(section: dict) -> dict:
    return {entry["node_type"]: entry for entry in section["summary"]}


def test_cnn_convert_only_aarch64() -> None:
    parsed = csv("kettle_cnn_convert_only_profile_aarch64.csv")
    init, runs = parsed["init"], parsed["runs"]
    assert [n["name"] for n in init["nodes"]] == ["ModifyGraphWithDelegate/0", "AllocateTensors/0"]
    assert init["nodes"][0]["first_ms"] == 152.049
    assert init["nodes"][0]["avg_ms"] == 76.0715
    assert init["nodes"][0]["times_called"] == 2
    assert init["timings"] == {"count": 1, "curr": 152336}
    assert len(runs["nodes"]) == runs["nodes_executed"] == runs["nodes_observed"] == 15
    first = runs["nodes"][0]
    assert first["node_type"] == "Fully Connected (NC, F32) GEMM"
    assert first["name"] == "Delegate/Fully Connected (NC, F32) GEMM:4"  # TAB → comma
    assert first["avg_ms"] == 0.00691026 and first["pct"] == 0.0539899
    conv = next(n for n in runs["nodes"] if n["node_type"].startswith("Convolution"))
    assert conv["times_called"] == 5 and conv["avg_ms"] == 0.137238
    assert runs["nodes"][3]["name"] == "[cnn/conv1d/Conv1D/ExpandDims]:0"
    types = by_type(runs)
    assert list(types) == ["Fully Connected (NC, F32) GEMM", "Convolution (NHWC, F32) IGEMM",
                           "Max Pooling (NHWC, F32)", "Copy (NC, X32)", "EXPAND_DIMS"]
    assert types["Fully Connected (NC, F32) GEMM"]["avg_ms"] == 11.961
    assert types["Fully Connected (NC, F32) GEMM"]["pct"] == 93.4964
    assert types["Fully Connected (NC, F32) GEMM"]["count"] == 3
    assert types["EXPAND_DIMS"]["count"] == 9 and types["EXPAND_DIMS"]["times_called"] == 9
    assert runs["timings"] == {"count": 78, "first": 12915, "curr": 13336, "min": 12406,
                               "max": 13826, "avg": 12799.2, "std": 227}
    assert runs["memory"] == {"count": 0}


def test_cnn_w8_a8_aarch64_copy_nodes_with_tabs() -> None:
    runs = csv("kettle_cnn_w8_a8_profile_aarch64.csv")["runs"]
    assert len(runs["nodes"]) == 22
    assert runs["nodes"][0]["name"] == "Delegate/Copy (NC, X8):0"
    assert runs["nodes"][0]["node_type"] == "Copy (NC, X8)"
    assert runs["nodes"][6]["avg_ms"] == pytest.approx(8.52459e-05)
    assert all("\t" not in n["name"] for n in runs["nodes"])
    fc = runs["nodes"][19]
    assert (fc["name"], fc["avg_ms"], fc["pct"]) == (
        "Delegate/Fully Connected (NC, QS8) GEMM:19", 2.71996, 85.0978)
    types = by_type(runs)
    assert types["Fully Connected (NC, QS8) GEMM"]["avg_ms"] == 2.859
    assert types["Fully Connected (NC, QS8) GEMM"]["pct"] == 89.6238
    assert types["Convolution (NHWC, QC8) IGEMM"]["count"] == 5
    assert types["Copy (NC, X8)"]["count"] == 10 and types["Copy (NC, X8)"]["avg_ms"] == 0
    assert runs["timings"]["count"] == 305 and runs["timings"]["avg"] == 3196.28
    assert csv("kettle_cnn_w8_a8_profile_aarch64.csv")["init"]["nodes"][0]["mem_kb"] == 20880


def test_transformer_w8_x86_many_builtin_nodes() -> None:
    runs = csv("kettle_transformer_w8_profile_x86.csv")["runs"]
    assert len(runs["nodes"]) == runs["nodes_executed"] == 326
    assert runs["nodes"][78]["name"] == ("[multi_headed_attention/dense_3/Tensordot/GatherV2;"
                                         "multi_headed_attention/dense/Tensordot/GatherV2/axis]:78")
    assert runs["nodes"][-1]["name"] == "[StatefulPartitionedCall:0]:325"
    assert runs["nodes"][1]["node_type"] == "CONV_2D" and runs["nodes"][1]["avg_ms"] == 0.15068
    types = by_type(runs)
    assert len(types) == 25
    assert (types["FULLY_CONNECTED"]["count"], types["FULLY_CONNECTED"]["avg_ms"],
            types["FULLY_CONNECTED"]["pct"]) == (14, 16.101, 78.9807)
    assert types["RESHAPE"]["count"] == 48
    assert runs["timings"] == {"count": 50, "first": 20931, "curr": 20069, "min": 19993,
                               "max": 21005, "avg": 20496.2, "std": 337}
    assert csv("kettle_transformer_w8_profile_x86.csv")["init"]["timings"]["curr"] == 276


def test_cnn_w8_x86_builtin_and_xnnpack_names_mix() -> None:
    runs = csv("microwave_cnn_w8_profile_x86.csv")["runs"]
    assert len(runs["nodes"]) == 20
    node_types = {n["node_type"] for n in runs["nodes"]}
    assert {"CONV_2D", "FULLY_CONNECTED", "Convolution (NHWC, F32) IGEMM",
            "Fully Connected (NC, F32) GEMM", "Copy (NC, X32)"} <= node_types
    dense = next(n for n in runs["nodes"] if n["name"].startswith("[cnn/dense/MatMul"))
    assert dense["avg_ms"] == 0.363758 and dense["pct"] == 50.6117
    assert dense["name"] == "[cnn/dense/MatMul;cnn/dense/Relu;cnn/dense/BiasAdd]:27"
    types = by_type(runs)
    assert (types["FULLY_CONNECTED"]["count"], types["FULLY_CONNECTED"]["avg_ms"]) == (2, 0.383)
    assert types["CONV_2D"]["pct"] == 29.5105
    assert types["Fully Connected (NC, F32) GEMM"]["avg_ms"] == 0
    assert runs["timings"]["count"] == 1325 and runs["timings"]["avg"] == 718.723


def test_console_variant_a_plain() -> None:
    out = console("stdout_variant_a_rpi4_xnnpack.txt")
    assert out["generation"] == "plain"
    assert (out["init_us"], out["first_inference_us"], out["warmup_avg_us"],
            out["inference_avg_us"]) == (21406, 3902, 3371.5, 3196.28)
    assert out["warmup"] == {"count": 148, "first": 3902, "curr": 3288, "min": 3190, "max": 3954,
                             "avg": 3371.5, "std": 112}
    assert out["runs"]["count"] == 305 and out["runs"]["std"] == 59
    assert out["memory"] == {"footprint_init_mb": 21.3594, "footprint_overall_mb": 23.3633}
    assert (out["threads"], out["model_size_mb"], out["init_session_ms"]) == (4, 10.648, 21.406)
    assert out["delegate"] == "XNNPACK"


def test_console_variant_b_info_prefix() -> None:
    out = console("stdout_variant_b_info_prefix.txt")
    assert out["generation"] == "info_prefix"
    assert out["inference_avg_us"] == 718.723 and out["first_inference_us"] == 1021
    assert out["init_us"] == 9840 and out["warmup_avg_us"] == 762.4
    assert out["runs"]["count"] == 1325 and out["warmup"]["count"] == 655
    assert out["memory"] == {"footprint_init_mb": 10.9102, "footprint_overall_mb": 12.7109,
                             "peak_monitored_mb": 16.5234, "vmrss_mb": 16, "rss_anon_mb": 11,
                             "rss_file_shmem_mb": 5}
    assert out["graph"] == "microwave_cnn_w8.tflite"


def test_console_variant_c_old_peak_footprint() -> None:
    out = console("stdout_variant_c_tf23.txt")
    assert out["generation"] == "peak_footprint"
    assert (out["init_us"], out["first_inference_us"], out["warmup_avg_us"],
            out["inference_avg_us"]) == (1184, 14120, 13077.8, 12799.2)
    assert out["memory"] == {"peak_init_mb": 0, "peak_overall_mb": 84.957}
    assert "runs" not in out


def test_command_line() -> None:
    assert benchmark_model_command("/opt/bm", "m.tflite", 4, 10, 50, "/tmp/p.csv") == [
        "/opt/bm", "--graph=m.tflite", "--num_threads=4", "--warmup_runs=10", "--num_runs=50",
        "--enable_op_profiling=true", "--profiling_output_csv_file=/tmp/p.csv"]


# --------------------------------------------------------------------------- console table layouts

def same_profile(console_section: dict, csv_section: dict) -> None:
    """A console table section holds the CSV's data, rounded to the 3 decimals the tables print."""
    assert [(n["name"], n["node_type"], n["times_called"]) for n in console_section["nodes"]] == \
        [(n["name"], n["node_type"], n["times_called"]) for n in csv_section["nodes"]]
    for got, want in zip(console_section["nodes"], csv_section["nodes"]):
        for key in ("first_ms", "avg_ms", "pct", "cdf_pct", "mem_kb"):
            assert got[key] == pytest.approx(want[key], abs=5.1e-4), (got["name"], key)
    assert [(e["node_type"], e["count"], e["times_called"]) for e in console_section["summary"]] \
        == [(e["node_type"], e["count"], e["times_called"]) for e in csv_section["summary"]]
    for got, want in zip(console_section["summary"], csv_section["summary"]):
        assert got["avg_ms"] == pytest.approx(want["avg_ms"], abs=5.1e-4)
        assert got["pct"] == pytest.approx(want["pct"], abs=5.1e-4)
    for key in ("timings", "memory", "nodes_executed", "nodes_observed"):
        assert console_section[key] == csv_section[key]


def test_console_tables_with_tabs_and_a_start_column() -> None:
    output = parse((BM / "console_profile_tabs_start_rpi4.txt").read_text())
    assert not output.unplaced and not output.misread
    recorded = csv("kettle_cnn_w8_a8_profile_aarch64.csv")
    assert set(output.profile) == {"init", "runs"}
    for name in ("init", "runs"):
        same_profile(output.profile[name], recorded[name])
    runs = output.profile["runs"]["nodes"]
    assert runs[0]["start_ms"] == 0 and runs[1]["start_ms"] == pytest.approx(runs[0]["avg_ms"])
    assert runs[19]["name"] == "Delegate/Fully Connected (NC, QS8) GEMM:19"  # ", " kept as is


def test_console_tables_info_titles_and_tabs_expanded_to_spaces() -> None:
    output = parse((BM / "console_profile_info_spaces_x86.txt").read_text())
    assert not output.misread
    recorded = csv("microwave_cnn_w8_profile_x86.csv")
    for name in ("init", "runs"):
        same_profile(output.profile[name], recorded[name])
    assert "start_ms" not in output.profile["runs"]["nodes"][0]
    assert output.console == console("stdout_variant_b_info_prefix.txt")


def test_tf1_untitled_tables_and_average_timings() -> None:
    output = parse((BM / "tf1_untitled_tables_average_timings.txt").read_text())
    assert not output.unplaced and not output.misread
    assert set(output.profile) == {"runs"}  # TF 1.x prints no section titles
    runs = output.profile["runs"]
    assert len(runs["nodes"]) == runs["nodes_observed"] == 15
    assert {n["times_called"] for n in runs["nodes"]} == {0}  # not counted by TF 1.x
    assert runs["timings"]["avg"] == 12799.2
    out = output.console
    assert out["generation"] == "average_timings"
    assert (out["warmup_avg_us"], out["init_us"], out["inference_avg_us"]) == (13077.8, 1184,
                                                                                12799.2)
    assert out["warmup"]["count"] == 39 and out["runs"]["count"] == 78


def test_tf1_console_no_stats() -> None:
    out = console("tf1_console_no_stats.txt")
    assert out["generation"] == "average_timings"
    assert (out["warmup_avg_us"], out["init_us"], out["inference_avg_us"]) == (3371.5, 21406,
                                                                                3196.28)
    assert out["runs"]["count"] == 305 and out["init_session_ms"] == 21.406
    assert parse((BM / "tf1_console_no_stats.txt").read_text()).unplaced == []


def test_a_table_row_in_an_unknown_layout_is_misread_not_dropped() -> None:
    lines = (BM / "console_profile_tabs_start_rpi4.txt").read_text().splitlines()
    row = next(i for i, line in enumerate(lines) if "Delegate/Copy (NC, X8):0" in line)
    lines[row] = lines[row].replace("%", "")  # a layout without percent signs
    output = parse("\n".join(lines))
    assert output.misread == [(row + 1, lines[row].strip())]
    assert "Delegate/Copy (NC, X8):0" not in [n["name"] for n in output.profile["runs"]["nodes"]]


def test_unknown_lines_are_reported() -> None:
    output = parse("hello\nNum threads: [4]\ncount=3 first=1 curr=1 min=1 max=1 avg=1 std=0\n")
    assert output.unplaced == [(1, "hello")]
    assert output.console["runs"]["count"] == 3  # a count= line on its own: the regular runs
