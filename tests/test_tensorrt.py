"""Jetson / TensorRT: trtexec output (three summary layouts, profile JSON with 4 or 5 keys, raw
--exportTimes) parsed into records and rows; the trtexec command per TensorRT version; the ONNX
artifacts (float and typed) really built; a missing trtexec an actionable row.

trtexec itself is a stand-in executable (tests/data/standins/trtexec.py) per version, 8.6, 10.3
and 11.0, written into a temporary directory: it accepts or rejects options as that version does,
logs warnings on stderr and writes --exportTimes / --exportProfile files, and the real device kind
runs it through the local transport."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from accel_util import artifact_for, make_ctx, make_suite
from harness import stats
from harness.devices import KINDS, tensorrt
from harness.parsers import trtexec
from testutil import FIXTURES, ROOT

SUMMARY10 = FIXTURES / "trtexec" / "summary_trt10.txt"
PROFILE5 = FIXTURES / "trtexec" / "profile_5key.json"
DUMP = FIXTURES / "trtexec" / "dump_profile_console.txt"
SUMMARY11 = FIXTURES / "trtexec" / "summary_trt11_no_transfers.txt"
TENSORRT = KINDS["tensorrt"]

# TensorRT 8.0-8.5 layout: only percentile(99%), and the coefficient-of-variance warning.
SUMMARY8 = """[03/14/2023-10:02:11] [I] === Performance summary ===
[03/14/2023-10:02:11] [I] Throughput: 1166.27 qps
[03/14/2023-10:02:11] [I] Latency: min = 0.769775 ms, max = 2.19348 ms, mean = 0.833398 ms, median = 0.82373 ms, percentile(99%) = 1.00513 ms
[03/14/2023-10:02:11] [I] Enqueue Time: min = 0.312744 ms, max = 1.12402 ms, mean = 0.351971 ms, median = 0.345337 ms, percentile(99%) = 0.50293 ms
[03/14/2023-10:02:11] [I] H2D Latency: min = 0.00537109 ms, max = 0.0397949 ms, mean = 0.00686264 ms, median = 0.00665283 ms, percentile(99%) = 0.0128174 ms
[03/14/2023-10:02:11] [I] GPU Compute Time: min = 0.762573 ms, max = 2.18262 ms, mean = 0.825635 ms, median = 0.815674 ms, percentile(99%) = 0.99707 ms
[03/14/2023-10:02:11] [I] D2H Latency: min = 0.00170898 ms, max = 0.0117188 ms, mean = 0.00190037 ms, median = 0.00183105 ms, percentile(99%) = 0.00317383 ms
[03/14/2023-10:02:11] [I] Total Host Walltime: 3.00187 s
[03/14/2023-10:02:11] [I] Total GPU Compute Time: 2.88897 s
[03/14/2023-10:02:11] [W] * GPU compute time is unstable, with coefficient of variance = 7.07%.
[03/14/2023-10:02:11] [W]   If not already in use, locking GPU clock frequency or adding --useSpinWait may improve the stability.
[03/14/2023-10:02:11] [I] Explanations of the performance metrics are printed in the verbose logs.
"""

# TensorRT 7 layout: a multi-line block per quantity.
SUMMARY7 = """[08/07/2020-13:50:14] [I] Host Latency
[08/07/2020-13:50:14] [I] min: 1.2644 ms (end to end 1.27325 ms)
[08/07/2020-13:50:14] [I] max: 2.01447 ms (end to end 2.07825 ms)
[08/07/2020-13:50:14] [I] mean: 1.32013 ms (end to end 2.5513 ms)
[08/07/2020-13:50:14] [I] median: 1.30908 ms (end to end 2.55493 ms)
[08/07/2020-13:50:14] [I] percentile: 1.62427 ms at 99% (end to end 2.69653 ms at 99%)
[08/07/2020-13:50:14] [I] throughput: 0 qps
[08/07/2020-13:50:14] [I] walltime: 3.00226 s
[08/07/2020-13:50:14] [I] Enqueue Time
[08/07/2020-13:50:14] [I] min: 0.296875 ms
[08/07/2020-13:50:14] [I] max: 0.651855 ms
[08/07/2020-13:50:14] [I] median: 0.318604 ms
[08/07/2020-13:50:14] [I] GPU Compute
[08/07/2020-13:50:14] [I] min: 1.24805 ms
[08/07/2020-13:50:14] [I] max: 1.99805 ms
[08/07/2020-13:50:14] [I] mean: 1.30318 ms
[08/07/2020-13:50:14] [I] median: 1.29224 ms
[08/07/2020-13:50:14] [I] percentile: 1.60742 ms at 99%
[08/07/2020-13:50:14] [I] total compute time: 2.96957 s
"""


def value(rows: list[dict], metric: str, key: str | None = None) -> float:
    found = [r["value"] for r in rows if r["metric"] == metric and r["key"] == key]
    assert len(found) == 1, (metric, key, found)
    return found[0]


def test_trt10_summary_keeps_gpu_compute_and_host_latency_apart() -> None:
    rows = trtexec.parse_summary(SUMMARY10.read_text())
    assert value(rows, "throughput_qps") == 1873.41
    assert value(rows, "host_latency_median_ms") == 0.521973
    assert value(rows, "host_latency_p90_ms") == 0.553711
    assert value(rows, "host_latency_p95_ms") == 0.571289
    assert value(rows, "host_latency_p99_ms") == 0.688477
    assert value(rows, "gpu_compute_median_ms") == 0.503418
    assert value(rows, "gpu_compute_p99_ms") == 0.667969
    assert value(rows, "gpu_compute_min_ms") == 0.473633
    assert value(rows, "enqueue_mean_ms") == 0.214752
    assert value(rows, "h2d_p95_ms") == 0.0112305
    assert value(rows, "d2h_max_ms") == 0.0351562
    assert value(rows, "host_walltime_s") == 3.00094
    assert value(rows, "total_gpu_compute_s") == 2.87655
    assert not [r for r in rows if r["metric"] == "gpu_compute_cov_pct"]
    assert all(r["measurement"] == "latency" and r["method"] == "trtexec" for r in rows)
    assert len(rows) == 1 + 5 * 7 + 2


def test_trt8_summary_with_only_p99_and_the_cov_warning() -> None:
    rows = trtexec.parse_summary(SUMMARY8)
    assert value(rows, "throughput_qps") == 1166.27
    assert value(rows, "host_latency_p99_ms") == 1.00513
    assert value(rows, "gpu_compute_median_ms") == 0.815674
    assert not [r for r in rows if r["metric"] in ("host_latency_p90_ms", "gpu_compute_p95_ms")]
    cov = [r for r in rows if r["metric"] == "gpu_compute_cov_pct"][0]
    assert cov["value"] == 7.07 and cov["valid"] is False and "--useSpinWait" in cov["hint"]
    gpu = [r for r in rows if r["metric"] == "gpu_compute_median_ms"][0]
    assert gpu["valid"] is False
    host = [r for r in rows if r["metric"] == "host_latency_median_ms"][0]
    assert host["valid"] is None


def test_trt7_multi_line_block() -> None:
    rows = trtexec.parse_summary(SUMMARY7)
    assert value(rows, "host_latency_median_ms") == 1.30908
    assert value(rows, "end_to_end_median_ms") == 2.55493
    assert value(rows, "host_latency_p99_ms") == 1.62427
    assert value(rows, "end_to_end_p99_ms") == 2.69653
    assert value(rows, "enqueue_median_ms") == 0.318604
    assert value(rows, "gpu_compute_mean_ms") == 1.30318
    assert value(rows, "gpu_compute_p99_ms") == 1.60742
    assert value(rows, "host_walltime_s") == 3.00226
    assert value(rows, "total_gpu_compute_s") == 2.96957
    assert not [r for r in rows if r["metric"] == "throughput_qps"]  # TensorRT 7 printed 0 qps


def test_profile_json_with_five_keys() -> None:
    rows = trtexec.parse_profile_json(PROFILE5.read_text())
    layer = "cnn/dense/MatMul + cnn/dense/Relu"
    assert value(rows, "profile_iterations") == 5620
    assert value(rows, "node_ms", layer) == 0.300404
    assert value(rows, "node_pct", layer) == 58.7751
    assert value(rows, "node_total_ms", layer) == 1688.27
    assert value(rows, "node_median_ms", layer) == 0.299744
    assert len({r["key"] for r in rows if r["key"]}) == 4
    assert all(r["measurement"] == "profile" for r in rows)


def test_profile_json_with_four_keys() -> None:
    records = json.loads(PROFILE5.read_text())
    for record in records[1:]:
        del record["medianMs"]
    rows = trtexec.parse_profile_json(json.dumps(records))
    assert value(rows, "node_ms", "cnn/dense_1/MatMul") == 0.128241
    assert not [r for r in rows if r["metric"] == "node_median_ms"]


def test_dump_profile_console() -> None:
    rows = trtexec.parse_dump_profile(DUMP.read_text())
    assert value(rows, "profile_iterations") == 5620
    assert value(rows, "node_ms", "cnn/conv1d/Conv1D + cnn/conv1d/Relu") == 0.0716
    assert value(rows, "node_median_ms", "cnn/dense_1/MatMul") == 0.1280
    assert not [r for r in rows if r["key"] == "Total"]


def test_export_times_feed_the_common_statistics() -> None:
    rng = np.random.default_rng(0)
    latency = 0.5 + rng.gamma(2.0, 0.01, 300)
    compute = latency - 0.02
    records, t = [], 0.0
    for lat, comp in zip(latency, compute):
        records.append({"startEnqMs": t, "endEnqMs": t + 0.2, "startComputeMs": t + 0.01,
                        "endComputeMs": t + 0.01 + comp, "startOutMs": t + comp,
                        "endOutMs": t + lat, "inMs": 0.009, "computeMs": comp, "outMs": 0.009,
                        "latencyMs": lat, "endToEndMs": lat + 0.1})
        t += 0.6
    rows = tensorrt.times_rows(json.dumps(records))
    expected = stats.summarize(latency)
    assert value(rows, "median_ms") == pytest.approx(expected.median)
    assert value(rows, "p99_ms") == pytest.approx(expected.p99)
    assert value(rows, "iqr_ms") == pytest.approx(expected.iqr)
    assert value(rows, "gpu_median_ms") == pytest.approx(np.median(compute))
    median = [r for r in rows if r["metric"] == "median_ms"][0]
    assert median["n"] == 300 and median["method"] == "trtexec_times"


def test_trtexec_command_below_11_uses_precision_flags_and_trtexecs_separate_profile_run(
        ) -> None:
    argv = tensorrt.trtexec_command("/usr/src/tensorrt/bin/trtexec", "artifacts/a.onnx",
                                    "engines/a-fp16-trt10.3.0.engine", "fp16", warmup_ms=300,
                                    duration_s=3, iterations=50, times="results/t.json",
                                    profile="results/p.json", build=True, major=10)
    assert argv == ["/usr/src/tensorrt/bin/trtexec", "--onnx=artifacts/a.onnx",
                    "--saveEngine=engines/a-fp16-trt10.3.0.engine", "--fp16", "--warmUp=300",
                    "--duration=3", "--iterations=50", "--exportTimes=results/t.json",
                    "--exportProfile=results/p.json", "--separateProfileRun"]
    cached = tensorrt.trtexec_command("trtexec", "a.onnx", "e.engine", "int8", warmup_ms=200,
                                      duration_s=1, iterations=10, times="t", profile="p",
                                      build=False, major=8)
    assert cached[1:3] == ["--loadEngine=e.engine", "--int8"]
    assert "--onnx=a.onnx" not in cached and "--includeDataTransfers" not in cached
    fp32 = tensorrt.trtexec_command("trtexec", "a.onnx", "e", "fp32", warmup_ms=1, duration_s=1,
                                    iterations=1, times="t", profile="p", build=True, major=10)
    assert "--fp16" not in fp32 and "--int8" not in fp32


def test_trtexec_command_from_11_is_strongly_typed_with_data_transfers() -> None:
    for precision in ("fp32", "fp16", "int8"):
        argv = tensorrt.trtexec_command("trtexec", "a.onnx", "e", precision, warmup_ms=200,
                                        duration_s=1, iterations=10, times="t", profile="p",
                                        build=True, major=11)
        assert argv == ["trtexec", "--onnx=a.onnx", "--saveEngine=e", "--warmUp=200",
                        "--duration=1", "--iterations=10", "--exportTimes=t",
                        "--includeDataTransfers"]
    assert tensorrt.profile_command("trtexec", "e", "p", warmup_ms=200, iterations=10) == [
        "trtexec", "--loadEngine=e", "--warmUp=200", "--duration=0", "--iterations=10",
        "--exportProfile=p"]


def test_engine_cache_name_has_tensorrt_version_and_precision() -> None:
    assert tensorrt.engine_name("ab" * 32, "int8", "10.3.0") == \
        f"engines/{'ab' * 8}-int8-trt10.3.0.engine"


def test_unsupported_variants() -> None:
    from harness.config.inventory import Target

    jetson = Target(kind="tensorrt", ssh="nvidia@jetson.local")
    for variant in ("convert_only", "f16", "w8_a8"):
        assert TENSORRT.unsupported(jetson, variant) is None
    assert "convert_only" in TENSORRT.unsupported(jetson, "w8")
    assert "ONNX" in TENSORRT.unsupported(jetson, "as_is")


STANDIN = ROOT / "tests" / "data" / "standins" / "trtexec.py"
BUILD_TAGS = {"8.6.1": "", "10.3.0": "b17", "11.0.0": "b114"}


def install_trtexec(folder: Path, version: str, cov_pct: float = 0.0) -> Path:
    """The trtexec stand-in of one TensorRT version as an executable in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    text = (STANDIN.read_text().replace("{{VERSION}}", version)
            .replace("{{BUILD}}", BUILD_TAGS[version]).replace("{{COV_PCT}}", str(cov_pct)))
    exe = folder / "trtexec"
    exe.write_text(f"#!{sys.executable}\n" + text)
    exe.chmod(0o755)
    return exe


