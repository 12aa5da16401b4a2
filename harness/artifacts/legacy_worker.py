"""Entry point of the tf-keras process (`TF_USE_LEGACY_KERAS=1`): weight clustering and
quantization-aware training with tensorflow-model-optimization, which runs on tf-keras only, then
the conversion. One request JSON in (`legacy_keras.request`), the .tflite and a status JSON out.

The model is the workload's architecture twin built with tf-keras in its Conv2D form (tfmot has
no Conv1D QAT), given the Keras 3 model's weights by layer name from an .npz. Steps, in order:
`cluster` (cluster_weights, KMeans++ centroids, `preserve_sparsity` after pruning, fine-tune,
strip_clustering) and `qat` (Conv/Dense layers annotated, quantize_apply with the default
8-bit scheme, or its prune- / cluster-preserving forms after those steps, fine-tune). A clustered
model converts with per-tensor weight scales, so a kernel keeps at most K distinct values.
Run as `python -m harness.artifacts.legacy_worker request.json`.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import numpy as np

LEGACY_ENV = "TF_USE_LEGACY_KERAS"
QAT_LAYERS = ("Conv2D", "SeparableConv2D", "DepthwiseConv2D", "Dense")


def _cluster(model: Any, request: dict, keras: Any, tfmot: Any) -> Any:
    """Every layer whose kernel has more than K weights wrapped for clustering (a smaller one
    has at most K distinct values already)."""
    clustering = tfmot.clustering.keras
    clusters = int(request["cluster"])

    def wrap(layer: Any) -> Any:
        kernels = [w for w in layer.weights if "kernel" in w.name]
        if kernels and max(int(np.prod(w.shape)) for w in kernels) > clusters:
            return clustering.cluster_weights(
                layer, number_of_clusters=clusters,
                cluster_centroids_init=clustering.CentroidInitialization.KMEANS_PLUS_PLUS,
                preserve_sparsity=bool(request.get("prune")))
        return layer

    clustered = keras.models.clone_model(model, clone_function=wrap)
    return clustered


def _quantize(model: Any, request: dict, keras: Any, tfmot: Any) -> Any:
    quantization = tfmot.quantization.keras
    combine = tfmot.experimental.combine

    def annotate(layer: Any) -> Any:
        if type(layer).__name__ in QAT_LAYERS:
            return quantization.quantize_annotate_layer(layer)
        return layer

    annotated = keras.models.clone_model(model, clone_function=annotate)
    annotated.set_weights(model.get_weights())
    if request.get("cluster"):
        scheme = combine.Default8BitClusterPreserveQuantizeScheme(
            preserve_sparsity=bool(request.get("prune")))
    elif request.get("prune"):
        scheme = combine.Default8BitPrunePreserveQuantizeScheme()
    else:
        scheme = None
    with quantization.quantize_scope():
        if scheme is None:
            return quantization.quantize_apply(annotated)
        return quantization.quantize_apply(annotated, scheme)


def _fit(model: Any, request: dict, keras: Any, x: np.ndarray, y: np.ndarray) -> None:
    model.compile(optimizer=keras.optimizers.Adam(float(request["learning_rate"])), loss="mse")
    model.fit(x, y, batch_size=int(request["batch_size"]), epochs=int(request["epochs"]),
              shuffle=True, verbose=0)


def optimise_and_convert(request: dict) -> bytes:
    """The request's steps, then the .tflite bytes (ConversionError: the converter refused)."""
    if os.environ.get(LEGACY_ENV) != "1":
        raise RuntimeError(f"{LEGACY_ENV}=1 is not set: tfmot would see Keras 3")
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot

    from harness.artifacts.convert import configure, converting
    from harness.artifacts.keras_weights import from_npz, set_named_weights
    from harness.workloads.base import FineTune

    keras = tf.keras
    keras.utils.set_random_seed(int(request["seed"]))
    fine = FineTune(np.empty(0), np.empty(0), request["builder"], request["kwargs"])
    model = fine.build(keras, None, conv2d=True)
    set_named_weights(model, from_npz(Path(request["weights"])))
    x, y = np.load(request["x"]), np.load(request["y"])
    if request.get("cluster"):
        model = _cluster(model, request, keras, tfmot)
        _fit(model, request, keras, x, y)
        model = tfmot.clustering.keras.strip_clustering(model)
    if request.get("qat"):
        model = _quantize(model, request, keras, tfmot)
        _fit(model, request, keras, x, y)
    window = int(request["kwargs"]["window"])
    concrete = tf.function(lambda inputs: model(inputs, training=False)).get_concrete_function(
        tf.TensorSpec((1, window, 1), tf.float32))
    representative = np.load(request["representative"]) if request.get("representative") \
        else None

    def convert() -> bytes:
        converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)
        configure(converter, request["mode"], representative)
        if request.get("cluster") and not request.get("qat"):
            converter._experimental_disable_per_channel = True  # K values per kernel survive
        return converter.convert()

    return converting(convert)


def main(argv: list[str]) -> int:
    """Read the request, write `out` (.tflite) and `status` (JSON); exit 0 unless it crashed."""
    from harness.artifacts.convert import ConversionError

    request = json.loads(Path(argv[1]).read_text())
    status = Path(request["status"])
    try:
        Path(request["out"]).write_bytes(optimise_and_convert(request))
        status.write_text(json.dumps({"status": "ok"}))
    except ConversionError as exc:
        status.write_text(json.dumps({"status": "refused", "reason": str(exc), "kind": exc.kind}))
    except ImportError as exc:
        status.write_text(json.dumps({"status": "missing", "reason": str(exc)}))
    except Exception as exc:  # noqa: BLE001 - reported to the builder as data
        traceback.print_exc()
        status.write_text(json.dumps({"status": "failed",
                                      "reason": f"{type(exc).__name__}: {exc}"[:500]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
