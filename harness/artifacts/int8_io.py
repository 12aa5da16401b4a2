"""The int8-input/int8-output version of a full-integer model (the Edge TPU's and TFLM's input).

Made from the suite's `w8_a8` artifact by TensorFlow Lite's own `modify_model_interface` (the tool
behind `inference_input_type=tf.int8`): it drops the float QUANTIZE at the input and the DEQUANTIZE
at the output and keeps every other tensor and its quantization parameters. So the int8 model is
exactly the model measured as `w8_a8` on the CPUs (same calibration from the same representative
data), with integer I/O as the Edge TPU and microcontrollers require.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from harness.artifacts.cache import code_version, key_of, package_version, sha256_file
from harness.errors import InfraError, UserError

TFLITE_INT8 = 9  # tflite::TensorType_INT8


@dataclass
class Int8Model:
    """The int8-I/O model and what was checked about it."""

    path: Path
    sha256: str
    size_bytes: int
    input_shape: list[int]
    input_dtype: str
    output_dtype: str
    input_quantization: tuple[float, int]
    cached: bool = False


def _interface_info(path: Path) -> tuple[list[int], list[int], str, str, tuple[float, int]]:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interp = Interpreter(model_path=str(path),
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    signature = [int(d) for d in inp.get("shape_signature", inp["shape"])]
    return ([int(d) for d in inp["shape"]], signature, inp["dtype"].__name__,
            out["dtype"].__name__, tuple(inp["quantization"]))


def int8_io_model(w8_a8_model: Path, cache: Path) -> Int8Model:
    """The int8-input/int8-output version of a full-integer (`w8_a8`) model, cached by content.

    UserError when the model has no static batch of 1 or is not full-integer inside.
    """
    source_sha = sha256_file(w8_a8_model)
    key = key_of("int8io", source_sha, code_version("artifacts/int8_io.py"),
                 package_version("tensorflow-cpu", "tensorflow"))
    out = cache / "int8io" / f"{key}.int8io.tflite"
    cached = out.is_file()
    if not cached:
        try:
            from tensorflow.lite.tools.optimize.python import (
                _pywrap_modify_model_interface as modify)
        except ImportError as exc:
            raise InfraError(f"cannot make the int8-I/O Edge TPU model: TensorFlow's "
                             f"modify_model_interface is not importable ({exc})",
                             kind="tool_missing", phase="build",
                             hint="pip install 'harness[convert]' (tensorflow-cpu)") from exc
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.{os.getpid()}.{uuid.uuid4().hex}.part")  # unique
        status = modify.modify_model_interface(str(w8_a8_model), str(tmp), TFLITE_INT8, TFLITE_INT8)
        if status != 0 or not tmp.is_file():
            tmp.unlink(missing_ok=True)
            raise UserError(f"{w8_a8_model}: cannot give the model int8 input/output "
                            f"(modify_model_interface status {status})",
                            hint="the Edge TPU needs a full-integer model: the w8_a8 variant of a "
                                 "Keras model with a representative dataset")
        os.replace(tmp, out)
    shape, signature, in_dtype, out_dtype, quant = _interface_info(out)
    if in_dtype != "int8" or out_dtype != "int8":
        raise UserError(f"{w8_a8_model}: the Edge TPU model has {in_dtype} input and {out_dtype} "
                        "output, not int8", hint="quantize fully (variant w8_a8)")
    if not signature or signature[0] != 1:
        raise UserError(f"{w8_a8_model}: input shape {signature} has no static batch of 1",
                        hint="convert from a concrete function or SavedModel signature with a "
                             "(1, ...) input; the Edge TPU compiler needs static shapes")
    return Int8Model(out, sha256_file(out), out.stat().st_size, shape, in_dtype, out_dtype,
                     (float(quant[0]), int(quant[1])), cached)
