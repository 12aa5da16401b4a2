"""Jetson / TensorRT: trtexec output (three summary layouts, profile JSON with 4 or 5 keys, raw
--exportTimes) parsed into records and rows; the trtexec command fully formed; the ONNX artifact really built; a
missing trtexec an actionable row. trtexec itself is replaced only at the Transport seam."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from accel_util import artifact_for, make_ctx, make_suite
from harness import stats
from harness.devices import KINDS, tensorrt
from harness.parsers import trtexec
from harness.transport import CommandResult, LocalTransport
from testutil import FIXTURES

SUMMARY10 = FIXTURES / "trtexec" / "summary_trt10.txt"
PROFILE5 = FIXTURES / "trtexec" / "profile_5key.json"
DUMP = FIXTURES / "trtexec" / "dump_profile_console.txt"
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


def test_trtexec_command_is_fully_formed() -> None:
    argv = tensorrt.trtexec_command("/usr/src/tensorrt/bin/trtexec", "artifacts/a.onnx",
                                    "engines/a-fp16-trt10.3.0.engine", "fp16", warmup_ms=300,
                                    duration_s=3, iterations=50, times="results/t.json",
                                    profile="results/p.json", build=True)
    assert argv == ["/usr/src/tensorrt/bin/trtexec", "--onnx=artifacts/a.onnx",
                    "--saveEngine=engines/a-fp16-trt10.3.0.engine", "--fp16", "--warmUp=300",
                    "--duration=3", "--iterations=50", "--exportTimes=results/t.json",
                    "--exportProfile=results/p.json", "--separateProfileRun"]
    cached = tensorrt.trtexec_command("trtexec", "a.onnx", "e.engine", "int8", warmup_ms=200,
                                      duration_s=1, iterations=10, times="t", profile="p",
                                      build=False)
    assert cached[1:3] == ["--loadEngine=e.engine", "--int8"]
    assert "--onnx=a.onnx" not in cached
    fp32 = tensorrt.trtexec_command("trtexec", "a.onnx", "e", "fp32", warmup_ms=1, duration_s=1,
                                    iterations=1, times="t", profile="p", build=True)
    assert "--fp16" not in fp32 and "--int8" not in fp32


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


class FakeJetson:
    """Transport seam fake: a local work dir where `trtexec` answers with the recorded outputs."""

    TRTEXEC = "/usr/src/tensorrt/bin/trtexec"

    def __init__(self, workdir: Path) -> None:
        self.local = LocalTransport("jetson", workdir)
        self.name, self.workdir, self.is_local = "jetson", self.local.workdir, False
        self.trtexec_calls: list[list[str]] = []

    def run(self, argv: list[str], timeout: float | None = None) -> CommandResult:
        if argv[0] == "sh" and argv[-1] == self.TRTEXEC:  # probe
            return CommandResult(0, self.TRTEXEC + "\n", "")
        if argv[0] == self.TRTEXEC and argv[1] == "--help":
            return CommandResult(0, "&&&& RUNNING TensorRT.trtexec [TensorRT v100300] # "
                                    "trtexec --help\n", "")
        if argv[0] == self.TRTEXEC:
            self.trtexec_calls.append(argv)
            flags = dict(a.split("=", 1) for a in argv[1:] if "=" in a)
            root = Path(self.workdir)
            (root / flags["--exportProfile"]).write_text(
                (FIXTURES / "trtexec" / "profile_5key.json").read_text())
            (root / flags["--exportTimes"]).write_text(json.dumps(
                [{"latencyMs": 0.5 + i * 1e-3, "computeMs": 0.48 + i * 1e-3} for i in range(40)]))
            if "--saveEngine" in flags:
                (root / flags["--saveEngine"]).write_bytes(b"engine")
            return CommandResult(0, SUMMARY10.read_text(), "")
        return self.local.run(argv, timeout)

    def put(self, local: Path, remote: str) -> None:
        self.local.put(local, remote)

    def get(self, remote: str, local: Path) -> None:
        self.local.get(remote, local)

    def close(self) -> None:
        pass


@pytest.mark.slow
def test_execute_with_trtexec_present_parses_everything(accel_models: dict, tmp_path: Path) -> None:
    from harness.plan import Job

    suite = make_suite(accel_models["keras"])
    fake = FakeJetson(tmp_path / "jetson")
    ctx = make_ctx(tmp_path, {"kind": "tensorrt", "trtexec": FakeJetson.TRTEXEC}, suite,
                   transport=fake, name="jetson")
    prepared = TENSORRT.prepare(ctx.target, artifact_for(accel_models, "w8_a8"), ctx.cache)
    job = Job("jetson", "cnn", prepared.variant, "auto")
    rows, series = TENSORRT.execute(ctx, job, prepared)
    assert all(r["status"] == "ok" for r in rows), [r["message"] for r in rows if r["message"]]
    argv = fake.trtexec_calls[0]
    assert "--int8" in argv and any(a.startswith("--onnx=") for a in argv)
    assert "--warmUp=10" in argv and "--duration=1" in argv and "--iterations=20" in argv
    assert value(rows, "gpu_compute_median_ms") == 0.503418  # summary
    assert value(rows, "node_ms", "cnn/dense_1/MatMul") == 0.128241  # profile
    times = [r for r in rows if r["metric"] == "median_ms"][0]
    assert times["method"] == "trtexec_times" and times["n"] == 40
    assert times["runtime_version"] == "10.3.0" and times["delegate"] == "tensorrt-int8"
    assert value(rows, "onnx_max_abs_diff") < 1e-4
    assert len(series) == 1 and len(series[0]["samples"]) == 40
    # second run: the engine cached on the device is loaded, not rebuilt
    rows2, _ = TENSORRT.execute(ctx, job, prepared)
    assert any(a.startswith("--loadEngine=") for a in fake.trtexec_calls[1])
    cached = [r for r in rows2 if r["metric"] == "engine_cached"]
    assert [r["value"] for r in cached] == [1] and cached[0]["key"].endswith("-int8-trt10.3.0.engine")


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
