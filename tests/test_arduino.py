"""Arduino / TFLite Micro: the C array and header compile with the host's g++, the sketch's op
resolver lists exactly the model's operators, the serial protocol round trip against the board
simulator (socat pty pair + tflite-micro), and the fit check refusing a model before any upload."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from accel_util import artifact_for, make_ctx, make_suite
from harness.artifacts import tflm_array
from harness.devices import KINDS, arduino
from harness.parsers import arduino_cli
from harness.transport import CommandResult
from testutil import FIXTURES, ROOT

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
    assert sketch.arena_size_bytes == tflm_array.arena_with_margin(sketch.arena_measured_bytes,
                                                                   sketch.cmsis_scratch_bytes)
    assert sketch.arena_size_bytes % 16 == 0
    assert sketch.arena_size_bytes >= \
        sketch.arena_measured_bytes + 1024 + sketch.cmsis_scratch_bytes > 0
    assert f"+ {sketch.cmsis_scratch_bytes} bytes of CMSIS-NN scratch" in ino
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
@pytest.mark.parametrize("library", ["Arduino_TensorFlowLite", "Chirale_TensorFlowLite"])
@pytest.mark.parametrize("named", [False, True], ids=["has_include", "tflm_library.h"])
def test_sketch_compiles_and_speaks_the_protocol_against_both_library_layouts(
        int8_sketch, tmp_path: Path, library: str, named: bool) -> None:
    """The generated .ino compiled by g++ -Werror against stand-ins of the Arduino core and the
    TFLM API (tests/data/arduino_stubs), with either library's top header on the include path:
    picked by __has_include, or named by tflm_library.h. The template is valid C++ and its serial
    output is what parse_serial_lines reads."""
    from testutil import ROOT

    _, sketch, _ = int8_sketch
    stubs = ROOT / "tests" / "data" / "arduino_stubs"
    folder = tmp_path / "harness_tflm"
    shutil.copytree(sketch.folder, folder)
    if named:
        (folder / tflm_array.LIBRARY_HEADER).write_text(tflm_array.library_header(library))
    assert (folder / "model_data.cpp").is_file() and not (folder / "model_data.cc").exists()
    source = tmp_path / "sketch.cc"  # arduino-cli adds the Arduino.h include the same way
    source.write_text('#include "stubs.h"\n' + (folder / "harness_tflm.ino").read_text())
    exe = tmp_path / "sketch"
    flags = ["-std=c++17", "-Wall", "-Wextra", "-Werror", f"-I{stubs}",
             f"-I{stubs / 'libraries' / library}", f"-I{folder}"]
    build = subprocess.run([GPP, *flags, str(source), str(folder / "model_data.cpp"),
                            str(stubs / "main.cc"), "-o", str(exe)],
                           capture_output=True, text=True, timeout=180)
    assert build.returncode == 0, build.stderr[-3000:]
    preprocessed = subprocess.run([GPP, *flags, "-E", str(source)], capture_output=True,
                                  text=True, timeout=180).stdout
    header = tflm_array.LIBRARIES[library][1]
    assert f"libraries/{library}/{header}" in preprocessed  # that library's header
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


# --------------------------------------------------------------------------- arduino-cli output

ARDUINO_CLI_FIXTURES = FIXTURES / "arduino_cli"


def metric(rows: list[dict], name: str) -> dict:
    found = [r for r in rows if r["metric"] == name]
    assert len(found) == 1, (name, found)
    return found[0]


def test_size_report_of_a_real_nano33ble_build() -> None:
    records = arduino_cli.parse_size_report(
        (ARDUINO_CLI_FIXTURES / "compile_nano33ble_empty_sketch.txt").read_text())
    assert {r["metric"]: r["value"] for r in records} == {
        "program_bytes": 85328, "program_max_bytes": 983040, "program_used_pct": 8,
        "data_bytes": 44552, "data_max_bytes": 262144, "data_used_pct": 16,
        "data_free_bytes": 217592}
    assert all(r["method"] == "arduino_cli" and r["valid"] is None for r in records)


def test_size_report_low_memory_warning_marks_the_data_rows() -> None:
    records = arduino_cli.parse_size_report(
        (ARDUINO_CLI_FIXTURES / "compile_nano33ble_low_memory.txt").read_text())
    assert metric(records, "data_free_bytes")["value"] == 26976
    assert metric(records, "data_used_pct")["valid"] is False
    assert "stability problems" in metric(records, "data_bytes")["hint"]
    assert metric(records, "program_bytes")["valid"] is None


def test_build_failures_of_real_builds() -> None:
    flash = arduino_cli.build_failure(
        (ARDUINO_CLI_FIXTURES / "compile_nano33ble_flash_overflow.txt").read_text())
    assert flash["overflows"] == {"FLASH": 3814108} and not flash["missing_methods"]
    esp32 = (ARDUINO_CLI_FIXTURES / "compile_esp32_text_too_big.txt").read_text()
    assert arduino_cli.build_failure(esp32)["sections"] == ["text"]
    assert metric(arduino_cli.parse_size_report(esp32), "program_used_pct")["valid"] is False
    gpp = ("sketch.ino:140:16: error: 'class tflite::MicroMutableOpResolver<9>' has no member "
           "named 'AddGelu'; did you mean 'AddElu'?")
    assert arduino_cli.build_failure(gpp)["missing_methods"] == ["AddGelu"]
    utf8 = (gpp.replace("'class", "‘class").replace("<9>'", "<9>’")
            .replace("'AddGelu'", "‘AddGelu’"))  # GCC's quotes in a UTF-8 locale
    assert arduino_cli.build_failure(utf8)["missing_methods"] == ["AddGelu"]
    assert tflm_array.op_for_method("AddGelu") == "GELU"
    assert tflm_array.op_for_method("AddMaxPool2D") == "MAX_POOL_2D"
    assert tflm_array.op_for_method("AddBatchMatMul") == "BATCH_MATMUL"
    header = "sketch.ino:19:10: fatal error: TensorFlowLite.h: No such file or directory"
    assert arduino_cli.build_failure(header)["missing_headers"] == ["TensorFlowLite.h"]
    assert arduino_cli.parse_version(
        "arduino-cli  Version: 1.4.0 Commit: b7000970fe663f0106e359bedf5a5f89bc61c038 Date: --"
    ) == "1.4.0"


def test_the_library_op_table() -> None:
    assert tflm_array.missing_ops(["CONV_2D", "FULLY_CONNECTED", "GELU", "BATCH_MATMUL"]) == [
        "BATCH_MATMUL", "GELU"]
    assert tflm_array.missing_ops(["CONV_2D", "MAX_POOL_2D", "STRIDED_SLICE", "LOGISTIC"]) == []
    # every operator of the table has a resolver method name, and it maps back
    for op in tflm_array.TFLM_ARDUINO_OPS:
        assert tflm_array.op_for_method(tflm_array.resolver_method(op)) == op


def test_installed_libraries_in_both_json_layouts() -> None:
    chirale = {"library": {"name": "Chirale_TensorFLowLite", "version": "2.0.0"}}
    official = {"library": {"name": "Arduino_TensorFlowLite", "version": "1.15.0-ALPHA"}}
    assert arduino.installed_libraries(json.dumps({"installed_libraries": [chirale, official]})) \
        == {"Chirale_TensorFlowLite": "2.0.0", "Arduino_TensorFlowLite": "1.15.0-ALPHA"}
    assert arduino.installed_libraries(json.dumps([official])) == {
        "Arduino_TensorFlowLite": "1.15.0-ALPHA"}
    assert arduino.installed_libraries(json.dumps({})) == {}


@pytest.mark.slow
def test_cmsis_nn_scratch_follows_the_integer_convolutions(int8_sketch, accel_models: dict) -> None:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    model, sketch, _ = int8_sketch
    interp = Interpreter(model_path=str(model),
                         experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    interp.allocate_tensors()
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    expected = 0
    for op in interp._get_ops_details():
        if op["op_name"] == "CONV_2D":
            channels = int(tensors[op["inputs"][0]]["shape"][-1])
            _, kh, kw, _ = (int(d) for d in tensors[op["inputs"][1]]["shape"])
            expected = max(expected, 4 * int(np.ceil(channels * kh * kw / 4) * 4))
    assert expected > 0 and sketch.cmsis_scratch_bytes == expected
    assert tflm_array.cmsis_nn_scratch_bytes(accel_models["convert_only"]) == 0  # float: none


# --------------------------------------------------------------------------- arduino-cli stand-in

STANDIN = ROOT / "tests" / "data" / "standins" / "arduino_cli.py"
STUBS = ROOT / "tests" / "data" / "arduino_stubs"
LIBRARY_NAMES = {"Chirale_TensorFlowLite": ("Chirale_TensorFLowLite", "2.0.0"),
                 "Arduino_TensorFlowLite": ("Arduino_TensorFlowLite", "1.15.0-ALPHA")}
NANO = "arduino:mbed_nano:nano33ble"


def install_arduino_cli(folder: Path, *, version: str = "1.1.1",
                        library: str | None = "Chirale_TensorFlowLite", core_data: int = 44552,
                        drop_method: str = "") -> Path:
    """The arduino-cli stand-in as an executable in `folder` (an mbed_nano core installed)."""
    folder.mkdir(parents=True, exist_ok=True)
    name, library_version = LIBRARY_NAMES.get(library or "", ("", ""))
    settings = {"VERSION": version, "LIBRARY": library or "", "LIBRARY_NAME": name,
                "LIBRARY_VERSION": library_version, "STUBS": str(STUBS), "GPP": GPP or "g++",
                "CORE": "arduino:mbed_nano", "CORE_PROGRAM": 85328, "CORE_DATA": core_data,
                "LIB_PROGRAM": 92144, "LIB_DATA": 9756, "PROGRAM_MAX": 983040,
                "DATA_MAX": 262144, "DROP_METHOD": drop_method}
    text = STANDIN.read_text()
    for key, value in settings.items():
        text = text.replace("{{%s}}" % key, str(value))
    exe = folder / "arduino-cli"
    exe.write_text(f"#!{sys.executable}\n" + text)
    exe.chmod(0o755)
    return exe


@pytest.fixture(scope="module")
def nano_prepared(accel_models: dict, tmp_path_factory: pytest.TempPathFactory):
    """The int8 CNN prepared for a Nano 33 BLE once (model, arena, sketch folder)."""
    from harness.config.inventory import Target

    board = Target(kind="arduino", via="host", serial_port="/dev/ttyACM0", fqbn=NANO,
                   ram_kb=256, flash_kb=1024)
    return ARDUINO.prepare(board, artifact_for(accel_models, "w8_a8"),
                           tmp_path_factory.mktemp("nano-cache"))


def nano_ctx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exe: Path, port: Path):
    monkeypatch.setenv("PATH", f"{exe.parent}:{os.environ['PATH']}")
    return make_ctx(tmp_path, {"kind": "arduino", "via": None, "serial_port": str(port),
                               "fqbn": NANO, "ram_kb": 256, "flash_kb": 1024},
                    make_suite(tmp_path / "cnn.keras", runs=12), name="nano")


needs_gpp = pytest.mark.skipif(GPP is None, reason="g++ is not installed (apt-get install g++)")


@pytest.mark.slow
@needs_gpp
@pytest.mark.parametrize("version, library", [("1.1.1", "Chirale_TensorFlowLite"),
                                              ("0.34.2", "Arduino_TensorFlowLite")])
def test_compile_gives_the_real_fit_from_arduino_clis_size_report(
        nano_prepared, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: str,
        library: str) -> None:
    from harness.plan import Job

    exe = install_arduino_cli(tmp_path / "bin", version=version, library=library)
    ctx = nano_ctx(tmp_path, monkeypatch, exe, tmp_path / "ttyACM0")  # no board plugged in
    rows, series = ARDUINO.execute(ctx, Job("nano", "cnn", "w8_a8", "auto"), nano_prepared)
    extra = nano_prepared.extra
    real = [r for r in rows if r["method"] == "arduino_cli"]
    assert metric(real, "program_bytes")["value"] == 85328 + 92144 + extra["model_bytes"]
    assert metric(real, "program_max_bytes")["value"] == 983040
    data = 44552 + 9756 + extra["arena_size_bytes"]
    assert metric(real, "data_bytes")["value"] == data
    assert metric(real, "data_free_bytes")["value"] == 262144 - data
    assert metric(real, "mcu_fits")["value"] == 1
    assert metric(real, "arena_of_data_max_pct")["value"] == round(
        100 * extra["arena_size_bytes"] / 262144, 2)
    assert all(r["target"] == "nano" and r["model"] == "cnn" for r in real)
    estimate = [r for r in rows if r["method"] == "fit_check"]
    assert metric(estimate, "mcu_fits")["value"] == 1 and "estimate" in estimate[0]["hint"]
    arena = metric(rows, "arena_size_bytes")
    assert "estimate until the board reports arena_used_bytes" in arena["hint"]
    header = tmp_path / "device" / "arduino" / extra["key"] / "harness_tflm" / "tflm_library.h"
    assert tflm_array.LIBRARIES[library][0] in header.read_text()
    failure = rows[-1]  # no board on the port: the upload says so
    assert failure["error_kind"] == "device_missing" and failure["phase"] == "upload"
    assert "No device found on ttyACM0" in failure["message"] and series == []


@pytest.mark.slow
@needs_gpp
def test_a_library_without_the_models_operator_is_named(
        nano_prepared, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.plan import Job

    exe = install_arduino_cli(tmp_path / "bin", drop_method="AddStridedSlice")
    ctx = nano_ctx(tmp_path, monkeypatch, exe, tmp_path / "ttyACM0")
    rows, _ = ARDUINO.execute(ctx, Job("nano", "cnn", "w8_a8", "auto"), nano_prepared)
    failure = rows[-1]
    assert failure["error_kind"] == "unsupported_op" and failure["phase"] == "compile"
    assert "cannot register STRIDED_SLICE" in failure["message"]
    assert "Chirale_TensorFlowLite" in failure["message"]
    assert not [c for c in calls(exe) if c[0] == "upload"]


@pytest.mark.slow
@needs_gpp
def test_a_model_that_passes_the_estimate_can_still_overflow_at_link_time(
        nano_prepared, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.plan import Job

    exe = install_arduino_cli(tmp_path / "bin", core_data=250000)  # a core that takes more RAM
    ctx = nano_ctx(tmp_path, monkeypatch, exe, tmp_path / "ttyACM0")
    rows, _ = ARDUINO.execute(ctx, Job("nano", "cnn", "w8_a8", "auto"), nano_prepared)
    assert metric([r for r in rows if r["method"] == "fit_check"], "mcu_fits")["value"] == 1
    over = 250000 + 9756 + nano_prepared.extra["arena_size_bytes"] - 262144
    failure = rows[-1]
    assert failure["error_kind"] == "does_not_fit" and failure["phase"] == "compile"
    assert f"region RAM overflowed by {over} bytes" in failure["message"]
    assert not [c for c in calls(exe) if c[0] == "upload"]


@pytest.mark.slow
@needs_gpp
def test_no_tflm_library_installed_is_named_before_compiling(
        nano_prepared, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.plan import Job

    exe = install_arduino_cli(tmp_path / "bin", library=None)
    ctx = nano_ctx(tmp_path, monkeypatch, exe, tmp_path / "ttyACM0")
    rows, _ = ARDUINO.execute(ctx, Job("nano", "cnn", "w8_a8", "auto"), nano_prepared)
    failure = rows[-1]
    assert failure["error_kind"] == "tool_missing"
    assert "arduino-cli lib install Chirale_TensorFlowLite" in failure["message"]
    assert "tflite-micro-arduino-examples" in failure["message"]
    assert not [c for c in calls(exe) if c[0] == "compile"]


def test_has_include_alone_does_not_discover_a_library(tmp_path: Path) -> None:
    """The stand-in's library discovery, as arduino-cli's: without tflm_library.h naming it, a
    sketch cannot find Chirale_TensorFlowLite (its header is not on the include path when
    __has_include looks), and the build fails on TensorFlowLite.h."""
    if GPP is None:
        pytest.skip("g++ is not installed (apt-get install g++)")
    exe = install_arduino_cli(tmp_path / "bin")
    sketch = tmp_path / "harness_tflm"
    sketch.mkdir()
    (sketch / "harness_tflm.ino").write_text(
        '#include "tflm_library.h"\n#if __has_include(<Chirale_TensorFlowLite.h>)\n'
        "#include <Chirale_TensorFlowLite.h>\n#else\n#include <TensorFlowLite.h>\n#endif\n"
        "void setup() {}\nvoid loop() {}\n")
    (sketch / "tflm_library.h").write_text(tflm_array.library_header())
    res = subprocess.run([str(exe), "compile", "--fqbn", NANO, "--output-dir",
                          str(tmp_path / "build"), str(sketch)], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 1
    assert "fatal error: TensorFlowLite.h: No such file or directory" in res.stdout
    assert "Error during build: exit status 1" in res.stderr


def calls(exe: Path) -> list[list[str]]:
    log = exe.parent / "arduino-cli.calls.jsonl"
    return [json.loads(line)["argv"] for line in log.read_text().splitlines()]


@pytest.mark.slow
@needs_gpp
@pytest.mark.skipif(SOCAT is None, reason="socat is not installed (apt-get install socat)")
def test_compile_upload_and_serial_through_the_kind_with_the_board_simulator(
        nano_prepared, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from board_sim import simulate
    from harness.plan import Job

    exe = install_arduino_cli(tmp_path / "bin")
    pair, sim = simulate(Path(nano_prepared.extra["sketch_dir"]), tmp_path)
    try:
        ctx = nano_ctx(tmp_path, monkeypatch, exe, Path(pair.host))
        rows, series = ARDUINO.execute(ctx, Job("nano", "cnn", "w8_a8", "auto"), nano_prepared)
    finally:
        sim.stop()
        pair.close()
    assert all(r["status"] == "ok" for r in rows), [r["message"] for r in rows if r["message"]]
    assert metric([r for r in rows if r["method"] == "arduino_cli"], "mcu_fits")["value"] == 1
    used = metric(rows, "arena_used_bytes")
    headroom = metric(rows, "arena_headroom_bytes")
    assert headroom["value"] == nano_prepared.extra["arena_size_bytes"] - used["value"] > 0
    assert metric(rows, "median_ms")["method"] == "simulated"
    assert len(series) == 1 and len(series[0]["samples"]) == 12
    assert [c[0] for c in calls(exe)] == ["version", "lib", "compile", "upload"]


@pytest.mark.slow
def test_a_model_with_an_operator_the_library_lacks_is_refused_before_compiling(
        accel_models: dict, tmp_path: Path) -> None:
    """A real converted model with GELU (Dense(activation="gelu")): refused by the operator check,
    naming GELU, before anything runs on the machine the board is plugged into."""
    import keras
    import tensorflow as tf

    from harness.artifacts import Artifact
    from harness.artifacts.cache import sha256_file
    from harness.config.inventory import Target
    from harness.devices.base import TargetContext
    from harness.plan import Job

    keras.utils.set_random_seed(0)
    inputs = keras.Input((99, 1), batch_size=1)
    hidden = keras.layers.Dense(8, activation="gelu")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, keras.layers.Dense(1)(hidden))
    path = tmp_path / "gelu.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    board = Target(kind="arduino", via="host", serial_port="/dev/ttyACM0", fqbn=NANO,
                   ram_kb=256, flash_kb=1024)
    fake = NoFlashing()
    ctx = TargetContext("nano", board, fake, make_suite(tmp_path / "gelu.keras"),
                        tmp_path / "local", tmp_path / "cache")
    artifact = Artifact("gelu", "convert_only", path=path, sha256=sha256_file(path),
                        size_bytes=path.stat().st_size)
    prepared = ARDUINO.prepare(board, artifact, ctx.cache)
    assert "GELU" in prepared.extra["operators"]
    rows, series = ARDUINO.execute(ctx, Job("nano", "gelu", "convert_only", "auto"), prepared)
    refusal = rows[-1]
    assert fake.calls == [] and series == []
    assert refusal["error_kind"] == "unsupported_op" and refusal["phase"] == "op_check"
    assert "uses GELU" in refusal["message"] and "not compiled" in refusal["message"]
