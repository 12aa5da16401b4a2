"""Quantization efficacy with `tf.lite.experimental.QuantizationDebugger`.

API (the artifact converter calls these; TensorFlow is imported lazily):
  debug_full_int8(converter_factory, representative, threshold=0.7) -> pandas.DataFrame
      Per-layer statistics of a full-integer conversion: the debugger's columns (`STAT_COLUMNS`,
      as in tests/data/tools/quant_debug/*.csv) plus `rmse_scale` and `suspected`.
  convert_with_denylist(converter_factory, representative, nodes) -> bytes
      The same conversion with the layers whose output tensors are `nodes` kept in float
      (QuantizationDebugOptions(denylisted_nodes=...)).
  suspected_nodes(frame) -> list[str]       tensor names flagged `suspected`, in graph order
  rmse_scale_from_frame(frame) -> Series    sqrt(mean_squared_error) / scale (pure pandas)

`converter_factory()` must return a fresh `tf.lite.TFLiteConverter` already configured for the
full-integer mode (optimizations, representative_dataset, target_spec); the debugger needs a new
converter per run. `representative` is the float32 (N, ...) calibration set, fed one sample
(batch 1) at a time as the debug dataset.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd

STAT_COLUMNS = ["op_name", "tensor_idx", "num_elements", "stddev", "mean_error", "max_abs_error",
                "mean_squared_error", "scale", "zero_point", "tensor_name"]
DEFAULT_THRESHOLD = 0.7  # RMSE/scale ≈ 0.289 (1/√12) is an ideal rounding error

ConverterFactory = Callable[[], Any]


def rmse_scale_from_frame(frame: pd.DataFrame) -> pd.Series:
    """RMSE of the quantized layer output in units of its quantization step."""
    return np.sqrt(frame["mean_squared_error"].astype(float)) / frame["scale"].astype(float)


def with_efficacy(frame: pd.DataFrame, threshold: float = DEFAULT_THRESHOLD) -> pd.DataFrame:
    """The statistics with `rmse_scale` and `suspected` (rmse_scale > threshold) added."""
    result = frame[STAT_COLUMNS].copy()
    result["rmse_scale"] = rmse_scale_from_frame(result)
    result["suspected"] = result["rmse_scale"] > threshold
    return result


def suspected_nodes(frame: pd.DataFrame) -> list[str]:
    """Output tensor names of the suspected layers (the `denylisted_nodes` to keep in float)."""
    return [str(name) for name in frame.loc[frame["suspected"], "tensor_name"]]


def _dataset(representative: np.ndarray) -> Callable[[], Iterator[list[np.ndarray]]]:
    """Debug dataset generator: one float32 sample (1, ...) at a time."""
    data = np.asarray(representative, dtype=np.float32)
    return lambda: ([data[i:i + 1]] for i in range(len(data)))


def debug_full_int8(converter_factory: ConverterFactory, representative: np.ndarray,
                    threshold: float = DEFAULT_THRESHOLD) -> pd.DataFrame:
    """Run the QuantizationDebugger on the full-integer conversion; one row per quantized layer."""
    import tensorflow as tf

    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter_factory(), debug_dataset=_dataset(representative))
    debugger.run()
    buffer = io.StringIO()
    debugger.layer_statistics_dump(buffer)
    buffer.seek(0)
    return with_efficacy(pd.read_csv(buffer), threshold)


def convert_with_denylist(converter_factory: ConverterFactory, representative: np.ndarray,
                          nodes: list[str]) -> bytes:
    """Full-integer model with the layers producing `nodes` left in float."""
    import tensorflow as tf

    options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=list(nodes))
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter_factory(), debug_dataset=_dataset(representative),
        debug_options=options)
    return debugger.get_nondebug_quantized_model()
