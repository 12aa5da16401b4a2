"""Magnitude pruning for Keras 3: the smallest kernel weights set to exactly zero, kept at zero by a
callback that re-applies the mask after every training batch (tensorflow-model-optimization's
`prune_low_magnitude` does not run on Keras 3).

The schedule is `constant` (the target sparsity from the first step) or `polynomial` (0 rising to
the target over the first half of the fine-tune, cubic, as tfmot's PolynomialDecay). Every kernel
(`kernel`, `depthwise_kernel`, `pointwise_kernel`: Conv and Dense weights; never biases) is pruned
to the same fraction, so the whole model's kernel sparsity is the target.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from harness.config.suite import OptimizeSpec
    from harness.workloads.base import FineTune

KERNEL_NAMES = ("kernel", "depthwise_kernel", "pointwise_kernel")


def magnitude_mask(weights: np.ndarray, sparsity: float) -> np.ndarray:
    """1.0 for the weights kept, 0.0 for the round(sparsity × size) smallest by magnitude
    (exactly that many: ties are broken by position)."""
    flat = np.abs(np.asarray(weights, dtype=np.float64)).reshape(-1)
    pruned = int(round(min(max(sparsity, 0.0), 1.0) * flat.size))
    mask = np.ones(flat.size, dtype=np.float32)
    if pruned:
        mask[np.argsort(flat, kind="stable")[:pruned]] = 0.0
    return mask.reshape(np.shape(weights))


def scheduled_sparsity(step: int, target: float, schedule: str, end_step: int) -> float:
    """The sparsity at a training step: constant, or polynomial (cubic) from 0 to the target at
    `end_step`."""
    if schedule == "constant" or end_step <= 0 or step >= end_step:
        return target
    if schedule != "polynomial":
        raise ValueError(f"unknown pruning schedule {schedule!r}: use constant or polynomial")
    return target * (1.0 - (1.0 - step / end_step) ** 3)


def kernel_variables(model: Any) -> list[Any]:
    """The kernel variables of a Keras model (Conv and Dense weights, not biases)."""
    return [v for v in model.trainable_weights
            if v.name.rsplit("/", 1)[-1].split(":")[0] in KERNEL_NAMES]


def magnitude_pruning(target: float, schedule: str = "polynomial", end_step: int = 0,
                      frequency: int = 10) -> Any:
    """The pruning callback (`MagnitudePruning`) for a Keras 3 fit."""
    return _callback_class()(target, schedule, end_step, frequency)


@functools.cache
def _callback_class() -> type:
    """The callback class, defined on first use: Keras (and TensorFlow) is imported then, not
    when this module is (the mask and the schedule above are plain numpy)."""
    import keras

    class MagnitudePruning(keras.callbacks.Callback):
        """Keras callback: masks recomputed on the schedule's steps and applied after every batch;
        at the end of training the target sparsity holds exactly."""

        def __init__(self, target: float, schedule: str = "polynomial", end_step: int = 0,
                     frequency: int = 10) -> None:
            super().__init__()
            if not 0.0 <= target < 1.0:
                raise ValueError(f"target sparsity {target} is not in [0, 1)")
            self.target, self.schedule = target, schedule
            self.end_step, self.frequency = end_step, max(1, frequency)
            self.step = 0
            self.masks: list[np.ndarray] = []

        def _update(self, sparsity: float) -> None:
            self.masks = [magnitude_mask(v.numpy(), sparsity)
                          for v in kernel_variables(self.model)]

        def _apply(self) -> None:
            for variable, mask in zip(kernel_variables(self.model), self.masks):
                variable.assign(variable.numpy() * mask)

        def on_train_begin(self, logs: dict | None = None) -> None:
            self.step = 0
            self._update(scheduled_sparsity(0, self.target, self.schedule, self.end_step))
            self._apply()

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            self.step += 1
            if self.step % self.frequency == 0 or self.step == self.end_step:
                self._update(scheduled_sparsity(self.step, self.target, self.schedule,
                                                self.end_step))
            self._apply()

        def on_train_end(self, logs: dict | None = None) -> None:
            self._update(self.target)
            self._apply()

    return MagnitudePruning


def fine_tune_subset(fine: "FineTune", spec: "OptimizeSpec") -> tuple[np.ndarray, np.ndarray]:
    """At most `spec.max_windows` training pairs, drawn with the spec's seed."""
    count = len(fine.x)
    if count <= spec.max_windows:
        return fine.x, fine.y
    chosen = np.sort(np.random.default_rng(spec.seed).choice(count, spec.max_windows,
                                                             replace=False))
    return fine.x[chosen], fine.y[chosen]


def prune_keras_model(source: Path, out: Path, fine: "FineTune", percent: int,
                      spec: "OptimizeSpec") -> None:
    """Prune the Keras 3 model at `source` to `percent` % kernel sparsity with a fine-tune of its
    architecture twin (batch None, `fine.build`), and save it (same architecture) at `out`."""
    import keras

    from harness.artifacts.keras_weights import named_weights, set_named_weights

    model = keras.models.load_model(source, compile=False)
    keras.utils.set_random_seed(spec.seed)
    twin = fine.build(keras, None, conv2d=False)
    set_named_weights(twin, named_weights(model))
    x, y = fine_tune_subset(fine, spec)
    steps = math.ceil(len(x) / spec.batch_size) * spec.epochs
    pruning = magnitude_pruning(percent / 100.0, spec.prune_schedule,
                                end_step=max(1, steps // 2))
    twin.compile(optimizer=keras.optimizers.Adam(spec.learning_rate), loss="mse")
    twin.fit(x, y, batch_size=spec.batch_size, epochs=spec.epochs, callbacks=[pruning],
             shuffle=True, verbose=0)
    set_named_weights(model, named_weights(twin))
    model.save(out)
