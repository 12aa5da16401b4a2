"""A job's runtime and the runner backend it means.

The target's `runtime` (and extra `runtimes`) name what runs a model; the plan gives each job the
backend that runtime means for the device-side runner: "tflite" (the .tflite artifact with a TFLite
runtime: ai_edge_litert, tflite_runtime or tensorflow, or "auto") or "onnxruntime" (the float ONNX
export of the Keras model, run by `targets/ort_runner.py`).
"""

from __future__ import annotations

TFLITE, ONNXRUNTIME = "tflite", "onnxruntime"


def backend_for(runtime: str) -> str:
    """The runner backend a runtime means: ONNX Runtime runs the ONNX export, the rest TFLite."""
    return ONNXRUNTIME if runtime == ONNXRUNTIME else TFLITE


def backend_unsupported(backend: str, variant: str) -> str | None:
    """Why a backend cannot run a variant, or None (ONNX Runtime: the float export only)."""
    if backend != ONNXRUNTIME or variant == "convert_only":
        return None
    if variant == "as_is":
        return ("ONNX Runtime needs the Keras source model to export ONNX; a .tflite file given "
                "as is has none")
    return (f"ONNX Runtime runs the float ONNX export of the Keras model (convert_only); "
            f"{variant} is a TFLite quantization with no ONNX counterpart here")
