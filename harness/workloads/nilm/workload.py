"""The NILM workload behind the `Workload` seam: seq2point models trained per appliance and
architecture on REFIT-format data, calibrated on balanced training windows, scored with the NILM
metrics on held-out houses.

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
from harness.workloads.nilm.appliances import params
from harness.workloads.nilm.dataset import NilmData, data_fingerprint, prepare
from harness.workloads.nilm.metrics import metric_units, nilm_metrics

KIND = "nilm"


@dataclass(frozen=True)
class NilmScorer:
    """NILM metrics of a model's scaled power outputs against the true appliance power (W)."""

    appliance: str
    max_power_w: float
    sample_seconds: float  # spacing of consecutive test windows, for energy metrics

    def score(self, outputs: np.ndarray, truth: np.ndarray) -> list[Score]:
        predicted = np.asarray(outputs).reshape(-1) * self.max_power_w
        truth = np.asarray(truth).reshape(-1)
        metrics = nilm_metrics(np.clip(predicted, 0, None), truth, self.appliance,
                               self.sample_seconds)
        units = metric_units()
        return [Score(name, value, units.get(name, ""), n=len(truth), key=self.appliance)
                for name, value in metrics.items()]


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
                         "separable": cnn.separable})

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
        """The test windows and their true power, written once per data key."""
        appliance, _ = self._parts[spec.name]
        folder = cache / "eval" / self._data_key(appliance)
        inputs, truth, meta = (folder / "test_inputs.npy", folder / "test_truth_w.npy",
                               folder / "meta.json")
        if not (inputs.is_file() and truth.is_file() and meta.is_file()):
            data = self._prepared(appliance, cache)
            write_npy(truth, np.asarray(data.test_targets_w, dtype=np.float32))
            write_npy(inputs, np.asarray(data.test_inputs, dtype=np.float32))
            write_json(meta, {"sample_seconds": data.test_sample_seconds})
        scorer = NilmScorer(appliance, float(params(appliance).max_power_w),
                            float(json.loads(meta.read_text())["sample_seconds"]))
        return EvalData(inputs, sha256_file(inputs), truth, scorer)

    # -- models -------------------------------------------------------------------------------
    def input_shape(self, spec: ModelSpec) -> tuple[int, ...]:
        return (self.config.window, 1)

    def register_layers(self) -> None:
        import harness.workloads.nilm.models  # noqa: F401 - registers the custom layers

    def build_model(self, spec: ModelSpec, cache: Path) -> Any:
        """Train the model and return its artifact form: input (1, window, 1) -> scaled power."""
        from harness.workloads.nilm.models import build_model, export_model
        from harness.workloads.nilm.train import train

        appliance, arch = self._parts[spec.name]
        data = self._prepared(appliance, cache)
        self.step(f"training {spec.name}")

        def epoch_done(epoch: int, epochs: int, logs: dict) -> None:
            self.step(f"training {spec.name}: epoch {epoch}/{epochs} "
                      f"val_loss {logs.get('val_loss', float('nan')):.4f}")

        config = self._config(spec)
        model = train(config, appliance, arch, data, progress=epoch_done)
        inference = build_model(arch, config)  # same weights, no training loss/optimizer
        inference.set_weights(model.get_weights())
        return export_model(inference, config.window)

