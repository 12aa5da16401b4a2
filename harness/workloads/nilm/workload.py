"""The NILM workload behind the `Workload` seam: seq2point models trained per appliance and
architecture on REFIT-format data, calibrated on balanced training windows, scored with the NILM
metrics on one contiguous span per held-out house (the device slides the window over it).

TensorFlow is imported only to train or load a model (`build_model`, `register_layers`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.artifacts.cache import (code_version, key_of, package_version, sha256_file,
                                     write_json, write_npy)
from harness.config.suite import NilmWorkload
from harness.workloads.base import EvalData, FineTune, ModelSpec, Score, Step
from harness.workloads.nilm.appliances import SAMPLE_SECONDS, params
from harness.workloads.nilm.dataset import NilmData, data_fingerprint, prepare
from harness.workloads.nilm.metrics import metric_units, nilm_metrics

KIND = "nilm"


@dataclass(frozen=True)
class NilmScorer:
    """NILM metrics of a model's scaled power outputs against the true appliance power (W).

    The outputs are one prediction per sample of the held-out spans (`segments`: predictions per
    span, one span per house, in order); the status rules run on each span alone. Besides the
    metrics, `span_days` (per house, keyed `<appliance>/house<N>`) says what was evaluated and
    `train_epochs` (n = training windows) how long the model was trained.
    """

    appliance: str
    max_power_w: float
    segments: tuple[int, ...]
    houses: tuple[int, ...] = ()
    requested: int = 0    # predictions per house the suite asked for
    training: Path | None = None  # the model's training record (`train_epochs` row), if any

    def score(self, outputs: np.ndarray, truth: np.ndarray) -> list[Score]:
        predicted = np.asarray(outputs).reshape(-1) * self.max_power_w
        truth = np.asarray(truth).reshape(-1)
        metrics = nilm_metrics(np.clip(predicted, 0, None), truth, self.appliance,
                               SAMPLE_SECONDS, list(self.segments))
        units = metric_units()
        scores = [Score(name, value, units.get(name, ""), n=len(truth), key=self.appliance)
                  for name, value in metrics.items()]
        for house, count in zip(self.houses, self.segments):
            scores.append(Score("span_days", count * SAMPLE_SECONDS / 86400, "d", n=count,
                                key=f"{self.appliance}/house{house}"))
        if self.training is not None and self.training.is_file():
            record = json.loads(self.training.read_text())
            scores.append(Score("train_epochs", record["epochs_run"], "epochs",
                                n=record.get("train_windows"), key=self.appliance))
        return scores


class Nilm:
    """Seq2point NILM models: one per appliance x architecture of the suite's workload."""

    kind = KIND

    def __init__(self, config: NilmWorkload, step: Step | None = None) -> None:
        self.config = config
        self.step = step or (lambda message: None)
        self._parts = {f"{appliance}_{arch}": (appliance, arch)
                       for appliance in config.appliances for arch in config.architectures}
        self._data: dict[str, NilmData] = {}

    def models(self) -> list[ModelSpec]:
        return [ModelSpec(name, workload=KIND) for name in self._parts]

    # -- keys ---------------------------------------------------------------------------------
    def _data_key(self, appliance: str) -> str:
        config = self.config
        return key_of("data", data_fingerprint(config, appliance), config.window,
                      config.training.max_eval_windows, code_version("workloads/nilm"))

    def model_key(self, spec: ModelSpec) -> str:
        appliance, arch = self._parts[spec.name]
        config = self._config(spec)
        return key_of("model", self._data_key(appliance), arch,
                      getattr(config, arch).model_dump(), config.training.model_dump(),
                      package_version("tensorflow-cpu", "tensorflow"))

    def _config(self, spec: ModelSpec) -> NilmWorkload:
        """The workload configuration with a variant's architecture options applied."""
        if "separable" in spec.options:
            return self.config.model_copy(
                update={"cnn": self.config.cnn.model_copy(update={"separable": True})})
        return self.config

    def model_options(self, spec: ModelSpec) -> tuple[str, ...]:
        _, arch = self._parts[spec.name]
        return ("separable",) if arch == "cnn" else ()

    def fine_tune(self, spec: ModelSpec, cache: Path) -> FineTune | None:
        """The training windows and their scaled power; the CNN's twin builder (the transformer
        has none: its optimisation variants are not applicable)."""
        from harness.workloads.nilm.models import CENTRE_HALF, GATE_SHARPNESS, on_power_floor

        appliance, arch = self._parts[spec.name]
        if arch != "cnn":
            return None
        train = self._prepared(appliance, cache).train
        cnn = self._config(spec).cnn
        return FineTune(np.asarray(train.x, dtype=np.float32),
                        np.asarray(train.y_scaled, dtype=np.float32).reshape(-1, 1),
                        "harness.workloads.nilm.twin:build_cnn_twin",
                        {"window": self.config.window, "filters": list(cnn.filters),
                         "kernel_size": cnn.kernel_size, "dense": cnn.dense,
                         "separable": cnn.separable, "floor": on_power_floor(appliance),
                         "centre_half": CENTRE_HALF, "gate_sharpness": GATE_SHARPNESS})

    # -- data ---------------------------------------------------------------------------------
    def _prepared(self, appliance: str, cache: Path) -> NilmData:
        if appliance not in self._data:
            self.step(f"preparing {appliance} data")
            self._data[appliance] = prepare(self.config, appliance, cache / "data")
        return self._data[appliance]

    def calibration(self, spec: ModelSpec, cache: Path) -> np.ndarray:
        appliance, _ = self._parts[spec.name]
        return np.asarray(self._prepared(appliance, cache).representative, dtype=np.float32)

    def evaluation(self, spec: ModelSpec, cache: Path) -> EvalData:
        """The held-out spans as one series (the device slides the window over it) and the true
        power of every prediction, written once per data key."""
        appliance, _ = self._parts[spec.name]
        folder = cache / "eval" / self._data_key(appliance)
        series, truth, meta = (folder / "test_series.npy", folder / "test_truth_w.npy",
                               folder / "meta.json")
        if not (series.is_file() and truth.is_file() and meta.is_file()):
            data = self._prepared(appliance, cache)
            write_npy(truth, data.test_truth_w())
            write_npy(series, data.test_series())
            write_json(meta, {"segments": data.segments,
                              "houses": [span.house for span in data.spans],
                              "requested": data.spans[0].requested})
        info = json.loads(meta.read_text())
        scorer = NilmScorer(appliance, float(params(appliance).max_power_w),
                            tuple(info["segments"]), tuple(info["houses"]), info["requested"],
                            self._training_file(spec, cache))
        return EvalData(series, sha256_file(series), truth, scorer, window=self.config.window,
                        max_seconds=self.config.evaluation.max_seconds)

    def _training_file(self, spec: ModelSpec, cache: Path) -> Path:
        """How the model of `spec` was trained (epochs run, best epoch), beside the cache."""
        return cache / "training" / f"{self.model_key(spec)}.json"

    # -- models -------------------------------------------------------------------------------
    def input_shape(self, spec: ModelSpec) -> tuple[int, ...]:
        return (self.config.window, 1)

    def register_layers(self) -> None:
        import harness.workloads.nilm.models  # noqa: F401 - registers the custom layers
        import harness.workloads.nilm.reference_models  # noqa: F401 - and the presets' layers

    def build_model(self, spec: ModelSpec, cache: Path) -> Any:
        """Train the model and return its artifact form: input (1, window, 1) -> scaled power."""
        from harness.workloads.nilm.models import build_model, export_model
        from harness.workloads.nilm.train import train

        appliance, arch = self._parts[spec.name]
        data = self._prepared(appliance, cache)
        self.step(f"training {spec.name}")

        val_losses: list[float] = []

        def epoch_done(epoch: int, epochs: int, logs: dict) -> None:
            val_losses.append(float(logs.get("val_loss", float("nan"))))
            self.step(f"training {spec.name}: epoch {epoch}/{epochs} "
                      f"val_loss {val_losses[-1]:.4f}")

        config = self._config(spec)
        model = train(config, appliance, arch, data, progress=epoch_done)
        write_json(self._training_file(spec, cache), {
            "epochs_run": len(val_losses), "epochs_max": config.training.epochs_for(arch),
            "best_epoch": int(np.nanargmin(val_losses)) + 1 if val_losses else None,
            "train_windows": int(len(data.train.x))})
        inference = build_model(arch, config, appliance=appliance)  # no loss/optimizer
        inference.set_weights(model.get_weights())
        return export_model(inference, config.window)

