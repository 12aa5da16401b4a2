"""Arduino / TFLite Micro: the C array and header compile with the host's g++, the sketch's op
resolver lists exactly the model's operators, the serial protocol round trip against the board
simulator (socat pty pair + tflite-micro), and the fit check refusing a model before any upload."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from accel_util import artifact_for, make_ctx, make_suite
from harness.artifacts import tflm_array
from harness.devices import KINDS, arduino
from harness.transport import CommandResult

GPP = shutil.which("g++")
SOCAT = shutil.which("socat")
ARDUINO = KINDS["arduino"]

MAIN_CC = r"""
#include <cstdint>
#include <cstdio>
#include "model_data.h"
int main() {
  unsigned long sum = 0;
  for (unsigned int i = 0; i < g_model_len; ++i) sum = (sum * 31 + g_model[i]) % 1000000007UL;
  std::printf("%u %u %lu %u %.6f\n", g_model_len,
              (unsigned)(reinterpret_cast<std::uintptr_t>(g_model) % 16), sum, g_input_len,
              (double)g_input[g_input_len - 1]);
  return 0;
}
"""


def checksum(data: bytes) -> int:
    total = 0
    for b in data:
        total = (total * 31 + b) % 1000000007
    return total


@pytest.fixture(scope="module")
def int8_sketch(accel_models: dict, tmp_path_factory: pytest.TempPathFactory):
    import numpy as np

    from harness.artifacts.int8_io import int8_io_model
    from harness.artifacts.tflm_arena import tflm_arena_bytes

    tmp = tmp_path_factory.mktemp("sketch")
    model = int8_io_model(accel_models["w8_a8"], tmp / "cache").path
    window = np.load(accel_models["inputs"])[3]
    sketch = tflm_array.write_sketch(model, tmp / "out", tflm_arena_bytes(model), window)
    return model, sketch, window


def test_resolver_method_names() -> None:
    expected = {"CONV_2D": "AddConv2D", "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D",
                "MAX_POOL_2D": "AddMaxPool2D", "FULLY_CONNECTED": "AddFullyConnected",
                "STRIDED_SLICE": "AddStridedSlice", "BATCH_MATMUL": "AddBatchMatMul",
                "SPACE_TO_BATCH_ND": "AddSpaceToBatchNd", "PADV2": "AddPadV2",
                "L2_POOL_2D": "AddL2Pool2D", "RELU6": "AddRelu6", "LOGISTIC": "AddLogistic",
                "UNIDIRECTIONAL_SEQUENCE_LSTM": "AddUnidirectionalSequenceLSTM",
                "QUANTIZE": "AddQuantize", "CUMSUM": "AddCumSum"}
    assert {op: tflm_array.resolver_method(op) for op in expected} == expected


@pytest.mark.slow
def test_op_resolver_lists_exactly_the_models_operators(int8_sketch) -> None:
    model, sketch, _ = int8_sketch
    # the int8-I/O model keeps QUANTIZE/DEQUANTIZE in its opcode table but no operator uses them
    assert sketch.operators == ["CONCATENATION", "CONV_2D", "FULLY_CONNECTED", "LOGISTIC",
                                "MAX_POOL_2D", "MUL", "RESHAPE", "STRIDED_SLICE"]
    ino = sketch.ino.read_text()
    assert "{{" not in ino and "}}" not in ino
    assert "tflite::MicroMutableOpResolver<8> resolver;" in ino
    registered = sorted(line.split("resolver.")[1].split("(")[0] for line in ino.splitlines()
                        if "resolver.Add" in line)
    assert registered == sorted(tflm_array.resolver_method(op) for op in sketch.operators)
    assert f"constexpr int kTensorArenaSize = {sketch.arena_size_bytes};" in ino
    assert sketch.arena_size_bytes == tflm_array.arena_with_margin(sketch.arena_measured_bytes)
    assert sketch.arena_size_bytes % 16 == 0
    assert sketch.arena_size_bytes >= sketch.arena_measured_bytes + 1024
    assert "interpreter->arena_used_bytes()" in ino and "latency_us " in ino


@pytest.mark.slow
@pytest.mark.skipif(GPP is None, reason="g++ is not installed (apt-get install g++)")
def test_c_array_and_header_compile_with_gpp(int8_sketch, tmp_path: Path) -> None:
    model, sketch, window = int8_sketch
    header = sketch.header.read_text()
    assert "alignas(16) extern const unsigned char g_model[];" in header
    assert "alignas(16) const unsigned char g_model[] = {" in sketch.source.read_text()
    (tmp_path / "main.cc").write_text(MAIN_CC)
    exe = tmp_path / "check"
    build = subprocess.run([GPP, "-std=c++17", "-Wall", "-Wextra", "-Werror",
                            f"-I{sketch.folder}", str(tmp_path / "main.cc"), str(sketch.source),
                            "-o", str(exe)], capture_output=True, text=True, timeout=120)
    assert build.returncode == 0, build.stderr
    out = subprocess.run([str(exe)], capture_output=True, text=True, timeout=30).stdout.split()
    data = model.read_bytes()
    assert int(out[0]) == len(data)           # array length
    assert int(out[1]) == 0                   # 16-byte aligned
    assert int(out[2]) == checksum(data)      # the same bytes
    assert int(out[3]) == window.size
    assert float(out[4]) == pytest.approx(float(window.reshape(-1)[-1]), abs=1e-6)


@pytest.mark.slow
def test_sketch_reads_back(int8_sketch) -> None:
    model, sketch, window = int8_sketch
    data, values, arena = tflm_array.read_sketch(sketch.folder)
    assert data == model.read_bytes() and arena == sketch.arena_size_bytes
    assert values == pytest.approx(window.reshape(-1), abs=1e-6)


def test_unsupported_variants() -> None:
    from harness.config.inventory import Target

    board = Target(kind="arduino", via="host", serial_port="/dev/ttyACM0", fqbn="a:b:c")
    for variant in ("convert_only", "w8_a8", "w8_a16"):
        assert ARDUINO.unsupported(board, variant) is None
    assert "hybrid" in ARDUINO.unsupported(board, "w8")
    assert "float16" in ARDUINO.unsupported(board, "f16")


def test_commands_are_fully_formed() -> None:
    assert arduino.compile_command("arduino:mbed_nano:nano33ble", "s/harness_tflm", "s/build") == [
        "arduino-cli", "compile", "--fqbn", "arduino:mbed_nano:nano33ble", "--output-dir",
        "s/build", "s/harness_tflm"]
    assert arduino.upload_command("arduino:mbed_nano:nano33ble", "/dev/ttyACM0", "s/harness_tflm",
                                  "s/build") == [
        "arduino-cli", "upload", "-p", "/dev/ttyACM0", "--fqbn", "arduino:mbed_nano:nano33ble",
        "--input-dir", "s/build", "s/harness_tflm"]


def test_parse_serial_lines() -> None:
    lines = ["garbage from reset", "harness-tflm 1", "model_sha256 0123456789abcdef", "ready",
             "arena_size_bytes 6000", "arena_used_bytes 4704", "clock micros", "latency_us 812",
             "latency_us 815", "output 0 0.1250000", "error invoke Invoke() failed", "done"]
    session = arduino.parse_serial_lines(lines)
    assert session["protocol"] == "1" and session["model_sha256"] == "0123456789abcdef"
    assert session["arena_used_bytes"] == 4704 and session["arena_size_bytes"] == 6000
    assert session["latency_us"] == [812.0, 815.0] and session["output"] == [0.125]
    assert session["errors"] == [{"kind": "invoke", "message": "Invoke() failed"}]
    assert session["done"] and session["ignored"] == 1


@pytest.mark.slow
@pytest.mark.skipif(SOCAT is None, reason="socat is not installed (apt-get install socat)")
def test_serial_round_trip_with_the_board_simulator(int8_sketch, tmp_path: Path) -> None:
    import sys

    import numpy as np
    from tflite_micro.python.tflite_micro import runtime

    from harness.artifacts.tflm_arena import print_allocations, tflm_arena_bytes
    from harness.parsers.tflm import parse_print_allocations
    from testutil import ROOT

    sys.path.insert(0, str(ROOT / "targets"))
    import serial_reader
    from board_sim import simulate

    model, sketch, window = int8_sketch
    pair, sim = simulate(sketch.folder, tmp_path)
    try:
        lines = serial_reader.read_session(pair.host, runs=25, warmup=3, hello_timeout=10,
                                           run_timeout=60)
    finally:
        sim.stop()
        pair.close()
    session = arduino.parse_serial_lines(lines)
    assert session["done"] and not session["errors"]
    assert session["clock"] == "simulated" and len(session["latency_us"]) == 25
    assert session["model_sha256"] == sketch.model_sha256[:16]
    # arena: what the host TFLM measurement reports for the sketch's (16-byte aligned) arena
    host_used = parse_print_allocations(print_allocations(model, sketch.arena_size_bytes))
    assert session["arena_used_bytes"] == host_used["total_bytes"]
    assert session["arena_size_bytes"] == sketch.arena_size_bytes
    assert session["arena_used_bytes"] <= tflm_arena_bytes(model) <= session["arena_size_bytes"]
    # output: tflite-micro on the controller with the same quantized window
    interp = runtime.Interpreter.from_file(str(model), arena_size=sketch.arena_size_bytes)
    q_in = interp.get_input_details(0)["quantization_parameters"]
    x = np.clip(np.round(window / q_in["scales"][0]) + q_in["zero_points"][0], -128, 127)
    interp.set_input(x.reshape(1, 99, 1).astype(np.int8), 0)
    interp.invoke()
    q_out = interp.get_output_details(0)["quantization_parameters"]
    expected = (interp.get_output(0).astype(np.float32) - q_out["zero_points"][0]) * \
        q_out["scales"][0]
    assert session["output"] == pytest.approx(expected.reshape(-1).tolist(), abs=1e-6)
    rows, series = arduino.session_rows(session, {"target": "arduino", "model": "cnn",
                                                  "variant": "w8_a8"})
    latency = [r for r in rows if r["measurement"] == "latency"]
    assert latency and all(r["method"] == "simulated" and r["runtime"] == "tflm_simulated"
                           for r in latency)
    assert all("simulated" in r["hint"] for r in latency)
    used = [r for r in rows if r["metric"] == "arena_used_bytes"][0]
    assert used["value"] == host_used["total_bytes"] and used["method"] == "simulated"
    assert series[0]["runtime"] == "tflm_simulated" and len(series[0]["samples"]) == 25


class NoFlashing:
    """Transport seam fake: records pushes, fails the test on any command (nothing may run)."""

    name, workdir, is_local = "host", "/nonexistent", True

    def __init__(self) -> None:
        self.calls: list = []

    def run(self, argv: list[str], timeout: float | None = None) -> CommandResult:
        self.calls.append(argv)
        raise AssertionError(f"nothing may run before the fit check passes: {argv}")

    def put(self, local: Path, remote: str) -> None:
        self.calls.append(("put", remote))

    def get(self, remote: str, local: Path) -> None:
        raise AssertionError("nothing to fetch")

    def close(self) -> None:
        pass


@pytest.mark.slow
def test_a_model_too_big_for_the_board_is_refused_before_upload(accel_models: dict,
                                                                tmp_path: Path) -> None:
    from harness.config.inventory import Target
    from harness.devices.base import TargetContext
    from harness.plan import Job

    suite = make_suite(accel_models["keras"])
    board = Target(kind="arduino", via="host", serial_port="/dev/ttyACM0",
                   fqbn="arduino:avr:uno", ram_kb=2, flash_kb=32)
    fake = NoFlashing()
    ctx = TargetContext("uno", board, fake, suite, tmp_path / "local", tmp_path / "cache")
    prepared = ARDUINO.prepare(board, artifact_for(accel_models, "convert_only"), ctx.cache)
    rows, series = ARDUINO.execute(ctx, Job("uno", "cnn", "convert_only", "auto"), prepared)
    assert fake.calls == [] and series == []
    refusal = rows[-1]
    assert refusal["status"] == "failed" and refusal["error_kind"] == "does_not_fit"
    assert refusal["phase"] == "fit_check"
    arena = prepared.extra["arena_size_bytes"]
    assert f"tensor arena {arena} bytes" in refusal["message"]
    assert "ram_kb 2 = 2048 bytes" in refusal["message"] and "not flashed" in refusal["message"]
    assert [r["value"] for r in rows if r["metric"] == "mcu_fits"] == [0]
    margin = [r["value"] for r in rows if r["metric"] == "ram_margin_bytes"][0]
    assert margin == 2048 - arena


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("arduino-cli") is not None, reason="arduino-cli is installed")
def test_missing_arduino_cli_names_the_install_command(accel_models: dict, tmp_path: Path) -> None:
    from harness.plan import Job

    suite = make_suite(accel_models["keras"])
    ctx = make_ctx(tmp_path, {"kind": "arduino", "via": None, "serial_port": "/dev/ttyACM0",
                              "fqbn": "arduino:mbed_nano:nano33ble", "ram_kb": 256,
                              "flash_kb": 1024}, suite, name="nano")
    prepared = ARDUINO.prepare(ctx.target, artifact_for(accel_models, "w8_a8"), ctx.cache)
    rows, _ = ARDUINO.execute(ctx, Job("nano", "cnn", "w8_a8", "auto"), prepared)
    assert [r["value"] for r in rows if r["metric"] == "mcu_fits"] == [1]
    assert [r["value"] for r in rows if r["metric"] == "tflm_operators"] == [8]
    failure = rows[-1]
    assert failure["error_kind"] == "tool_missing" and failure["phase"] == "probe"
    assert "arduino-cli not found" in failure["message"]
    assert "install.sh" in failure["message"] and "core install arduino:mbed_nano" in \
        failure["message"]
    assert Path(prepared.extra["sketch_dir"], "harness_tflm.ino").is_file()


@pytest.mark.slow
@pytest.mark.skipif(GPP is None, reason="g++ is not installed (apt-get install g++)")
def test_sketch_compiles_and_speaks_the_protocol_against_api_stubs(int8_sketch,
                                                                    tmp_path: Path) -> None:
    """The generated .ino compiled by g++ against stand-ins of the Arduino core and the TFLM API
    (tests/data/arduino_stubs): the template is valid C++ and its serial output is what
    parse_serial_lines reads."""
    from testutil import ROOT

    _, sketch, _ = int8_sketch
    stubs = ROOT / "tests" / "data" / "arduino_stubs"
    source = tmp_path / "sketch.cc"  # arduino-cli adds the Arduino.h include the same way
    source.write_text('#include "stubs.h"\n' + sketch.ino.read_text())
    exe = tmp_path / "sketch"
    build = subprocess.run([GPP, "-std=c++17", "-Wall", "-Wextra", "-Werror", f"-I{stubs}",
                            f"-I{sketch.folder}", str(source), str(sketch.source),
                            str(stubs / "main.cc"), "-o", str(exe)],
                           capture_output=True, text=True, timeout=180)
    assert build.returncode == 0, build.stderr[-3000:]
    out = subprocess.run([str(exe), "hello\nrun 4 2\nbogus\n"], capture_output=True, text=True,
                         timeout=30).stdout
    session = arduino.parse_serial_lines(out.splitlines())
    assert session["protocol"] == "1" and session["clock"] == "micros"
    assert session["model_sha256"] == sketch.model_sha256[:16]
    assert session["arena_size_bytes"] == sketch.arena_size_bytes
    assert session["arena_used_bytes"] == 4096  # the stub interpreter's figure
    assert len(session["latency_us"]) == 4 and session["done"]
    assert len(session["output"]) == 1
    assert session["errors"] == [{"kind": "command", "message": "bogus"}]
