"""TFLite Micro artifacts: the model as an aligned C array, its header, and an Arduino sketch made
from `targets/arduino/harness_tflm.ino.in` whose op resolver lists exactly the operators the model
uses (read from the flatbuffer: the operators of every subgraph, not the opcode table, which may keep
codes no operator uses) and whose tensor arena is the measured TFLM arena plus a margin.

Files of a sketch folder `<dir>/harness_tflm/`:
    harness_tflm.ino   the sketch (op resolver, arena size, serial protocol)
    model_data.h       extern declarations: g_model, g_model_len, g_input, g_input_len
    model_data.cpp     alignas(16) const unsigned char g_model[] = {...}; the sample input window
                       (.cpp: arduino-cli compiles .cc sketch files only from 0.35,
                       arduino-cli#2273)
    tflm_library.h     which TFLM library header the sketch includes (`library_header`): written
                       for the machine that compiles; this default lets `__has_include` choose

The TFLM Arduino libraries. Two layouts exist: the official Arduino_TensorFlowLite
(tensorflow/tflite-micro-arduino-examples, cloned into ~/Arduino/libraries; header
`TensorFlowLite.h`; last synchronised with tflite-micro in 2023) and Chirale_TensorFlowLite
(Library Manager; header `Chirale_TensorFlowLite.h` from version 2.0.0). The sketch picks the header
with `__has_include`, but Arduino's library discovery adds a library to the include path only
when an `#include` of it fails (arduino-cli#1782, #1650), so `__has_include(<Lib.h>)` is false for a
library not yet discovered: the controller therefore writes `tflm_library.h` naming the library it
found installed (`arduino-cli lib list`), and `__has_include` decides only without it.

`TFLM_ARDUINO_OPS` is the builtin operators the `MicroMutableOpResolver` of those libraries can
register (its `Add*` methods: tflite-micro `tensorflow/lite/micro/micro_mutable_op_resolver.h` as of
2022-2023, which both libraries were generated from); a model using another operator (GELU,
BATCH_MATMUL, ...) is refused before compiling, naming it (`missing_ops`).

The arena. The measured arena comes from tflite-micro on the controller, with reference kernels;
the board's CMSIS-NN kernels (Cortex-M) ask for scratch buffers on top of that (im2col for
convolutions: `arm_convolve_s8_get_buffer_size`, `arm_depthwise_conv_s8_opt_get_buffer_size` with
ARM_MATH_DSP), so the sketch's arena is measured + max(10 %, 1 KiB) + the largest such buffer
(`cmsis_nn_scratch_bytes`), 16-byte aligned: an estimate until the board reports
`arena_used_bytes`.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from harness.errors import UserError

TEMPLATE = Path(__file__).resolve().parent.parent.parent / "targets" / "arduino" / \
    "harness_tflm.ino.in"
SKETCH = "harness_tflm"
SOURCE = "model_data.cpp"
LIBRARY_HEADER = "tflm_library.h"
LIBRARIES = {"Arduino_TensorFlowLite": ("HARNESS_TFLM_ARDUINO", "TensorFlowLite.h"),
             "Chirale_TensorFlowLite": ("HARNESS_TFLM_CHIRALE", "Chirale_TensorFlowLite.h")}
ARENA_MARGIN_FRACTION = 0.10
ARENA_MARGIN_MIN = 1024
ALIGN = 16
PLACEHOLDER_RE = re.compile(r"\{\{([A-Z_]+)\}\}")

# TFLM MicroMutableOpResolver method names that the generic CamelCase rule does not give.
RESOLVER_EXCEPTIONS = {
    "BATCH_MATMUL": "AddBatchMatMul",
    "CUMSUM": "AddCumSum",
    "ETHOSU": "AddEthosU",
    "PADV2": "AddPadV2",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "AddUnidirectionalSequenceLSTM",
    "DETECTION_POSTPROCESS": "AddDetectionPostprocess",
}


# Builtin operators the TFLM Arduino libraries' MicroMutableOpResolver registers (module docstring).
TFLM_ARDUINO_OPS = frozenset("""
ABS ADD ADD_N ARG_MAX ARG_MIN ASSIGN_VARIABLE AVERAGE_POOL_2D BATCH_TO_SPACE_ND BROADCAST_ARGS
BROADCAST_TO CALL_ONCE CAST CEIL CONCATENATION CONV_2D COS CUMSUM DEPTH_TO_SPACE DEPTHWISE_CONV_2D
DEQUANTIZE DIV ELU EQUAL EXP EXPAND_DIMS FILL FLOOR FLOOR_DIV FLOOR_MOD FULLY_CONNECTED GATHER
GATHER_ND GREATER GREATER_EQUAL HARD_SWISH IF L2_NORMALIZATION L2_POOL_2D LEAKY_RELU LESS LESS_EQUAL
LOG LOG_SOFTMAX LOGICAL_AND LOGICAL_NOT LOGICAL_OR LOGISTIC MAXIMUM MAX_POOL_2D MEAN MINIMUM
MIRROR_PAD MUL NEG NOT_EQUAL PACK PAD PADV2 PRELU QUANTIZE READ_VARIABLE REDUCE_MAX RELU RELU6
RESHAPE RESIZE_BILINEAR RESIZE_NEAREST_NEIGHBOR ROUND RSQRT SELECT_V2 SHAPE SIN SLICE SOFTMAX
SPACE_TO_BATCH_ND SPACE_TO_DEPTH SPLIT SPLIT_V SQRT SQUARE SQUARED_DIFFERENCE SQUEEZE STRIDED_SLICE
SUB SUM SVDF TANH TRANSPOSE TRANSPOSE_CONV UNIDIRECTIONAL_SEQUENCE_LSTM UNPACK VAR_HANDLE WHILE
ZEROS_LIKE
""".split())
CMSIS_NN_TYPES = ("INT8", "INT16")  # tensor types whose conv kernels are CMSIS-NN on Cortex-M


@dataclass
class Sketch:
    """A generated sketch folder and what went into it."""

    folder: Path
    ino: Path
    header: Path
    source: Path
    operators: list[str]
    arena_measured_bytes: int
    arena_size_bytes: int
    model_bytes: int
    model_sha256: str
    array_bytes: int
    cmsis_scratch_bytes: int = 0


def _schema():
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:  # TensorFlow's copy
        from tensorflow.lite.python import schema_py_generated as schema
    return schema


def model_operators(model: Path | bytes) -> list[str]:
    """Builtin operator names the model's operators use (all subgraphs), sorted.

    UserError for custom operators (TFLM has no registration for them here).
    """
    data = model if isinstance(model, bytes) else Path(model).read_bytes()
    schema = _schema()
    root = schema.Model.GetRootAsModel(data, 0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    used: set[str] = set()
    for s in range(root.SubgraphsLength()):
        graph = root.Subgraphs(s)
        for o in range(graph.OperatorsLength()):
            code = root.OperatorCodes(graph.Operators(o).OpcodeIndex())
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            if builtin == schema.BuiltinOperator.CUSTOM:
                custom = code.CustomCode()
                raise UserError(f"the model uses the custom operator "
                                f"{custom.decode() if custom else '?'}",
                                hint="TFLM sketches support builtin operators only")
            used.add(names.get(builtin, f"BUILTIN_{builtin}"))
    return sorted(used)


def resolver_method(op: str) -> str:
    """`CONV_2D` → `AddConv2D`, `FULLY_CONNECTED` → `AddFullyConnected`, …"""
    if op in RESOLVER_EXCEPTIONS:
        return RESOLVER_EXCEPTIONS[op]
    parts = []
    for part in op.split("_"):
        if re.fullmatch(r"\d+D", part):
            parts.append(part)
        else:
            parts.append(part[:1].upper() + part[1:].lower())
    return "Add" + "".join(parts)


def op_resolver_lines(ops: Iterable[str], indent: str = "  ") -> str:
    """C++ lines registering each operator on `resolver`, failing loudly on the device."""
    return "\n".join(f"{indent}if (resolver.{resolver_method(op)}() != kTfLiteOk) "
                     f"fail(\"op_resolver\", \"{op}\");" for op in ops)


def missing_ops(ops: Iterable[str]) -> list[str]:
    """The operators of `ops` the TFLM Arduino libraries cannot register, sorted."""
    return sorted(set(ops) - TFLM_ARDUINO_OPS)


def op_for_method(method: str) -> str:
    """`AddStridedSlice` → `STRIDED_SLICE` (the resolver method a compiler error names)."""
    schema = _schema()
    names = [k for k in vars(schema.BuiltinOperator) if not k.startswith("_")]
    known = {resolver_method(op): op for op in [*names, *TFLM_ARDUINO_OPS]}
    if method in known:
        return known[method]
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", method.removeprefix("Add")).upper()


def cmsis_nn_scratch_bytes(model: Path | bytes) -> int:
    """The largest CMSIS-NN scratch buffer the model's integer convolutions ask for on a Cortex-M
    with DSP extensions (bytes; 0 for float models): CONV_2D 2·align4(Cin·Kh·Kw)·2, depthwise
    Cin·Kh·Kw·2. TFLM plans scratch buffers per operator, so the largest one is what the arena
    needs beyond the reference kernels."""
    data = model if isinstance(model, bytes) else Path(model).read_bytes()
    schema = _schema()
    root = schema.Model.GetRootAsModel(data, 0)
    types = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    largest = 0
    for s in range(root.SubgraphsLength()):
        graph = root.Subgraphs(s)
        for o in range(graph.OperatorsLength()):
            op = graph.Operators(o)
            code = root.OperatorCodes(op.OpcodeIndex())
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            if builtin not in (schema.BuiltinOperator.CONV_2D,
                               schema.BuiltinOperator.DEPTHWISE_CONV_2D) or op.InputsLength() < 2:
                continue
            tensor, weights = graph.Tensors(op.Inputs(0)), graph.Tensors(op.Inputs(1))
            if types.get(tensor.Type()) not in CMSIS_NN_TYPES:
                continue
            channels = int(tensor.ShapeAsNumpy()[-1])
            kernel = [int(d) for d in weights.ShapeAsNumpy()]  # [out|1, Kh, Kw, in|out]
            columns = channels * kernel[1] * kernel[2]
            if builtin == schema.BuiltinOperator.CONV_2D:
                size = 2 * (int(math.ceil(columns / 4)) * 4) * 2
            else:
                size = columns * 2
            largest = max(largest, size)
    return largest


def arena_with_margin(measured: int, scratch: int = 0) -> int:
    """Measured arena + max(10 %, 1 KiB) + CMSIS-NN scratch, rounded up to 16 bytes."""
    margin = max(ARENA_MARGIN_MIN, int(math.ceil(measured * ARENA_MARGIN_FRACTION)))
    return int(math.ceil((measured + margin + scratch) / ALIGN) * ALIGN)


def library_header(library: str | None = None) -> str:
    """`tflm_library.h`: the define that makes the sketch include `library`'s header (None: let
    `__has_include` choose, which works only for a library already on the include path)."""
    lines = ["// Generated by harness: the TFLite Micro library the sketch includes. Do not edit.",
             "#pragma once"]
    if library is None:
        lines.append("// No library named: the sketch picks a header with __has_include.")
    else:
        if library not in LIBRARIES:
            raise ValueError(f"unknown TFLM library {library!r} (one of {', '.join(LIBRARIES)})")
        define, header = LIBRARIES[library]
        lines.append(f"#define {define} 1  // {library}: <{header}>")
    return "\n".join(lines) + "\n"


def c_array(data: bytes, name: str = "g_model", per_line: int = 12) -> str:
    """`alignas(16) const unsigned char NAME[] = {…};` and `const unsigned int NAME_len`."""
    lines = []
    for i in range(0, len(data), per_line):
        lines.append("  " + ", ".join(f"0x{b:02x}" for b in data[i:i + per_line]) + ",")
    body = "\n".join(lines)
    return (f"alignas(16) const unsigned char {name}[] = {{\n{body}\n}};\n"
            f"const unsigned int {name}_len = {len(data)};\n")


def _float_literal(value: float) -> str:
    if not math.isfinite(value):
        return "0.0f"
    text = f"{value:.9g}"
    return (text if any(c in text for c in ".e") else text + ".0") + "f"


def float_array(values: np.ndarray, name: str = "g_input", per_line: int = 8) -> str:
    flat = np.asarray(values, dtype=np.float32).reshape(-1)
    lines = []
    for i in range(0, len(flat), per_line):
        lines.append("  " + ", ".join(_float_literal(float(v)) for v in flat[i:i + per_line]) + ",")
    body = "\n".join(lines) or "  0.0f,"
    return (f"const float {name}[] = {{\n{body}\n}};\n"
            f"const unsigned int {name}_len = {len(flat)};\n")


HEADER = """// Generated by harness: the model flatbuffer and one input window. Do not edit.
#ifndef HARNESS_MODEL_DATA_H_
#define HARNESS_MODEL_DATA_H_