def calls(exe: Path) -> list[list[str]]:
    """The argv of every run of a stand-in, in order (`--help` probes left out)."""
    log = exe.parent / "trtexec.calls.jsonl"
    return [c["argv"] for c in map(json.loads, log.read_text().splitlines())
            if c["argv"] != ["--help"]]


def run_standin(exe: Path, cwd: Path, *flags: str) -> subprocess.CompletedProcess:
    (cwd / "m.onnx").write_bytes(b"onnx")
    return subprocess.run([str(exe), "--onnx=m.onnx", *flags], cwd=cwd, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize("version, precision_flags, include_transfers",
                         [("8.6.1", True, False), ("10.3.0", True, False),
                          ("11.0.0", False, True)])
def test_standins_accept_and_reject_flags_as_each_version_does(
        tmp_path: Path, version: str, precision_flags: bool, include_transfers: bool) -> None:
    exe = install_trtexec(tmp_path / "bin", version)
    for flag in ("--fp16", "--int8"):
        res = run_standin(exe, tmp_path, flag)
        assert (res.returncode == 0) == precision_flags, (flag, res.stderr)
        if not precision_flags:
            assert f"[E] Unknown option: {flag}" in res.stderr
            assert "&&&& FAILED TensorRT.trtexec [TensorRT v110000] [b114]" in res.stdout
    res = run_standin(exe, tmp_path, "--includeDataTransfers")
    assert (res.returncode == 0) == include_transfers, res.stderr
    banner = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60)
    assert trtexec.parse_version(banner.stdout) == version
    assert trtexec.parse_major(banner.stdout) == int(version.split(".")[0])


