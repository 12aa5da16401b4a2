"""The artifact CNN (models.build_cnn + export_model) rebuilt with any Keras: Keras 3 or tf-keras
(`keras_module`), batch None for a fine-tune, one output (scaled power), same layer names, so the
weights move between them by name (harness/artifacts/keras_weights.py).

`conv2d=True` builds the same function with Conv2D / SeparableConv2D on a (1, window, 1) image:
tensorflow-model-optimization's quantization-aware training has no Conv1D. The converted graph is
the same (TFLite has no 1-D convolution), and the kernels differ only by a leading axis of 1.
Kept beside models.py: tests/test_optimize_variants.py checks that both give the same outputs.
"""

from __future__ import annotations

from typing import Any


def build_cnn_twin(keras_module: Any, batch_size: int | None, *, window: int,
                   filters: list[int], kernel_size: int, dense: int, separable: bool = False,
                   centre_half: int, gate_sharpness: float, conv2d: bool = False,
                   floor: float = 0.0) -> Any:
    """The export model's function: aggregate window → scaled power gated by P(on). The head
    also sees the window's middle 2 × `centre_half` + 1 samples (models._centre), the power is
    floored at `floor` (models.Floor, here as relu(x - floor) + floor: no custom layer) and gated
    by sigmoid(`gate_sharpness` × status logit) (models.StatusGate at inference; the fine-tune
    trains with that gate too). `centre_half` and `gate_sharpness` are models.CENTRE_HALF and
    models.GATE_SHARPNESS, passed in: this module imports no Keras of its own."""
    layers = keras_module.layers
    inputs = keras_module.Input(shape=(window, 1), batch_size=batch_size, name="aggregate")
    half = min(centre_half, window // 2)
    left = window // 2 - half
    centre = layers.Cropping1D((left, window - left - (2 * half + 1)), name="centre")(inputs)
    centre = layers.Flatten(name="centre_flat")(centre)
    x = inputs
    if conv2d:
        x = layers.Reshape((1, window, 1), name="as_image")(x)
        conv = layers.SeparableConv2D if separable else layers.Conv2D
        size, pool = (1, kernel_size), (1, 2)
        pooling = layers.MaxPooling2D
    else:
        conv = layers.SeparableConv1D if separable else layers.Conv1D
        size, pool, pooling = kernel_size, 2, layers.MaxPooling1D
    for i, count in enumerate(filters):
        x = conv(count, size, padding="same", activation="relu", name=f"conv{i}")(x)
        x = pooling(pool, name=f"pool{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Concatenate(name="features_centre")([x, centre])
    hidden = layers.Dense(dense, activation="relu", name="head")(x)
    power = layers.Dense(1, activation="relu", name="power")(hidden)
    if floor > 0:
        power = layers.Rescaling(1.0, offset=-floor, name="floor_shift")(power)
        power = layers.ReLU(name="floor_relu")(power)
        power = layers.Rescaling(1.0, offset=floor, name="power_floor")(power)
    status = layers.Dense(1, name="status")(hidden)
    sharpened = layers.Rescaling(gate_sharpness, name="status_sharpened")(status)
    probability = layers.Activation("sigmoid", name="status_probability")(sharpened)
    gated = layers.Multiply(name="gated_power")([power, probability])
    return keras_module.Model(inputs, gated, name="cnn_power")
