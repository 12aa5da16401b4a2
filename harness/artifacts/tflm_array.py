"""TFLite Micro artifacts: the model as an aligned C array, its header, and an Arduino sketch made
from `targets/arduino/harness_tflm.ino.in` whose op resolver lists exactly the operators the model
uses (read from the flatbuffer: the operators of every subgraph, not the opcode table, which may keep
codes no operator uses) and whose tensor arena is the measured TFLM arena plus a margin.

Files of a sketch folder `<dir>/harness_tflm/`:
    harness_tflm.ino   the sketch (op resolver, arena size, serial protocol)
    model_data.h       extern declarations: g_model, g_model_len, g_input, g_input_len
    model_data.cc      alignas(16) const unsigned char g_model[] = {...}; the sample input window
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


def arena_with_margin(measured: int) -> int:
    """Measured arena + max(10 %, 1 KiB), rounded up to 16 bytes (kernels differ on the MCU)."""
    margin = max(ARENA_MARGIN_MIN, int(math.ceil(measured * ARENA_MARGIN_FRACTION)))
    return int(math.ceil((measured + margin) / ALIGN) * ALIGN)


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
    arena = arena_with_margin(arena_measured)
    if input_window is None:
        input_window = _input_shape_zeros(data)
    folder = out_dir / SKETCH
    folder.mkdir(parents=True, exist_ok=True)
    header = folder / "model_data.h"
    header.write_text(HEADER.format(model_bytes=len(data), sha=sha))
    source = folder / "model_data.cc"
    source.write_text("// Generated by harness. Do not edit.\n#include \"model_data.h\"\n\n"
                      + c_array(data) + "\n" + float_array(input_window))
    ino = folder / f"{SKETCH}.ino"
    ino.write_text(render_template(template.read_text(), {
        "OP_COUNT": len(ops), "OP_RESOLVER": op_resolver_lines(ops),
        "OP_LIST": ", ".join(ops), "ARENA_SIZE": arena, "ARENA_MEASURED": arena_measured,
        "MODEL_SHA": sha[:16], "MODEL_BYTES": len(data)}))
    return Sketch(folder, ino, header, source, ops, arena_measured, arena, len(data), sha,
                  len(data))


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
    source = (folder / "model_data.cc").read_text()
    model = bytes(int(h, 16) for h in re.findall(r"0x([0-9a-f]{2})", ARRAY_RE.search(source)
                                                   .group(1)))
    values = np.array([float(v) for v in re.findall(r"(-?[\d.]+(?:e[-+]?\d+)?)f",
                                                    FLOATS_RE.search(source).group(1))],
                      dtype=np.float32)
    arena = int(ARENA_RE.search((folder / f"{SKETCH}.ino").read_text()).group(1))
    return model, values, arena
