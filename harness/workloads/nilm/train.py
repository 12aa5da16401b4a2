"""Seq2point training: Adam, early stopping on validation loss, multi-task loss, fixed seeds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
from keras import ops

from harness.config.suite import NilmWorkload
from harness.workloads.nilm import NilmData, Split
from harness.workloads.nilm.appliances import params
from harness.workloads.nilm.models import POWER, STATUS, build_model

Progress = Callable[[int, int, dict[str, Any]], None]

# Trained with XLA (Keras' `jit_compile`). Keras leaves XLA off on a CPU-only machine; the small
# transformer is a chain of small ops whose per-op overhead XLA fuses away: its epochs run about
# 2.4x faster on the 2-core host, after a compile of about 15 s. The CNN's convolutions run
# slower under XLA on CPU, so it keeps the default.
XLA_ARCHITECTURES = frozenset({"transformer"})


def nilm_loss(loss_lambda: float, on_threshold: float = 0.0) -> Callable:
    """MSE(power) + BCE(status) + λ·MAE(power) over windows that are on or misclassified.

    y_true = [scaled power, status 0/1]; y_pred = [scaled power, status logit], or [scaled power]
    alone (a reference preset): then, as in the NILM reference project, the predicted status is
    power ≥ `on_threshold` (scaled) and the loss is MSE + λ·MAE over the on/misclassified windows
    (its BCE term is taken of a thresholded prediction and has no gradient).
    """
    def single(y_true, y_pred):
        target, status, power = y_true[:, POWER], y_true[:, STATUS], y_pred[:, POWER]
        wrong = ops.cast(ops.not_equal(power >= on_threshold, status > 0.5), power.dtype)
        mask = ops.maximum(status, wrong)
        l1 = ops.sum(mask * ops.abs(power - target)) / ops.maximum(ops.sum(mask), 1.0)
        return ops.mean(ops.square(power - target)) + loss_lambda * l1

    def loss(y_true, y_pred):
        if y_pred.shape[-1] == 1:
            return single(y_true, y_pred)
        target, status = y_true[:, POWER], y_true[:, STATUS]
        power, logit = y_pred[:, POWER], y_pred[:, STATUS]
        mse = ops.mean(ops.square(power - target))
        bce = ops.mean(ops.binary_crossentropy(status, logit, from_logits=True))
        wrong = ops.cast(ops.not_equal(logit > 0.0, status > 0.5), power.dtype)
        mask = ops.maximum(status, wrong)
        l1 = ops.sum(mask * ops.abs(power - target)) / ops.maximum(ops.sum(mask), 1.0)
        return mse + bce + loss_lambda * l1
    return loss


def targets(split: Split) -> np.ndarray:
    """(N, 2) float32 training targets [scaled power, status]."""
    return np.stack([split.y_scaled, split.status.astype(np.float32)], axis=1)


def train(workload: NilmWorkload, appliance: str, arch: str, data: NilmData,
          progress: Progress | None = None) -> keras.Model:
    """Train the `arch` model for `appliance`; returns the training model with the best weights."""
    training = workload.training
    keras.utils.set_random_seed(training.seed)
    model = build_model(arch, workload, appliance=appliance)
    p = params(appliance)
    model.compile(optimizer=keras.optimizers.Adam(training.learning_rate),
                  loss=nilm_loss(p.loss_lambda, p.on_threshold_w / p.max_power_w),
                  jit_compile=arch in XLA_ARCHITECTURES)
    callbacks: list[keras.callbacks.Callback] = [keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=training.patience, restore_best_weights=True)]
    if progress is not None:
        def report(epoch: int, logs: dict | None) -> None:
            progress(epoch + 1, training.epochs_for(arch), dict(logs or {}))
        callbacks.append(keras.callbacks.LambdaCallback(on_epoch_end=report))
    train_x, train_y = _whole_batches(arch, training.batch_size, data.train.x,
                                      targets(data.train))
    val_x, val_y = _whole_batches(arch, training.batch_size, data.val.x, targets(data.val))
    model.fit(train_x, train_y, batch_size=training.batch_size,
              epochs=training.epochs_for(arch), validation_data=(val_x, val_y),
              callbacks=callbacks, shuffle=True, verbose=0)
    return model


def _whole_batches(arch: str, batch_size: int, x: np.ndarray,
                   y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Under XLA, a seeded random subset of whole batches: XLA compiles a program per batch
    shape, so a last partial batch would cost a second compile."""
    if arch not in XLA_ARCHITECTURES or len(x) < batch_size or len(x) % batch_size == 0:
        return x, y
    keep = np.sort(np.random.default_rng(0).choice(len(x), len(x) - len(x) % batch_size,
                                                   replace=False))
    return x[keep], y[keep]
