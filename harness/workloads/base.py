"""The workload seam: what a workload gives the artifact builder and the accuracy rows.

A workload provides models (Keras models it builds, or model files the user brings), calibration
data (the representative dataset of the full-integer modes), evaluation inputs with their ground
truth, and the metrics that score the outputs a device produced. The artifact builder converts,
quantizes, compiles and caches; it knows no workload. `harness.workloads.open_workload` picks the
implementation named by the suite's `workload.kind`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np

from harness.errors import UserError

Step = Callable[[str], None]   # progress messages ("preparing kettle data", ...)
MODEL_SUFFIXES = (".tflite", ".keras")


@dataclass(frozen=True)
class ModelSpec:
    """One model of a suite.

    `file` is a model the user brings (.tflite measured as is; .keras or a SavedModel directory
    converted in every variant); None for a model the workload builds. `workload` is the kind of
    the workload that calibrates and scores it, None for a bare file of the suite's `models:`.
    """

    name: str
    file: Path | None = None
    workload: str | None = None
    options: tuple[str, ...] = ()  # architecture options asked for by a variant (`separable`)


@dataclass(frozen=True)
class Score:
    """One accuracy value: an accuracy row's metric, value and unit ('' = dimensionless)."""

    metric: str
    value: float
    unit: str = ""
    n: int | None = None       # how many samples it was computed over
    key: str | None = None     # a sub-key (the appliance of a NILM model, ...)


class Scorer(Protocol):
    """Scores the outputs a device produced against the ground truth (controller-side)."""

    def score(self, outputs: np.ndarray, truth: np.ndarray) -> list[Score]:
        """`outputs`: one row per evaluation input, as the runner wrote them (float)."""
        ...


@dataclass(frozen=True)
class FineTune:
    """What an optimisation variant (prune, cluster, qat) fine-tunes with: training inputs `x` and
    the targets `y` of the artifact model's output, and the artifact model's architecture as a
    builder any Keras (Keras 3 or tf-keras, in a process of its own) can run by name:
    `module:function(keras_module, batch_size, **kwargs, conv2d=...)`, layers named as in the
    artifact model."""

    x: np.ndarray
    y: np.ndarray
    builder: str
    kwargs: dict = field(default_factory=dict)

    def build(self, keras_module: Any, batch_size: int | None, **extra: Any) -> Any:
        """The architecture built with `keras_module` (untrained)."""
        module, _, function = self.builder.partition(":")
        return getattr(importlib.import_module(module), function)(
            keras_module, batch_size, **self.kwargs, **extra)


@dataclass(frozen=True)
class EvalData:
    """Held-out data for accuracy: the inputs go to the device, the ground truth and the scorer
    stay on the controller."""

    inputs: Path          # .npy, float32, one evaluation input per row of the first axis
    inputs_sha256: str
    truth: Path           # .npy, the ground truth of each input, in the same order
    scorer: Scorer
    # set: `inputs` is one 1-D series instead (NaN between spans); the device slides a window of
    # this many samples over it, one output per NaN-free start, and refuses a slide it estimates
    # longer than `max_seconds`
    window: int | None = None
    max_seconds: float | None = None

    def score(self, outputs: np.ndarray) -> list[Score]:
        return self.scorer.score(outputs, np.load(self.truth))

    def middle_input(self) -> np.ndarray:
        """One model input (float32) from the middle of the evaluation inputs."""
        data = np.load(self.inputs, mmap_mode="r")
        if self.window is None:
            return np.asarray(data[len(data) // 2], dtype=np.float32)
        start = max(0, (len(data) - self.window) // 2)
        return np.nan_to_num(np.asarray(data[start:start + self.window], dtype=np.float32))


class Workload(Protocol):
    """What a suite's `workload:` section provides (see the module docstring)."""

    kind: str

    def models(self) -> list[ModelSpec]:
        """The models of the workload, in order."""
        ...

    def model_key(self, spec: ModelSpec) -> str:
        """Content key of a model with its calibration data: a new key means a new artifact."""
        ...

    def build_model(self, spec: ModelSpec, cache: Path) -> Any:
        """The Keras model of a spec without a file (trained if the workload trains it)."""
        ...

    def register_layers(self) -> None:
        """Make the workload's custom Keras layers loadable (before a saved model is loaded)."""
        ...

    def input_shape(self, spec: ModelSpec) -> tuple[int, ...] | None:
        """Input shape without the batch axis, for the batch-1 export; None: the model's own."""
        ...

    def calibration(self, spec: ModelSpec, cache: Path) -> np.ndarray | None:
        """Representative inputs (N, ...) float32 for the full-integer modes, or None."""
        ...

    def evaluation(self, spec: ModelSpec, cache: Path) -> EvalData | None:
        """Evaluation inputs, ground truth and scorer of a model; None if it is not scored."""
        ...

    def model_options(self, spec: ModelSpec) -> tuple[str, ...]:
        """The architecture options a variant may ask of this model (`separable`)."""
        ...

    def fine_tune(self, spec: ModelSpec, cache: Path) -> FineTune | None:
        """Training data and architecture for the optimisation variants; None: not supported."""
        ...


def model_file(path: str, suite_path: Path, field: str) -> Path:
    """A model file named in a suite (relative to the suite file); a UserError naming the field
    when it does not exist or is not a .tflite file, a .keras file or a SavedModel directory."""
    resolved = resolve(path, suite_path)
    if not resolved.exists():
        raise UserError(f"{suite_path}: {field}: {resolved} does not exist")
    if not (resolved.suffix in MODEL_SUFFIXES or (resolved / "saved_model.pb").is_file()):
        raise UserError(f"{suite_path}: {field}: {resolved} is not a .tflite file, "
                        "a .keras file or a SavedModel directory")
    return resolved


def resolve(path: str, suite_path: Path) -> Path:
    """A path from a suite file: absolute, or relative to the suite file's folder."""
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else suite_path.parent / candidate
