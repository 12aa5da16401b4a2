"""The NILM reference project's architectures, layer by layer (Keras 3), as suite presets.

`cnn: {preset: seq2point-reference}` — `build_reference_cnn` reproduces goruck/nilm
`ml/define_models.py` `cnn()` (the Keras Sequential 1-D model, the one its published per-op
profiles with three FULLY_CONNECTED nodes come from): Conv1D 16 k5 → max-pool 2 → Conv1D 32 k3 →
pool → Conv1D 64 k3 → pool → Conv1D 128 k3 → pool → Conv1D 256 k3 (all 'same', ReLU; pools
'same', so 599 → 300 → 150 → 75 → 38), flatten (38 × 256), Dense 1024 ReLU, Dense 512 ReLU,
Dense 1 linear: 10,618,945 parameters, ~42.5 MB in float32. (Its `cnn_fun` is the Conv2D (1×k)
twin with a single Dense 1024 and dropout, which its author measured about 2× slower; not built.)

`transformer: {preset: nilm-transformer-reference}` — `build_reference_transformer` reproduces
goruck/nilm `ml/transformer_model.py` `NILMTransformerModel` / `NILMTransformerModelFit.call`
(built by `define_models.transformer` / `transformer_fit`, d_model 256): Conv1D 256 k5 'same'
(linear) → `L2NormPooling1D` /2 (599 → 299 tokens) → learned `PositionEmbedding` (max length
599, sliced to 299) added with `AddNormalization` (LayerNorm of the sum) → dropout 0.1 → 2 ×
`TransformerBlock` (2 heads, d_k = d_v = d_model/2, scores scaled by √d_k, feed-forward 1024 with
tanh-GELU, dropout, add & norm after each sublayer) → `RelativePositionEmbedding` (⌈299/2⌉ learned
rows mirrored about the midpoint) added with `AddNormalization` → global average pooling →
Dense 256 ReLU → Dense 1 linear: 1,576,961 parameters. `define_models.transformer_fun` is the
functional twin with Dense 1024 in place of Dense 256; the models the reference project trained
and published use the class above. Differences in op form only: the GELU cube is x·x·x (not
tf.pow, which TFLite has no integer kernel for), the position tables are sliced statically.

Both output one value, the appliance power scaled to [0, 1] (× max power = W), like the
reference project's; they are trained with `train.nilm_loss` on that single column.
"""

from __future__ import annotations

import math

import keras
from keras import layers, ops

WINDOW = 599
D_MODEL = 256
HEADS = 2
BLOCKS = 2
DROPOUT = 0.1


@keras.saving.register_keras_serializable(package="harness_nilm_reference")
class L2NormPooling1D(layers.Layer):
    """sqrt(average-pool(x²) + ε): L2-norm pooling, window and stride `pool_size` ('valid')."""

    def __init__(self, pool_size: int = 2, epsilon: float = 1e-10, **kwargs) -> None:
        super().__init__(**kwargs)
        self.pool_size, self.epsilon = pool_size, epsilon
        self.pool = layers.AveragePooling1D(pool_size, strides=pool_size, padding="valid")

    def call(self, inputs):
        return ops.sqrt(self.pool(ops.square(inputs)) + self.epsilon)

    def get_config(self) -> dict:
        return {**super().get_config(), "pool_size": self.pool_size, "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="harness_nilm_reference")
class PositionEmbedding(layers.Layer):
    """A learned (max_length, width) table; returns its first `length` rows for a sequence."""

    def __init__(self, max_length: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.max_length = max_length

    def build(self, input_shape: tuple) -> None:
        self.embeddings = self.add_weight(shape=(self.max_length, input_shape[-1]),
                                          initializer="glorot_uniform", name="embeddings")

    def call(self, inputs):
        length = inputs.shape[1]
        return ops.zeros_like(inputs) + self.embeddings[:length][None]

    def get_config(self) -> dict:
        return {**super().get_config(), "max_length": self.max_length}


@keras.saving.register_keras_serializable(package="harness_nilm_reference")
class RelativePositionEmbedding(layers.Layer):
    """⌈max_length/2⌉ learned rows e0..ek mirrored about the midpoint: [ek..e1 e0 e1..ek] for an
    odd length (e0 repeated for an even one)."""

    def __init__(self, max_length: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.max_length = max_length

    def build(self, input_shape: tuple) -> None:
        self.embeddings = self.add_weight(shape=(math.ceil(self.max_length / 2), input_shape[-1]),
                                          initializer="glorot_uniform", name="embeddings")

    def call(self, inputs):
        length = inputs.shape[1]
        half = self.embeddings[:math.ceil(length / 2)]
        tail = half if length % 2 == 0 else half[1:]
        table = ops.concatenate([ops.flip(half, axis=0), tail], axis=0)
        return ops.zeros_like(inputs) + table[None]

    def get_config(self) -> dict:
        return {**super().get_config(), "max_length": self.max_length}


@keras.saving.register_keras_serializable(package="harness_nilm_reference")
class AddNormalization(layers.Layer):
    """LayerNormalization(x + sublayer_x) (Keras default ε = 1e-3)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.norm = layers.LayerNormalization()

    def build(self, inputs_shape: tuple, sublayer_shape: tuple | None = None) -> None:
        if not self.norm.built:
            self.norm.build(inputs_shape)

    def call(self, inputs, sublayer):
        return self.norm(inputs + sublayer)


@keras.saving.register_keras_serializable(package="harness_nilm_reference")
class MultiHeadedAttention(layers.Layer):
    """Self-attention: W_q, W_k (d_k), W_v (d_v) split into `heads`, softmax(QKᵀ/√d_k)V, W_o."""

    def __init__(self, heads: int, d_k: int, d_v: int, d_model: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.heads, self.d_k, self.d_v, self.d_model = heads, d_k, d_v, d_model
        self.w_q, self.w_k = layers.Dense(d_k, name="W_q"), layers.Dense(d_k, name="W_k")
        self.w_v, self.w_o = layers.Dense(d_v, name="W_v"), layers.Dense(d_model, name="W_o")

    def build(self, input_shape: tuple) -> None:
        for dense in (self.w_q, self.w_k, self.w_v):
            dense.build(input_shape)
        self.w_o.build(tuple(input_shape[:-1]) + (self.d_v,))

    def _split(self, x):
        length = x.shape[1]
        x = ops.reshape(x, (-1, length, self.heads, x.shape[-1] // self.heads))
        return ops.transpose(x, (0, 2, 1, 3))

    def call(self, inputs):
        q, k, v = (self._split(dense(inputs)) for dense in (self.w_q, self.w_k, self.w_v))
        scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) / math.sqrt(self.d_k)
        attended = ops.transpose(ops.matmul(ops.softmax(scores, axis=-1), v), (0, 2, 1, 3))
        return self.w_o(ops.reshape(attended, (-1, inputs.shape[1], self.d_v)))

    def get_config(self) -> dict:
        return {**super().get_config(), "heads": self.heads, "d_k": self.d_k, "d_v": self.d_v,
                "d_model": self.d_model}


def gelu_tanh(x):
    """0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), the reference project's GELU."""
    return 0.5 * x * (1.0 + ops.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)))