def test_the_stability_warning_is_on_stderr_and_parsed_from_both_streams(tmp_path: Path) -> None:
    exe = install_trtexec(tmp_path / "bin", "10.3.0", cov_pct=7.07)
    res = run_standin(exe, tmp_path)
    assert res.returncode == 0
    assert "coefficient of variance" not in res.stdout
    assert "coefficient of variance = 7.07%" in res.stderr
    assert not [r for r in trtexec.parse_summary(res.stdout)
                if r["metric"] == "gpu_compute_cov_pct"]
    rows = trtexec.parse_summary(res.stdout + "\n" + res.stderr)
    cov = [r for r in rows if r["metric"] == "gpu_compute_cov_pct"][0]
    assert cov["value"] == 7.07 and cov["valid"] is False and "--useSpinWait" in cov["hint"]


def test_without_data_transfers_host_latency_is_gpu_time_and_flagged(tmp_path: Path) -> None:
    exe = install_trtexec(tmp_path / "bin", "11.0.0")
    off = run_standin(exe, tmp_path)
    rows = trtexec.parse_summary(off.stdout + off.stderr)
    host = [r for r in rows if r["metric"] == "host_latency_median_ms"][0]
    assert host["value"] == value(rows, "gpu_compute_median_ms")
    assert host["valid"] is False and "--includeDataTransfers" in host["hint"]
    assert [r for r in rows if r["metric"] == "gpu_compute_median_ms"][0]["valid"] is None
    on = run_standin(exe, tmp_path, "--includeDataTransfers")
    rows = trtexec.parse_summary(on.stdout + on.stderr)
    host = [r for r in rows if r["metric"] == "host_latency_median_ms"][0]
    assert host["valid"] is None and host["value"] > value(rows, "gpu_compute_median_ms")


