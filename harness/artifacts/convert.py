"""TFLite conversion in the five quantization modes, from a Keras model with a fixed batch of 1.

TensorFlow is imported here only, lazily: nothing else on the start-up path pays for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

VARIANT_DESCRIPTIONS = {
    "convert_only": "float32",
    "w8": "dynamic-range int8 weights",
    "w8_a8": "full int8 (representative dataset), float I/O",
    "w8_a16": "16x8: int16 activations, int8 weights",
    "f16": "float16 weights",
}


class ConversionError(Exception):
    """A variant that the converter cannot produce; the message is the converter's reason.

    `kind` is `conversion_failed`, or `not_applicable` for a variant that has nothing to build.
    """

    def __init__(self, message: str, kind: str = "conversion_failed") -> None:
        super().__init__(message)
        self.kind = kind


def export_batch1(model_path: Path, out_dir: Path, input_shape: tuple[int, ...] | None) -> Path:
    """Export a Keras model as a SavedModel whose signature has a fixed batch of 1.

    With the default dynamic batch the converter adds SHAPE/PACK ops and XNNPACK takes only parts of
    the graph; a static (1, ...) signature avoids that. A SavedModel directory is used as it is.
    """
    if model_path.is_dir():
        return model_path
    import keras
    import tensorflow as tf

    model = keras.models.load_model(model_path, compile=False)
    shape = input_shape or tuple(int(d) for d in model.input_shape[1:])
    if not (out_dir / "saved_model.pb").is_file():
        tmp = out_dir.with_name(out_dir.name + ".tmp")
        model.export(str(tmp), format="tf_saved_model", verbose=False,
                     input_signature=[tf.TensorSpec((1, *shape), tf.float32)])
        tmp.replace(out_dir)
    return out_dir


def converter_factory(saved_model: Path) -> Callable[[], Any]:
    """A factory of fresh converters over one SavedModel."""
    import tensorflow as tf

    return lambda: tf.lite.TFLiteConverter.from_saved_model(str(saved_model))


def _representative(windows: np.ndarray) -> Callable[[], Iterable[list[np.ndarray]]]:
    def generate() -> Iterable[list[np.ndarray]]:
        for window in windows:
            yield [window[np.newaxis].astype(np.float32)]
    return generate


def configure(converter: Any, variant: str, representative: np.ndarray | None) -> Any:
    """Set a converter up for one quantization mode."""
    import tensorflow as tf

    if variant == "convert_only":
        return converter
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant == "w8":
        return converter
    if variant == "f16":
        converter.target_spec.supported_types = [tf.float16]
        return converter
    if representative is None:
        raise ConversionError(f"{variant} needs a representative dataset (a workload or "
                              "calibration data); a bare model file has none")
    converter.representative_dataset = _representative(representative)
    if variant == "w8_a8":
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    elif variant == "w8_a16":
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    else:
        raise ConversionError(f"unknown quantization variant {variant!r}")
    return converter


def convert(factory: Callable[[], Any], variant: str, representative: np.ndarray | None) -> bytes:
    """Convert one variant; converter failures become ConversionError with the converter's reason."""
    converter = configure(factory(), variant, representative)
    try:
        return converter.convert()
    except Exception as exc:  # noqa: BLE001 - the converter raises many types; all mean "cannot"
        raise ConversionError(_reason(exc)) from exc


def _reason(exc: Exception) -> str:
    """The informative line of a converter error (they are long MLIR dumps)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in lines:
        if "error:" in line:
            return line[line.index("error:"):][:300]
    return (lines[0] if lines else type(exc).__name__)[:300]