// The flatbuffer, 16-byte aligned as TFLM requires ({model_bytes} bytes, sha256 {sha}).
alignas(16) extern const unsigned char g_model[];
extern const unsigned int g_model_len;
// One input window (float; quantized on the device when the input tensor is integer).
extern const float g_input[];
extern const unsigned int g_input_len;

#endif  // HARNESS_MODEL_DATA_H_
"""


def render_template(template: str, values: dict[str, object]) -> str:
    """Fill `{{NAME}}` placeholders; every placeholder must have a value and vice versa."""
    wanted = set(PLACEHOLDER_RE.findall(template))
    missing, unused = wanted - set(values), set(values) - wanted
    if missing or unused:
        raise ValueError(f"template placeholders: missing {sorted(missing)}, unused "
                         f"{sorted(unused)}")
    return PLACEHOLDER_RE.sub(lambda m: str(values[m.group(1)]), template)


def write_sketch(model_path: Path, out_dir: Path, arena_measured: int,
                 input_window: np.ndarray | None = None, template: Path = TEMPLATE) -> Sketch:
    """Generate the sketch folder `<out_dir>/harness_tflm/` for a model."""
    data = Path(model_path).read_bytes()
    ops = model_operators(data)
    sha = hashlib.sha256(data).hexdigest()
    scratch = cmsis_nn_scratch_bytes(data)
    arena = arena_with_margin(arena_measured, scratch)
    if input_window is None:
        input_window = _input_shape_zeros(data)
    folder = out_dir / SKETCH
    folder.mkdir(parents=True, exist_ok=True)
    header = folder / "model_data.h"
    header.write_text(HEADER.format(model_bytes=len(data), sha=sha))
    source = folder / SOURCE
    source.write_text("// Generated by harness. Do not edit.\n#include \"model_data.h\"\n\n"
                      + c_array(data) + "\n" + float_array(input_window))
    (folder / LIBRARY_HEADER).write_text(library_header())
    ino = folder / f"{SKETCH}.ino"
    ino.write_text(render_template(template.read_text(), {
        "OP_COUNT": len(ops), "OP_RESOLVER": op_resolver_lines(ops),
        "OP_LIST": ", ".join(ops), "ARENA_SIZE": arena, "ARENA_MEASURED": arena_measured,
        "CMSIS_SCRATCH": scratch, "MODEL_SHA": sha[:16], "MODEL_BYTES": len(data)}))
    return Sketch(folder, ino, header, source, ops, arena_measured, arena, len(data), sha,
                  len(data), scratch)


def _input_shape_zeros(data: bytes) -> np.ndarray:
    schema = _schema()
    root = schema.Model.GetRootAsModel(data, 0)
    graph = root.Subgraphs(0)
    tensor = graph.Tensors(graph.Inputs(0))
    return np.zeros(tensor.ShapeAsNumpy(), dtype=np.float32)


# --------------------------------------------------------------------------- reading back

ARRAY_RE = re.compile(r"g_model\[\]\s*=\s*\{(.*?)\};", re.S)
FLOATS_RE = re.compile(r"g_input\[\]\s*=\s*\{(.*?)\};", re.S)
ARENA_RE = re.compile(r"constexpr\s+int\s+kTensorArenaSize\s*=\s*(\d+)\s*;")


def read_sketch(folder: Path) -> tuple[bytes, np.ndarray, int]:
    """(model bytes, input window, arena size) parsed back from a generated sketch folder."""
    source = (folder / SOURCE).read_text()
    model = bytes(int(h, 16) for h in re.findall(r"0x([0-9a-f]{2})", ARRAY_RE.search(source)
                                                   .group(1)))
    values = np.array([float(v) for v in re.findall(r"(-?[\d.]+(?:e[-+]?\d+)?)f",
                                                    FLOATS_RE.search(source).group(1))],
                      dtype=np.float32)
    arena = int(ARENA_RE.search((folder / f"{SKETCH}.ino").read_text()).group(1))
    return model, values, arena