def test_recorded_trt11_summary_without_transfers_is_flagged() -> None:
    rows = trtexec.parse_summary(SUMMARY11.read_text())
    assert value(rows, "host_latency_median_ms") == value(rows, "gpu_compute_median_ms")
    assert value(rows, "h2d_max_ms") == 0 and value(rows, "throughput_qps") == 23215
    flagged = [r["metric"] for r in rows if r["valid"] is False]
    assert flagged and all(m.startswith(("host_latency_", "h2d_", "d2h_")) for m in flagged)
    assert trtexec.parse_version(SUMMARY11.read_text()) == "11.0.0"


@pytest.fixture(scope="module")
def trt_prepared(accel_models: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The w8_a8 and f16 TensorRT artifacts (float ONNX + typed ONNX), prepared once."""
    from harness.artifacts import Artifact
    from harness.config.inventory import Target

    cache = tmp_path_factory.mktemp("trt-cache")
    jetson = Target(kind="tensorrt", ssh="nvidia@jetson.local")
    f16 = artifact_for(accel_models, "convert_only")
    f16 = Artifact("cnn", "f16", path=f16.path, sha256=f16.sha256, size_bytes=f16.size_bytes,
                   source=f16.source)
    return {"w8_a8": TENSORRT.prepare(jetson, artifact_for(accel_models, "w8_a8"), cache),
            "f16": TENSORRT.prepare(jetson, f16, cache)}


@pytest.mark.slow
@pytest.mark.parametrize("version, variant", [("8.6.1", "w8_a8"), ("10.3.0", "w8_a8"),
                                              ("10.3.0", "f16"), ("11.0.0", "w8_a8"),
                                              ("11.0.0", "f16")])
def test_execute_through_the_kind_with_each_trtexec_version(
        trt_prepared: dict, accel_models: dict, tmp_path: Path, version: str,
        variant: str) -> None:
    from harness.plan import Job

    exe = install_trtexec(tmp_path / "bin", version, cov_pct=3.5)
    ctx = make_ctx(tmp_path, {"kind": "tensorrt", "trtexec": str(exe)},
                   make_suite(accel_models["keras"]), name="jetson")
    prepared = trt_prepared[variant]
    precision = tensorrt.PRECISION[variant]
    job = Job("jetson", "cnn", variant, "auto")
    rows, series = TENSORRT.execute(ctx, job, prepared)
    assert all(r["status"] == "ok" for r in rows), [r["message"] for r in rows if r["message"]]
    typed = prepared.extra["typed"][precision]
    first = calls(exe)[0]
    onnx = [a for a in first if a.startswith("--onnx=")][0]
    if version.startswith("11."):
        assert not {"--fp16", "--int8", "--separateProfileRun"} & set(first)
        assert "--includeDataTransfers" in first and typed["sha256"] in onnx
        profile_run = calls(exe)[1]
        assert any(a.startswith("--loadEngine=") for a in profile_run)
        assert any(a.startswith("--exportProfile=") for a in profile_run)
    else:
        assert f"--{precision}" in first and "--separateProfileRun" in first
        assert "--includeDataTransfers" not in first and prepared.sha256 in onnx
    assert "--warmUp=10" in first and "--duration=1" in first and "--iterations=20" in first
    cov = [r for r in rows if r["metric"] == "gpu_compute_cov_pct"][0]
    assert cov["value"] == 3.5 and cov["valid"] is False  # from trtexec's stderr
    host = [r for r in rows if r["metric"] == "host_latency_median_ms"][0]
    assert host["valid"] is not False  # data transfers included on every version
    assert value(rows, "node_ms", "cnn/dense_1/MatMul") == 0.128241  # per-layer profile
    times = [r for r in rows if r["metric"] == "median_ms"][0]
    assert times["method"] == "trtexec_times" and times["n"] == 40
    assert times["runtime_version"] == version and times["delegate"] == f"tensorrt-{precision}"
    assert value(rows, "onnx_max_abs_diff") < 1e-4
    assert value(rows, "typed_onnx_bytes", precision) == typed["size_bytes"]
    assert len(series) == 1 and len(series[0]["samples"]) == 40
    measured = [r for r in rows if r["method"] in ("trtexec", "trtexec_times")]
    if precision == "int8":  # the calibration hint on every int8 row, not only engine_cached
        hint = tensorrt.INT8_HINT if not version.startswith("11.") else tensorrt.INT8_NOISE_HINT
        assert measured and all(hint in (r["hint"] or "") for r in measured)
    else:
        assert not any("calibrat" in (r["hint"] or "") for r in measured)
    # second run: the engine cached on the device is loaded, not rebuilt
    rows2, _ = TENSORRT.execute(ctx, job, prepared)
    assert all(r["status"] == "ok" for r in rows2)
    second = calls(exe)[2 if version.startswith("11.") else 1]  # after the first job's runs
    assert any(a.startswith("--loadEngine=") for a in second)
    assert not any(a.startswith("--onnx=") for a in second)
    cached = [r for r in rows2 if r["metric"] == "engine_cached"]
    assert [r["value"] for r in cached] == [1]
    assert cached[0]["key"].endswith(f"-{precision}-trt{version}.engine")


def test_strongly_typed_trtexec_without_a_typed_onnx_is_an_actionable_row(
        tmp_path: Path) -> None:
    from harness.artifacts import Artifact
    from harness.errors import InfraError
    from harness.plan import Job

    exe = install_trtexec(tmp_path / "bin", "11.0.0")
    model = tmp_path / "float.onnx"
    model.write_bytes(b"float onnx")
    ctx = make_ctx(tmp_path, {"kind": "tensorrt", "trtexec": str(exe)},
                   make_suite(tmp_path / "cnn.keras"), name="jetson")
    meta = {"max_abs_diff": 1e-6, "checked_inputs": 8, "tf2onnx_version": "1.17.0", "opset": 17,
            "onnxruntime_version": "1.32.0", "size_bytes": 10}
    artifact = Artifact("cnn", "w8_a8", path=model, sha256="ab" * 32, size_bytes=10,
                        extra={"onnx": meta, "precision": "int8",
                               "typed_error": InfraError("onnxruntime is not installed",
                                                         kind="tool_missing")})
    rows, _ = TENSORRT.execute(ctx, Job("jetson", "cnn", "w8_a8", "auto"), artifact)
    failure = rows[-1]
    assert failure["status"] == "failed" and failure["error_kind"] == "tool_missing"
    assert "TensorRT 11 builds strongly typed networks only" in failure["message"]
    assert "int8 ONNX model, which was not built" in failure["message"]
    assert "onnxruntime is not installed" in failure["message"] and calls(exe) == []


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("trtexec") is not None, reason="trtexec is installed here")
def test_missing_trtexec_is_an_actionable_row(accel_models: dict, tmp_path: Path) -> None:
    from harness.plan import Job

    suite = make_suite(accel_models["keras"])
    ctx = make_ctx(tmp_path, {"kind": "tensorrt", "trtexec": "/usr/src/tensorrt/bin/trtexec"},
                   suite, name="jetson")
    prepared = TENSORRT.prepare(ctx.target, artifact_for(accel_models, "convert_only"), ctx.cache)
    assert prepared.path.suffix == ".onnx" and prepared.path.is_file()
    rows, _ = TENSORRT.execute(ctx, Job("jetson", "cnn", "convert_only", "auto"), prepared)
    assert value(rows, "onnx_max_abs_diff") < 1e-4
    failure = rows[-1]
    assert failure["status"] == "failed" and failure["error_kind"] == "tool_missing"
    assert "`trtexec:`" in failure["message"] and "JetPack" in failure["message"]
