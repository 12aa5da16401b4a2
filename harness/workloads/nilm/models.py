"""Seq2point models (Keras 3): a Conv1D CNN and a static-shape transformer.

Training models take (batch, window, 1) standardised aggregate windows and output (batch, 2):
column 0 = appliance power scaled to [0, 1] (`POWER`, gated by the status, `StatusGate`),
column 1 = on/off status logit (`STATUS`). The reference presets (`reference_models`) output
only column 0, like the NILM reference project's models.
`export_model` wraps a trained model into the artifact model: fixed input (1, window, 1), one
output (1, 1) = scaled power (× max power = W). The transformer uses only static shapes, dense
layers, batched matmuls and softmax (no control flow), so XNNPACK can take the whole graph.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import layers, ops

from harness.config.suite import CnnSpec, NilmWorkload, TransformerSpec

POWER, STATUS = 0, 1


@keras.saving.register_keras_serializable(package="harness_nilm")
class PositionEmbedding(layers.Layer):
    """Adds a learned (length, d_model) position embedding."""

    def build(self, input_shape: tuple) -> None:
        self.embedding = self.add_weight(shape=tuple(input_shape[1:]), name="embedding",
                                         initializer=keras.initializers.RandomNormal(stddev=0.02))

    def call(self, inputs):
        return inputs + self.embedding


@keras.saving.register_keras_serializable(package="harness_nilm")
class SelfAttention(layers.Layer):
    """Multi-head self-attention with one dense projection per head (rank-3 tensors only)."""

    def __init__(self, d_model: int, heads: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.d_model, self.heads = d_model, heads
        self.head_dim = max(1, d_model // heads)
        self.projections = [[layers.Dense(self.head_dim, name=f"{kind}{h}") for kind in "qkv"]
                            for h in range(heads)]
        self.merge = layers.Dense(d_model, name="merge")

    def build(self, input_shape: tuple) -> None:
        for group in self.projections:
            for dense in group:
                dense.build(input_shape)
        self.merge.build(tuple(input_shape[:-1]) + (self.head_dim * self.heads,))

    def call(self, inputs):
        outputs = []
        for query, key, value in self.projections:
            scores = ops.matmul(query(inputs), ops.transpose(key(inputs), (0, 2, 1)))
            weights = ops.softmax(scores * (1.0 / math.sqrt(self.head_dim)), axis=-1)
            outputs.append(ops.matmul(weights, value(inputs)))
        merged = outputs[0] if len(outputs) == 1 else ops.concatenate(outputs, axis=-1)
        return self.merge(merged)

    def get_config(self) -> dict:
        return {**super().get_config(), "d_model": self.d_model, "heads": self.heads}


@keras.saving.register_keras_serializable(package="harness_nilm")
class Floor(layers.Layer):
    """max(x, floor): a lower bound on the regressed power (see `on_power_floor`)."""

    def __init__(self, floor: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.floor = floor

    def call(self, inputs):
        return ops.maximum(inputs, self.floor)

    def get_config(self) -> dict:
        return {**super().get_config(), "floor": self.floor}


GATE_SHARPNESS = 8.0  # the inference gate: P(on) = sigmoid(8 × status logit)


@keras.saving.register_keras_serializable(package="harness_nilm")
class StatusGate(layers.Layer):
    """[power, status logit] → power × P(on).

    While training, P(on) = sigmoid(logit), the smooth gate the loss is shaped for. At inference
    (validation, prediction, the exported artifact) P(on) = sigmoid(`sharpness` × logit), close to
    a step at logit 0: the status head decides on or off. With the smooth gate an uncertain status
    (P ≈ 0.3) lets a third of the regressed power through, over the on-threshold while other large
    loads run: false activations that cost the microwave transformer ~0.2 F1. Ops: MUL, LOGISTIC.
    """

    def __init__(self, sharpness: float = GATE_SHARPNESS, **kwargs) -> None:
        super().__init__(**kwargs)
        self.sharpness = sharpness

    def call(self, inputs, training=None):
        power, logit = inputs
        return power * ops.sigmoid(logit if training else logit * self.sharpness)

    def get_config(self) -> dict:
        return {**super().get_config(), "sharpness": self.sharpness}


def on_power_floor(appliance: str | None) -> float:
    """Scaled lower bound of the power an on-status stands for, for the appliances whose runs
    must last 30 min (dishwasher, washing machine), else 0: the on-threshold plus one and a half
    int8 steps of the output (max power / 255), so that the floor stays over the threshold in a
    full-integer model too (with the output's int8 step of 2500 W / 255 = 9.8 W, the earlier
    floor of 1.25 × 10 W rounds to one step, 9.8 W: under the threshold).

    Their programmes have long low-power phases (pump, tumbling) a few W above the 10-W
    threshold; a regression that undershoots there by a few W breaks the run into pieces shorter
    than the minimum on-time, all dropped. With the floor, power = P(on) × max(power, floor) is
    over the threshold wherever the status head says on (P ≥ 0.41 through the sharp inference
    gate), whatever the regression says.
    """
    from harness.workloads.nilm.appliances import params

    if appliance is None or params(appliance).min_on_s < 1800:
        return 0.0
    p = params(appliance)
    return (p.on_threshold_w + 1.5 * p.max_power_w / 255) / p.max_power_w


CENTRE_HALF = 16  # the head also sees the window's middle 2 × 16 + 1 samples as they are


def _centre(inputs, window: int):
    """The window's middle samples, flattened: (batch, ≤ 2 × CENTRE_HALF + 1)."""
    half = min(CENTRE_HALF, window // 2)
    left = window // 2 - half
    crop = layers.Cropping1D((left, window - left - (2 * half + 1)), name="centre")(inputs)
    return layers.Flatten(name="centre_flat")(crop)


def _head(features, dense: int, centre=None, floor: float = 0.0):
    """Dense head, outputs concatenated: (batch, 2) = [power gated by P(on), status logit].

    Gating the regressed power with the status probability (`StatusGate`: smooth while training,
    sharp at inference) keeps the prediction at 0 W while the appliance is off, instead of
    spreading regression noise over every off window. `centre` (the
    window's middle samples) goes into the head beside the features: pooling and strides leave
    the features a position resolution of 8-16 samples, the centre places an edge to the sample,
    so a short activation (a microwave's 4-37 samples) is not smeared over its neighbours.
    """
    if centre is not None:
        features = layers.Concatenate(name="features_centre")([features, centre])
    hidden = layers.Dense(dense, activation="relu", name="head")(features)
    power = layers.Dense(1, activation="relu", name="power")(hidden)
    if floor > 0:
        power = Floor(floor, name="power_floor")(power)
    status = layers.Dense(1, name="status")(hidden)
    gated = StatusGate(name="gated_power")([power, status])
    return layers.Concatenate(name="power_status")([gated, status])


def build_cnn(window: int, spec: CnnSpec, batch_size: int | None = None,
              floor: float = 0.0) -> keras.Model:
    """Conv1D (SeparableConv1D with `spec.separable`) + max pooling stack, flatten, dense head
    (with the window's centre samples)."""
    inputs = keras.Input(shape=(window, 1), batch_size=batch_size, name="aggregate")
    x = inputs
    conv = layers.SeparableConv1D if spec.separable else layers.Conv1D
    for i, filters in enumerate(spec.filters):
        x = conv(filters, spec.kernel_size, padding="same", activation="relu", name=f"conv{i}")(x)
        x = layers.MaxPooling1D(2, name=f"pool{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    return keras.Model(inputs, _head(x, spec.dense, _centre(inputs, window), floor), name="cnn")


def _encoder_block(x, spec: TransformerSpec, index: int):
    """Post-norm BERT encoder block: attention + residual + norm, feed-forward + residual + norm."""
    attended = SelfAttention(spec.d_model, spec.heads, name=f"attention{index}")(x)
    x = layers.LayerNormalization(epsilon=1e-5, name=f"norm_a{index}")(x + attended)
    hidden = layers.Dense(spec.ff, activation="gelu", name=f"ff_in{index}")(x)
    hidden = layers.Dense(spec.d_model, name=f"ff_out{index}")(hidden)
    return layers.LayerNormalization(epsilon=1e-5, name=f"norm_f{index}")(x + hidden)


CENTRE_TOKENS = 3  # the transformer's head also sees its middle encoder outputs, not only their mean


def _centre_tokens(x, count: int):
    """The middle `count` tokens of an encoder output (batch, tokens, d), flattened."""
    tokens = x.shape[1]
    count = min(count, tokens)
    left = (tokens - count) // 2
    crop = layers.Cropping1D((left, tokens - left - count), name="centre_tokens")(x)
    return layers.Flatten(name="centre_tokens_flat")(crop)


def build_transformer(window: int, spec: TransformerSpec, batch_size: int | None = None,
                      dense: int = 64, floor: float = 0.0) -> keras.Model:
    """Strided conv front end, position embedding, encoder blocks, then a dense head on the mean
    of the encoder outputs, its middle tokens and the window's centre samples."""
    inputs = keras.Input(shape=(window, 1), batch_size=batch_size, name="aggregate")
    x = layers.Conv1D(spec.d_model, 2 * spec.stride + 1, strides=spec.stride, padding="same",
                      activation="relu", name="front")(inputs)
    x = PositionEmbedding(name="position")(x)
    for index in range(spec.layers):
        x = _encoder_block(x, spec, index)
    features = layers.GlobalAveragePooling1D(name="pool")(x)
    if CENTRE_TOKENS:
        features = layers.Concatenate(name="pool_centre_tokens")(
            [features, _centre_tokens(x, CENTRE_TOKENS)])
    return keras.Model(inputs, _head(features, dense, _centre(inputs, window), floor),
                       name="transformer")


def build_model(arch: str, workload: NilmWorkload, batch_size: int | None = None,
                appliance: str | None = None) -> keras.Model:
    """The training model of `arch` ('cnn' | 'transformer'): output (batch, 2) = [power, logit],
    or (batch, 1) = power for a reference preset (`reference_models`). `appliance` sets the
    small models' `on_power_floor`."""
    from harness.workloads.nilm import reference_models

    if arch == "cnn" and workload.cnn.preset == "seq2point-reference":
        return reference_models.build_reference_cnn(workload.window, batch_size)
    if arch == "transformer" and workload.transformer.preset == "nilm-transformer-reference":
        return reference_models.build_reference_transformer(workload.window, batch_size)
    floor = on_power_floor(appliance)
    if arch == "cnn":
        return build_cnn(workload.window, workload.cnn, batch_size, floor)
    if arch == "transformer":
        return build_transformer(workload.window, workload.transformer, batch_size,
                                 workload.cnn.dense, floor)
    raise ValueError(f"unknown architecture {arch!r}: use cnn or transformer")


def export_model(model: keras.Model, window: int) -> keras.Model:
    """Artifact model sharing `model`'s weights: input (1, window, 1) → scaled power (1, 1).

    The output is the gated power layer itself, not column 0 of the [power, logit]
    concatenation: in a full-integer model a concatenation has one quantization scale, and the
    logit's range made the power's int8 step a tenth of the maximum power (240 W for the washing
    machine, whose on-threshold is 10 W: w8_a8 F1 0). A single-output model (a reference preset)
    is exported as it is, at batch 1.
    """
    if model.outputs[0].shape[-1] != 1:
        model = keras.Model(model.inputs, model.get_layer("gated_power").output, name=model.name)
    inputs = keras.Input(shape=(window, 1), batch_size=1, name="aggregate")
    return keras.Model(inputs, model(inputs), name=f"{model.name}_power")


def predict_power_w(model: keras.Model, x: np.ndarray, appliance: str,
                    batch_size: int = 512) -> np.ndarray:
    """Appliance power in W (float32, (N,)) predicted by a training or exported model."""
    from harness.workloads.nilm.windows import unscale_target

    outputs = model.predict(x, batch_size=batch_size, verbose=0)
    return unscale_target(outputs[:, POWER], appliance)
