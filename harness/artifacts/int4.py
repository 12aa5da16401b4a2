"""Int4 weights (`w4`): ai-edge-quantizer's weight-only int4 recipe (channel-wise, float
activations: the int4 weights are dequantized before float ops) applied to a float .tflite.
ai-edge-quantizer imports no TensorFlow, so this runs in the builder's process."""

from __future__ import annotations

from harness.artifacts.convert import ConversionError, ConverterFailed

OPTIMIZE_EXTRA = "pip install 'harness[optimize]' (ai-edge-quantizer)"


def int4_weights(float_model: bytes) -> bytes:
    """The model with its Conv / FullyConnected weights in int4; ConversionError when the
    quantizer refuses the model, ConverterFailed when it is not installed."""
    try:
        from ai_edge_quantizer import quantizer, recipe
    except ImportError as exc:
        raise ConverterFailed(f"ai-edge-quantizer is missing ({exc}): {OPTIMIZE_EXTRA}") from exc
    try:
        quant = quantizer.Quantizer(bytearray(float_model), recipe.weight_only_wi4_afp32())
        result = quant.quantize(enable_progress_report=False)
    except (OSError, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - the quantizer raises many types; all mean "cannot"
        raise ConversionError(f"ai-edge-quantizer (int4): {type(exc).__name__}: {exc}"[:300]) \
            from exc
    if not result.quantized_model:
        raise ConversionError("ai-edge-quantizer (int4) returned no model")
    return bytes(result.quantized_model)
