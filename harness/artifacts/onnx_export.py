"""ONNX artifacts: the Keras source model exported with tf2onnx (fixed batch 1), checked against
Keras with ONNX Runtime.

The export is cached by the source model's content hash (+ opset, tf2onnx and TensorFlow versions
and this file). The check runs the Keras model and the ONNX model through ONNX Runtime on the same
inputs (the first held-out windows when the artifact has evaluation data, else seeded normal noise)
and records the maximum absolute difference; a difference beyond `atol + rtol·|keras|` is a build
error, never a silent number.

TensorRT 11 builds strongly typed networks only: the precision is the ONNX model's own, `--fp16` /
`--int8` no longer exist. `typed_onnx` makes those models from the checked float export: fp16
weights (`onnxruntime.transformers.float16`, float32 inputs and outputs kept) or explicit int8
Q/DQ nodes (`onnxruntime.quantization.quantize_static`, symmetric int8 as TensorRT requires),
calibrated on the first evaluation windows of the artifact (the artifact carries no training
windows; ranges taken from scored data may flatter accuracy slightly) or on seeded noise, which
the metadata says; both are run with ONNX Runtime against the float model and the difference is
recorded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.artifacts import Artifact
from harness.artifacts.cache import (code_version, key_of, package_version, sha256_file,
                                     write_atomic, write_json)
from harness.errors import InfraError, UserError

log = logging.getLogger("harness.artifacts.onnx")

OPSET = 17
ATOL, RTOL = 1e-4, 1e-3
CHECK_INPUTS = 8
INPUT_NAME = "input"
INSTALL_HINT = "pip install 'harness[onnx]' (onnxruntime, tf2onnx, onnx)"


class _CachedMeta:
    """What a cached export records in its JSON beside the file: every field but `cached`."""

    def meta(self) -> dict[str, Any]:
        out = asdict(self)  # type: ignore[call-overload]
        out["path"] = str(self.path)  # type: ignore[attr-defined]
        out.pop("cached")
        return out


@dataclass
class OnnxExport(_CachedMeta):
    """One exported ONNX model and its check against Keras."""

    path: Path
    sha256: str
    size_bytes: int
    opset: int
    input_name: str
    input_shape: list[int]
    max_abs_diff: float
    checked_inputs: int
    tf2onnx_version: str | None
    onnxruntime_version: str | None
    cached: bool = False


class OnnxCheckError(UserError):
    """The exported model does not compute what the Keras model computes."""


def _tree_sha(path: Path) -> str:
    if path.is_file():
        return sha256_file(path)
    return key_of([(str(p.relative_to(path)), sha256_file(p)) for p in sorted(path.rglob("*"))
                   if p.is_file()])


def load_source(source: Path) -> tuple[Any, tuple[int, ...]]:
    """(callable on a (1, ...) float32 batch, input shape without batch) of a Keras model/SavedModel."""
    try:
        import harness.workloads.nilm.models  # noqa: F401 - registers the NILM custom layers
    except ImportError:  # pragma: no cover - workload optional
        pass
    if source.is_dir():
        import tensorflow as tf

        loaded = tf.saved_model.load(str(source))
        fn = loaded.signatures["serving_default"]
        spec = next(iter(fn.structured_input_signature[1].values()))
        shape = tuple(int(d) for d in spec.shape[1:])

        def call(x: Any) -> Any:
            out = fn(x)
            return next(iter(out.values())) if isinstance(out, dict) else out
        return call, shape
    import keras

    model = keras.models.load_model(source, compile=False)
    shape = model.input_shape
    if isinstance(shape, list):
        raise UserError(f"{source}: models with several inputs are not supported for ONNX export")
    if any(d is None for d in shape[1:]):
        raise UserError(f"{source}: input shape {shape} is not static",
                        hint="give the Keras model a fixed input shape (batch 1 is set here)")
    return model, tuple(int(d) for d in shape[1:])


def _erfc_handler(ctx: Any, node: Any, name: str, args: Any) -> Any:
    """tf2onnx has no Erfc (Keras' exact GELU uses it): erfc(x) = 1 - erf(x)."""
    from tf2onnx import utils

    node.type = "Erf"
    node.domain = ""
    one = ctx.make_const(utils.make_name("erfc_one"), np.array(1, dtype=np.float32))
    ctx.insert_new_node_on_output("Sub", node.output[0], name=utils.make_name("erfc_sub"),
                                  inputs=[one.output[0], node.output[0]])
    return node


def convert_to_onnx(source: Path, opset: int = OPSET) -> tuple[bytes, tuple[int, ...], Any]:
    """(ONNX bytes, input shape without batch, the Keras callable) with a fixed batch of 1."""
    try:
        import tensorflow as tf
        import tf2onnx
    except ImportError as exc:
        raise InfraError(f"ONNX export needs tf2onnx and TensorFlow ({exc})", kind="tool_missing",
                         phase="build", hint=INSTALL_HINT) from exc
    logging.getLogger("tf2onnx").setLevel(logging.ERROR)
    model, shape = load_source(source)
    signature = (tf.TensorSpec((1, *shape), tf.float32, name=INPUT_NAME),)
    function = tf.function(lambda x: model(x))
    try:
        proto, _ = tf2onnx.convert.from_function(function, input_signature=signature, opset=opset,
                                                 custom_op_handlers={"Erfc": (_erfc_handler, [])})
    except Exception as exc:  # noqa: BLE001 - tf2onnx raises many types; all mean "cannot export"
        raise UserError(f"{source}: tf2onnx cannot export the model: {str(exc)[:300]}",
                        hint="use operators tf2onnx supports (see its support_status)") from exc
    return proto.SerializeToString(), shape, model


def _check_inputs(shape: tuple[int, ...], eval_inputs: Path | None) -> np.ndarray:
    if eval_inputs is not None and Path(eval_inputs).is_file():
        windows = np.load(eval_inputs, mmap_mode="r")
        if windows.shape[1:] == shape or windows[0].size == int(np.prod(shape)):
            picked = np.asarray(windows[:CHECK_INPUTS], dtype=np.float32)
            return picked.reshape((len(picked), *shape))
    return np.random.default_rng(0).standard_normal((CHECK_INPUTS, *shape)).astype(np.float32)


def ort_session(path: Path | bytes, threads: int = 1) -> Any:
    """An ONNX Runtime CPU session (InfraError if onnxruntime is missing)."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise InfraError(f"onnxruntime is not installed ({exc})", kind="tool_missing",
                         phase="build", hint=INSTALL_HINT) from exc
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    model = path if isinstance(path, bytes) else str(path)
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def max_abs_diff(keras_model: Any, session: Any, inputs: np.ndarray) -> tuple[float, float]:
    """(max |keras − onnx|, max |keras|) over the inputs, one window at a time (batch 1)."""
    name = session.get_inputs()[0].name
    worst, scale = 0.0, 0.0
    for window in inputs:
        x = window[np.newaxis].astype(np.float32)
        expected = np.asarray(keras_model(x), dtype=np.float32)
        got = np.asarray(session.run(None, {name: x})[0], dtype=np.float32)
        worst = max(worst, float(np.max(np.abs(expected.reshape(got.shape) - got))))
        scale = max(scale, float(np.max(np.abs(expected))))
    return worst, scale


def export_onnx(source: Path, cache: Path, eval_inputs: Path | None = None,
                opset: int = OPSET) -> OnnxExport:
    """Export (or reuse) the ONNX model of a Keras model, checked with ONNX Runtime."""
    source = Path(source)
    if not source.exists():
        raise UserError(f"{source}: the Keras source model does not exist",
                        hint="rebuild the artifacts (the cache may have been cleared)")
    key = key_of("onnx", _tree_sha(source), opset, code_version("artifacts/onnx_export.py"),
                 package_version("tf2onnx"), package_version("tensorflow-cpu", "tensorflow"))
    folder = cache / "onnx"
    path, meta_path = folder / f"{key}.onnx", folder / f"{key}.json"
    if path.is_file() and meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        meta.update(path=path, cached=True)
        return OnnxExport(**meta)
    data, shape, keras_model = convert_to_onnx(source, opset)
    session = ort_session(data)
    inputs = _check_inputs(shape, eval_inputs)
    diff, scale = max_abs_diff(keras_model, session, inputs)
    if not diff <= ATOL + RTOL * scale:
        raise OnnxCheckError(f"{source}: the ONNX export differs from Keras by up to {diff:.3g} "
                             f"(outputs up to {scale:.3g}; allowed {ATOL + RTOL * scale:.3g})",
                             hint="an operator was converted wrongly; try another opset")
    write_atomic(path, data)  # a unique temp name: targets exporting at once never collide
    import onnxruntime

    export = OnnxExport(path, sha256_file(path), path.stat().st_size, opset, INPUT_NAME,
                        [1, *shape], diff, len(inputs), package_version("tf2onnx"),
                        onnxruntime.__version__)
    write_json(meta_path, export.meta())
    return export


TYPED = ("fp16", "int8")
CALIBRATION_WINDOWS = 64


@dataclass
class TypedOnnx(_CachedMeta):
    """A float ONNX export rewritten to carry its precision (fp16 weights or int8 Q/DQ)."""

    path: Path
    sha256: str
    size_bytes: int
    precision: str
    source_sha256: str
    max_abs_diff: float | None  # vs the float export, ONNX Runtime CPU, same inputs
    calibration: str | None  # int8: where the calibration windows came from
    calibration_n: int | None
    cached: bool = False


def _calibration(shape: list[int], eval_inputs: Path | None) -> tuple[np.ndarray, str]:
    """(windows shaped like the model input, where they came from)."""
    inner = tuple(shape[1:])
    if eval_inputs is not None and Path(eval_inputs).is_file():
        windows = np.load(eval_inputs, mmap_mode="r")
        if len(windows) and windows[0].size == int(np.prod(inner)):
            picked = np.asarray(windows[:CALIBRATION_WINDOWS], dtype=np.float32)
            return picked.reshape((len(picked), *inner)), "evaluation windows"
    noise = np.random.RandomState(0).standard_normal((CALIBRATION_WINDOWS, *inner))
    return noise.astype(np.float32), "seeded normal noise (no evaluation data)"


def _to_fp16(source: Path, target: Path) -> None:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    onnx.save(convert_float_to_float16(onnx.load(str(source)), keep_io_types=True), str(target))


def _to_qdq(source: Path, target: Path, input_name: str, windows: np.ndarray) -> None:
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)

    class Windows(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = iter([{input_name: w[np.newaxis]} for w in windows])

        def get_next(self) -> dict | None:
            return next(self.feeds, None)

    root = logging.getLogger()  # quantize_static advises pre-processing on the root logger
    level = root.level
    root.setLevel(max(level, logging.ERROR))
    try:
        quantize_static(str(source), str(target), Windows(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        per_channel=True,
                        extra_options={"ActivationSymmetric": True, "WeightSymmetric": True})
    finally:
        root.setLevel(level)


def _onnx_diff(reference: Path, other: Path, input_name: str, windows: np.ndarray) -> float | None:
    """max |reference − other| with ONNX Runtime CPU, or None when ORT cannot run `other`."""
    try:
        a, b = ort_session(reference), ort_session(other)
    except Exception:  # noqa: BLE001 - ORT lacks a CPU kernel for some fp16 ops
        return None
    worst = 0.0
    for window in windows[:CHECK_INPUTS]:
        x = window[np.newaxis].astype(np.float32)
        expected = np.asarray(a.run(None, {input_name: x})[0], dtype=np.float32)
        got = np.asarray(b.run(None, {input_name: x})[0], dtype=np.float32)
        worst = max(worst, float(np.max(np.abs(expected - got.reshape(expected.shape)))))
    return worst


def typed_onnx(export: OnnxExport, precision: str, cache: Path,
               eval_inputs: Path | None = None) -> TypedOnnx:
    """The float export with fp16 weights or int8 Q/DQ nodes (cached by content)."""
    if precision not in TYPED:
        raise ValueError(f"precision {precision!r} is not one of {TYPED}")
    windows, origin = _calibration(export.input_shape, eval_inputs)
    key = key_of("typed-onnx", export.sha256, precision, code_version("artifacts/onnx_export.py"),
                 package_version("onnxruntime"), package_version("onnx"),
                 hashlib.sha256(windows.tobytes()).hexdigest() if precision == "int8" else None)
    folder = cache / "onnx"
    path, meta_path = folder / f"{key}.{precision}.onnx", folder / f"{key}.{precision}.json"
    if path.is_file() and meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        meta.update(path=path, cached=True)
        return TypedOnnx(**meta)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.part.onnx")
    try:
        if precision == "fp16":
            _to_fp16(export.path, tmp)
        else:
            _to_qdq(export.path, tmp, export.input_name, windows)
    except ImportError as exc:
        raise InfraError(f"typed ONNX for TensorRT needs onnx and onnxruntime ({exc})",
                         kind="tool_missing", phase="build", hint=INSTALL_HINT) from exc
    except Exception as exc:  # noqa: BLE001 - the converters raise many types
        tmp.unlink(missing_ok=True)
        raise UserError(f"{export.path.name}: cannot make the {precision} ONNX model for "
                        f"TensorRT: {str(exc)[:300]}",
                        hint="TensorRT >= 11 takes the precision from the ONNX model") from exc
    os.replace(tmp, path)
    typed = TypedOnnx(path, sha256_file(path), path.stat().st_size, precision, export.sha256,
                      _onnx_diff(export.path, path, export.input_name, windows),
                      origin if precision == "int8" else None,
                      len(windows) if precision == "int8" else None)
    write_json(meta_path, typed.meta())
    return typed


def export_for(artifact: Artifact, cache: Path) -> OnnxExport:
    """Export (or reuse) the checked ONNX model of an artifact's Keras source."""
    if artifact.source is None:
        raise UserError(f"{artifact.model}: no Keras source model to export ONNX from",
                        hint="give a .keras file or SavedModel in the suite, not a .tflite")
    return export_onnx(artifact.source, cache,
                       artifact.eval.inputs if artifact.eval is not None else None)


def onnx_artifact(artifact: Artifact, export: OnnxExport) -> Artifact:
    """The ONNX export as an Artifact of the same model and variant (`extra["onnx"]`: its meta)."""
    return Artifact(artifact.model, artifact.variant, path=export.path, sha256=export.sha256,
                    size_bytes=export.size_bytes, cached=export.cached, source=artifact.source,
                    eval=artifact.eval, extra={"onnx": export.meta()})