@keras.saving.register_keras_serializable(package="harness_nilm_reference")
class TransformerBlock(layers.Layer):
    """BERT-style encoder block: attention, dropout, add & norm; feed-forward, dropout, add &
    norm."""

    def __init__(self, hidden: int, heads: int, ff: int, dropout: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.hidden, self.heads, self.ff, self.dropout = hidden, heads, ff, dropout
        self.attention = MultiHeadedAttention(heads, hidden // 2, hidden // 2, hidden)
        self.dropout1, self.dropout2 = layers.Dropout(dropout), layers.Dropout(dropout)
        self.add_norm1, self.add_norm2 = AddNormalization(), AddNormalization()
        self.ff_in = layers.Dense(ff, name="ff_in")
        self.ff_out = layers.Dense(hidden, name="ff_out")

    def build(self, input_shape: tuple) -> None:
        self.attention.build(input_shape)
        self.ff_in.build(input_shape)
        self.ff_out.build(tuple(input_shape[:-1]) + (self.ff,))
        for norm in (self.add_norm1, self.add_norm2):
            norm.build(input_shape)

    def call(self, x, training=None):
        attended = self.dropout1(self.attention(x), training=training)
        x = self.add_norm1(x, attended)
        fed = self.dropout2(self.ff_out(gelu_tanh(self.ff_in(x))), training=training)
        return self.add_norm2(x, fed)

    def get_config(self) -> dict:
        return {**super().get_config(), "hidden": self.hidden, "heads": self.heads, "ff": self.ff,
                "dropout": self.dropout}


def build_reference_cnn(window: int = WINDOW, batch_size: int | None = None) -> keras.Model:
    """goruck/nilm `define_models.cnn()` (see the module docstring); output (batch, 1)."""
    inputs = keras.Input(shape=(window, 1), batch_size=batch_size, name="aggregate")
    x = inputs
    for i, (filters, kernel) in enumerate(((16, 5), (32, 3), (64, 3), (128, 3), (256, 3))):
        x = layers.Conv1D(filters, kernel, padding="same", activation="relu", name=f"conv{i}")(x)
        if i < 4:
            x = layers.MaxPooling1D(2, padding="same", name=f"pool{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(1024, activation="relu", name="dense1024")(x)
    x = layers.Dense(512, activation="relu", name="dense512")(x)
    outputs = layers.Dense(1, activation="linear", name="power")(x)
    return keras.Model(inputs, outputs, name="cnn_reference")


def build_reference_transformer(window: int = WINDOW, batch_size: int | None = None,
                                d_model: int = D_MODEL) -> keras.Model:
    """goruck/nilm `NILMTransformerModel` (see the module docstring); output (batch, 1)."""
    inputs = keras.Input(shape=(window, 1), batch_size=batch_size, name="aggregate")
    features = L2NormPooling1D(2, name="l2_norm_pool")(
        layers.Conv1D(d_model, 5, padding="same", name="conv")(inputs))
    x = AddNormalization(name="add_norm1")(features, PositionEmbedding(window,
                                                                       name="position")(features))
    x = layers.Dropout(DROPOUT, name="dropout1")(x)
    for index in range(BLOCKS):
        x = TransformerBlock(d_model, HEADS, 4 * d_model, DROPOUT, name=f"block{index}")(x)
    relative = RelativePositionEmbedding(window // 2, name="relative_position")(x)
    x = AddNormalization(name="add_norm2")(x, relative)
    x = layers.GlobalAveragePooling1D(name="avg_pool")(x)
    x = layers.Dense(d_model, activation="relu", name="dense1")(x)
    outputs = layers.Dense(1, name="power")(x)
    return keras.Model(inputs, outputs, name="transformer_reference")
