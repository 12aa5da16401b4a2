"""What a .tflite's weights are, read back from the flatbuffer (the schema's object API from
ai_edge_litert, or TensorFlow's copy): the sparsity and the
distinct values of the convolution and fully-connected kernels, and the int4 tensors.

A kernel is input 1 (the filter / weights) of CONV_2D, DEPTHWISE_CONV_2D, CONV_3D,
TRANSPOSE_CONV (input 1) and FULLY_CONNECTED, followed back through a DEQUANTIZE (float16 and
int4 weight-only models keep the stored tensor behind one). A weight is zero when its stored
value is exactly 0.0 (float) or its quantization zero point (integer types); distinct values are
counted over the stored values (a per-tensor-quantized kernel of K clusters has at most K).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

KERNEL_OPS = {"CONV_2D": 1, "DEPTHWISE_CONV_2D": 1, "CONV_3D": 1, "TRANSPOSE_CONV": 1,
              "FULLY_CONNECTED": 1}
_DTYPES = {"FLOAT32": np.float32, "FLOAT16": np.float16, "FLOAT64": np.float64,
           "INT8": np.int8, "UINT8": np.uint8, "INT16": np.int16, "INT32": np.int32}


def flatbuffer_schema() -> Any:
    """The generated TFLite flatbuffer schema (ai_edge_litert's, else TensorFlow's)."""
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:  # TensorFlow's copy
        from tensorflow.lite.python import schema_py_generated as schema
    return schema


@dataclass(frozen=True)
class KernelStats:
    """One constant kernel tensor."""

    name: str
    dtype: str
    size: int
    zeros: int
    distinct: int


@dataclass(frozen=True)
class WeightStats:
    """The kernels of a model and its int4 tensors."""

    kernels: list[KernelStats]
    int4_tensors: int

    @property
    def sparsity(self) -> float | None:
        """Fraction of exact zeros over every kernel weight (None: no kernels)."""
        total = sum(k.size for k in self.kernels)
        return sum(k.zeros for k in self.kernels) / total if total else None

    @property
    def distinct_max(self) -> int | None:
        return max((k.distinct for k in self.kernels), default=None)


def _type_names(schema: object) -> dict[int, str]:
    return {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}


def _op_names(schema: object) -> dict[int, str]:
    return {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}


def _values(tensor: object, data: np.ndarray, type_name: str) -> np.ndarray | None:
    """The stored values of a constant tensor (int4: two per byte, low nibble first); None for a
    type this module does not read."""
    count = int(np.prod(tensor.shape)) if tensor.shape is not None else 0
    raw = np.asarray(data, dtype=np.uint8)
    if type_name == "INT4":
        nibbles = np.empty(raw.size * 2, dtype=np.int8)
        nibbles[0::2], nibbles[1::2] = raw & 0x0F, raw >> 4
        nibbles[nibbles > 7] -= 16
        return nibbles[:count]
    dtype = _DTYPES.get(type_name)
    if dtype is None:
        return None
    return np.frombuffer(raw.tobytes(), dtype=dtype)[:count]


def _zeros(tensor: object, values: np.ndarray, type_name: str) -> int:
    if type_name.startswith("FLOAT"):
        return int(np.count_nonzero(values == 0))
    quant = tensor.quantization
    zero_points = None if quant is None else quant.zeroPoint
    if zero_points is None or len(zero_points) == 0:
        return int(np.count_nonzero(values == 0))
    zero_points = np.asarray(zero_points)
    if zero_points.size == 1:
        return int(np.count_nonzero(values == zero_points[0]))
    shaped = values.reshape(tensor.shape)
    axis = int(quant.quantizedDimension)
    broadcast = [1] * shaped.ndim
    broadcast[axis] = zero_points.size
    return int(np.count_nonzero(shaped == zero_points.reshape(broadcast)))


def weight_stats(model_path: str | Path) -> WeightStats:
    """The kernels (every subgraph) and int4 tensor count of a .tflite file."""
    schema = flatbuffer_schema()
    model = schema.ModelT.InitFromPackedBuf(Path(model_path).read_bytes(), 0)
    types, ops = _type_names(schema), _op_names(schema)
    codes = [ops.get(max(int(c.builtinCode), int(c.deprecatedBuiltinCode)), "")
             for c in model.operatorCodes or []]
    kernels: list[KernelStats] = []
    int4 = 0
    for graph in model.subgraphs or []:
        tensors = graph.tensors or []
        int4 += sum(types.get(t.type) == "INT4" for t in tensors)
        operators = graph.operators or []
        producer = {int(out): op for op in operators for out in (op.outputs or [])}
        seen: set[int] = set()
        for op in operators:
            slot = KERNEL_OPS.get(codes[op.opcodeIndex])
            if slot is None or op.inputs is None or len(op.inputs) <= slot:
                continue
            index = int(op.inputs[slot])
            source = producer.get(index)
            if source is not None and codes[source.opcodeIndex] == "DEQUANTIZE":
                index = int(source.inputs[0])
            if index < 0 or index in seen:
                continue
            tensor = tensors[index]
            data = model.buffers[tensor.buffer].data if tensor.buffer > 0 else None
            if data is None or len(data) == 0:
                continue  # computed at run time, not a stored kernel
            seen.add(index)
            type_name = types.get(tensor.type, str(tensor.type))
            values = _values(tensor, data, type_name)
            if values is None:
                continue
            name = tensor.name.decode() if isinstance(tensor.name, bytes) else str(tensor.name)
            kernels.append(KernelStats(name, type_name, int(values.size),
                                       _zeros(tensor, values, type_name),
                                       int(np.unique(values).size)))
    return WeightStats(kernels, int(int4))
