"""The generic workload: the user's own models scored on the user's own data.

The suite names model files (.tflite measured as is; .keras or a SavedModel directory converted in
every variant and calibrated on the data's inputs) and one .npz file holding

    x   inputs, one sample per row of the first axis, shaped like the model input without its batch
        axis (converted to float32)
    y   ground truth, one per sample: class ids (N,) or one-hot rows (N, C) for `accuracy` and
        `top_k`; target values shaped like the model output for `mae` and `rmse`

and a metric:

    accuracy   share of samples whose highest output is the label (one output column: a
               probability of class 1, threshold 0.5)                            row `accuracy`
    top_k      share of samples whose label is among the k highest outputs   row `accuracy_top<k>`
    mae, rmse  mean absolute / root mean squared error of the outputs        rows `mae` / `rmse`
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.artifacts.cache import key_of, sha256_file, tree_sha256, write_npy
from harness.config.suite import GenericWorkload
from harness.errors import UserError
from harness.workloads.base import EvalData, ModelSpec, Score, Step, model_file, resolve

KIND = "generic"
INPUTS_KEY, LABELS_KEY = "x", "y"


@dataclass(frozen=True)
class GenericScorer:
    """Scores outputs against labels or targets with one of the generic metrics."""

    metric: str          # accuracy | top_k | mae | rmse
    k: int = 5
    unit: str = ""       # of the targets, for mae / rmse

    def score(self, outputs: np.ndarray, truth: np.ndarray) -> list[Score]:
        n = len(truth)
        outputs = np.asarray(outputs, dtype=np.float64).reshape(len(outputs), -1)
        if len(outputs) != n:
            raise ValueError(f"{len(outputs)} outputs for {n} labelled samples")
        if self.metric in ("mae", "rmse"):
            target = np.asarray(truth, dtype=np.float64).reshape(n, -1)
            if target.shape != outputs.shape:
                raise ValueError(f"outputs of shape {outputs.shape[1:]} per sample, targets of "
                                 f"shape {target.shape[1:]}")
            error = outputs - target
            value = (np.mean(np.abs(error)) if self.metric == "mae"
                     else np.sqrt(np.mean(np.square(error))))
            return [Score(self.metric, float(value), self.unit, n=n)]
        labels = class_ids(truth)
        if self.metric == "accuracy":
            predicted = (outputs[:, 0] > 0.5).astype(np.int64) if outputs.shape[1] == 1 \
                else np.argmax(outputs, axis=1)
            return [Score("accuracy", float(np.mean(predicted == labels)), "", n=n)]
        k = min(self.k, outputs.shape[1])
        top = np.argsort(-outputs, axis=1, kind="stable")[:, :k]
        hits = np.any(top == labels[:, np.newaxis], axis=1)
        return [Score(f"accuracy_top{self.k}", float(np.mean(hits)), "", n=n)]


def class_ids(truth: np.ndarray) -> np.ndarray:
    """Class ids from labels given as ids (N,) / (N, 1) or as one-hot rows (N, C)."""
    truth = np.asarray(truth)
    if truth.ndim == 2 and truth.shape[1] > 1:
        return np.argmax(truth, axis=1)
    return truth.reshape(len(truth)).astype(np.int64)


class Generic:
    """The user's model files, calibrated and scored on the user's .npz."""

    kind = KIND

    def __init__(self, config: GenericWorkload, suite_path: Path, step: Step | None = None) -> None:
        self.config = config
        self.step = step or (lambda message: None)
        self.data = resolve(config.data, suite_path)
        if self.data.suffix != ".npz" or not self.data.is_file():
            raise UserError(f"{suite_path}: workload.data: {self.data} is not an .npz file",
                            hint=f"save the inputs as `{INPUTS_KEY}` and the labels as "
                                 f"`{LABELS_KEY}` with numpy.savez")
        self._specs = [ModelSpec(entry.name, workload=KIND,
                                 file=model_file(entry.path, suite_path,
                                                 f"workload.models.{entry.name}.path"))
                       for entry in config.models]
        self._arrays: tuple[np.ndarray, np.ndarray] | None = None
        self._sha: str | None = None

    def models(self) -> list[ModelSpec]:
        return list(self._specs)

    def _data_sha(self) -> str:
        if self._sha is None:
            self._sha = sha256_file(self.data)
        return self._sha

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(inputs as float32, labels) from the .npz; a UserError naming the file and key."""
        if self._arrays is None:
            try:
                with np.load(self.data, allow_pickle=False) as npz:
                    missing = [k for k in (INPUTS_KEY, LABELS_KEY) if k not in npz.files]
                    if missing:
                        raise UserError(f"{self.data}: no array {missing[0]!r} (it has "
                                        f"{', '.join(npz.files) or 'none'})",
                                        hint=f"inputs go in `{INPUTS_KEY}`, labels in "
                                             f"`{LABELS_KEY}`")
                    x, y = npz[INPUTS_KEY], npz[LABELS_KEY]
            except (OSError, ValueError) as exc:
                raise UserError(f"{self.data}: not a readable .npz file ({exc})") from exc
            if x.ndim < 1 or len(x) == 0 or len(x) != len(y):
                raise UserError(f"{self.data}: `{INPUTS_KEY}` and `{LABELS_KEY}` need the same, "
                                f"non-zero number of samples (got {len(x)} and {len(y)})")
            try:
                x = np.asarray(x, dtype=np.float32)
            except (TypeError, ValueError) as exc:
                raise UserError(f"{self.data}: `{INPUTS_KEY}` is not numeric ({exc})") from exc
            self._arrays = (x, y)
        return self._arrays

    def model_key(self, spec: ModelSpec) -> str:
        assert spec.file is not None
        return key_of("generic", spec.name, tree_sha256(spec.file), self._data_sha(),
                      self.config.calibration_samples)

    def calibration(self, spec: ModelSpec, cache: Path) -> np.ndarray:
        """Up to `calibration_samples` inputs, evenly spaced over the data."""
        x, _ = self.arrays()
        picks = np.unique(np.linspace(0, len(x) - 1, min(len(x), self.config.calibration_samples))
                          .round().astype(np.int64))
        return x[picks]

    def evaluation(self, spec: ModelSpec, cache: Path) -> EvalData:
        """Every sample of the data, written once per data hash."""
        folder = cache / "eval" / key_of("generic", self._data_sha())
        inputs, truth = folder / "inputs.npy", folder / "truth.npy"
        if not (inputs.is_file() and truth.is_file()):
            x, y = self.arrays()
            write_npy(truth, y)
            write_npy(inputs, x)
        scorer = GenericScorer(self.config.metric, self.config.k, self.config.unit)
        return EvalData(inputs, sha256_file(inputs), truth, scorer)

    def input_shape(self, spec: ModelSpec) -> None:
        return None

    def register_layers(self) -> None:
        return None

    def build_model(self, spec: ModelSpec, cache: Path) -> Any:
        raise TypeError(f"{spec.name}: the generic workload builds no models, it uses files")

    def model_options(self, spec: ModelSpec) -> tuple[str, ...]:
        return ()  # a user's model file has no architecture options

    def fine_tune(self, spec: ModelSpec, cache: Path) -> None:
        return None  # no architecture to rebuild: prune, cluster and qat do not apply
