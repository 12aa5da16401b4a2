"""Suite definitions: which models, which quantization variants, which measurements."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, Discriminator, Field, Tag, model_validator

from harness.config.inventory import NAME_RE, Strict
from harness.config.loader import load
from harness.config.variants import check_variant

# a converter mode, optimisation steps, or both joined by + (harness/config/variants.py)
Variant = Annotated[str, AfterValidator(check_variant)]
ALL_VARIANTS: tuple[str, ...] = ("convert_only", "w8", "w8_a8", "w8_a16", "f16")
Appliance = Literal["kettle", "microwave", "fridge", "dishwasher", "washing_machine"]
Architecture = Literal["cnn", "transformer"]


class Houses(Strict):
    train: list[int] = Field(min_length=1)
    val: list[int] = Field(min_length=1)
    test: list[int] = Field(min_length=1)


class Dataset(Strict):
    """Where the NILM data comes from: the seeded synthetic generator or a folder of REFIT CSVs."""

    source: Literal["synthetic", "refit"] = "synthetic"
    path: str | None = Field(None, description="folder of CLEAN_House{N}.csv (source: refit)")
    houses: Houses = Houses(train=[1, 2, 3, 4], val=[5], test=[6])
    days: float = Field(12.0, gt=0, description="days per synthetic house")
    seed: int = 0
    channels: dict[Appliance, dict[int, int]] | None = Field(
        None, description="appliance -> {house: N of ApplianceN}; overrides the REFIT mapping "
                          "(source: refit) or the synthetic layout (source: synthetic)")

    @model_validator(mode="after")
    def _path_for_refit(self) -> "Dataset":
        if self.source == "refit" and not self.path:
            raise ValueError("source: refit needs path: a folder of CLEAN_House{N}.csv files")
        return self


Epochs = Annotated[int, Field(ge=1)]


class Training(Strict):
    epochs: Epochs | dict[Architecture, Epochs] = Field(
        16, description="training epochs (early stopping may end sooner); a mapping gives each "
                        "architecture its own, e.g. {cnn: 10, transformer: 16}")
    batch_size: int = Field(64, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    patience: int = Field(4, ge=1)
    max_train_windows: int = Field(8000, ge=100)
    max_eval_windows: int = Field(5400, ge=10, description="validation windows")
    window_stride: int = Field(1, ge=1)
    on_fraction: float = Field(0.3, ge=0, le=1,
                               description="share of training windows with the appliance on")
    calibration_windows: int = Field(200, ge=2, description="balanced representative dataset")
    seed: int = 0

    def epochs_for(self, arch: str) -> int:
        """The epoch budget of architecture `arch` (ValueError naming the field if unset)."""
        if isinstance(self.epochs, int):
            return self.epochs
        if arch not in self.epochs:
            raise ValueError(f"training.epochs has no entry for {arch!r}: give every "
                             f"architecture of the suite one, or one number")
        return self.epochs[arch]


class Evaluation(Strict):
    """Contiguous evaluation: one gap-free span per held-out house, a prediction at every sample."""

    days: float = Field(3.0, gt=0, description="span per test house in days (10,800 predictions "
                                               "a day at 8 s per sample)")
    offset_days: float = Field(0.0, ge=0, description="the span starts this long after the start "
                                                      "of the house's recording")
    max_seconds: float = Field(300.0, gt=0,
                               description="the device refuses (up front, from a quick timing) "
                                           "a model whose span would take longer than this")


def _preset_alone(spec: Strict, preset: str | None) -> None:
    """A preset fixes the architecture: the size fields must not be given with it."""
    given = spec.model_fields_set - {"preset"}
    if preset is not None and given:
        raise ValueError(f"preset {preset!r} fixes the architecture; drop {sorted(given)}")


class CnnSpec(Strict):
    """The seq2point CNN: the small default, or `preset: seq2point-reference` (the NILM reference
    project's `cnn()`, ~10.6 M parameters; see harness/workloads/nilm/reference_models.py)."""

    preset: Literal["seq2point-reference"] | None = None
    filters: list[int] = Field(default_factory=lambda: [16, 16, 32, 32], min_length=1)
    kernel_size: int = Field(5, ge=1)
    dense: int = Field(64, ge=1)
    separable: bool = Field(False, description="SeparableConv1D instead of Conv1D")

    @model_validator(mode="after")
    def _preset(self) -> "CnnSpec":
        _preset_alone(self, self.preset)
        return self


class TransformerSpec(Strict):
    """The seq2point transformer: the small default, or `preset: nilm-transformer-reference` (the
    NILM reference project's transformer, d_model 256, ~1.6 M parameters)."""

    preset: Literal["nilm-transformer-reference"] | None = None
    d_model: int = Field(32, ge=4)
    heads: int = Field(2, ge=1)
    layers: int = Field(2, ge=1)
    ff: int = Field(64, ge=4)
    stride: int = Field(8, ge=1, description="conv front end downsampling")

    @model_validator(mode="after")
    def _preset(self) -> "TransformerSpec":
        _preset_alone(self, self.preset)
        return self


class ModelFile(Strict):
    """A model the user brings: a .tflite used as is, or a .keras file / SavedModel dir to convert."""

    name: str
    path: str

    @model_validator(mode="after")
    def _name(self) -> "ModelFile":
        if not NAME_RE.match(self.name):
            raise ValueError(f"model name {self.name!r}: letters, digits, _ . - only")
        return self


class NilmWorkload(Strict):
    """Seq2point NILM models trained on REFIT-format data (window 599, midpoint target)."""

    kind: Literal["nilm"] = "nilm"
    appliances: list[Appliance] = Field(min_length=1)
    architectures: list[Architecture] = Field(default_factory=lambda: ["cnn", "transformer"],
                                              min_length=1)
    window: int = Field(599, ge=3)
    dataset: Dataset = Dataset()
    training: Training = Training()
    evaluation: Evaluation = Evaluation()
    cnn: CnnSpec = CnnSpec()
    transformer: TransformerSpec = TransformerSpec()

    @model_validator(mode="after")
    def _epochs_per_architecture(self) -> "NilmWorkload":
        for arch in self.architectures:
            self.training.epochs_for(arch)   # a mapping must name every architecture
        return self


class GenericWorkload(Strict):
    """The user's models scored on the user's data (harness/workloads/generic.py).

    `data` is an .npz with `x` (inputs, one sample per row) and `y` (labels: class ids or one-hot
    rows for accuracy / top_k, target values for mae / rmse). A .keras model is converted in every
    variant, calibrated on `x`; a .tflite model is measured as is.
    """

    kind: Literal["generic"]
    models: list[ModelFile] = Field(min_length=1, description="model files: .tflite or .keras")
    data: str = Field(description=".npz with `x` (inputs) and `y` (labels or targets)")
    metric: Literal["accuracy", "top_k", "mae", "rmse"] = "accuracy"
    k: int = Field(5, ge=1, description="top_k: a sample counts when its label is among the k "
                                        "highest outputs")
    unit: str = Field("", description="unit of the targets (mae, rmse)")
    calibration_samples: int = Field(200, ge=1, description="inputs of `x` (evenly spaced) used as "
                                                            "the representative dataset")


def _workload_kind(value: Any) -> str | None:
    """The `kind` of a workload section; `nilm` when it is left out."""
    if isinstance(value, dict):
        return value.get("kind", "nilm")
    return getattr(value, "kind", None)


WorkloadSection = Annotated[
    Union[Annotated[NilmWorkload, Tag("nilm")], Annotated[GenericWorkload, Tag("generic")]],
    Discriminator(_workload_kind, custom_error_type="workload_kind",
                  custom_error_message="unknown workload kind: use nilm or generic")]


class LatencySpec(Strict):
    threads: list[int] = Field(default_factory=lambda: [1], min_length=1)
    warmup_runs: int = Field(10, ge=0)
    warmup_seconds: float = Field(0.5, ge=0)
    runs: int = Field(50, ge=1)
    min_seconds: float = Field(1.0, ge=0)
    rounds: int = Field(5, ge=1, description="thread configurations interleaved in this many rounds")

    @model_validator(mode="after")
    def _threads(self) -> "LatencySpec":
        for t in self.threads:
            if t < 1:
                raise ValueError(f"thread count {t} is not allowed: use 1 or more")
        return self


class ProfileSpec(Strict):
    """Per-operator profiling: benchmark_model where the target has it, else op-split in the runner."""

    method: Literal["auto", "op_split", "benchmark_model"] = "auto"
    threads: int = Field(1, ge=1)
    warmup_runs: int = Field(5, ge=0)
    warmup_seconds: float = Field(0.1, ge=0)
    runs: int = Field(20, ge=1)
    min_seconds: float = Field(0.2, ge=0)
    rounds: int = Field(5, ge=1)
    models: list[str] | None = Field(None, description="profile only these models (default: all)")


class QuantErrorSpec(Strict):
    """QuantizationDebugger statistics of the full-integer modes (needs a workload's calibration)."""

    threshold: float = Field(0.7, gt=0, description="RMSE/scale above which a layer is suspected")
    denylist_variant: bool = Field(False, description="also build <mode>_denylist with the "
                                                      "suspected layers kept in float")


class OptimizeSpec(Strict):
    """The fine-tune of the optimisation variants (prune<P>, cluster<K>, qat)."""

    epochs: int = Field(2, ge=1, description="fine-tune epochs per optimisation step")
    batch_size: int = Field(64, ge=1)
    learning_rate: float = Field(1e-4, gt=0)
    max_windows: int = Field(4000, ge=10, description="training inputs used by a fine-tune")
    prune_schedule: Literal["constant", "polynomial"] = Field(
        "polynomial", description="sparsity from the start (constant) or rising to the target "
                                  "over the first half of the fine-tune (polynomial)")
    seed: int = 0


class Measurements(Strict):
    latency: LatencySpec | None = LatencySpec()
    accuracy: bool = False
    memory: bool = False
    profile: ProfileSpec | None = None
    quant_error: QuantErrorSpec | None = None


class RegressionSpec(Strict):
    """How a run is judged against its baseline beyond the stored numbers: the A/B latency
    re-measurement (docs/nightly.md). The thresholds themselves are the suite's `thresholds:`."""

    ab: Literal["auto", "all", "off"] = Field(
        "auto", description="auto: re-measure the suspect latency rows plus a rotating sample; "
                            "all: every latency median row; off: none (CLI --ab / --no-ab)")
    ab_budget_seconds: float = Field(300, gt=0, description="wall time for the whole A/B "
                                                            "re-measurement of a run")
    ab_max_rows: int = Field(20, ge=1, description="latency series A/B-tested per run at most "
                                                   "(the rest: `?`, not A/B-tested: budget)")
    ab_sample_rows: int = Field(2, ge=0, description="of these, series that stored runs call "
                                                     "unchanged, in rotation from night to night")
    ab_looks: list[int] | None = Field(None, min_length=1,
                                       description="pair counts of the sequential looks; the last "
                                                   "is each series' budget (default 6, 10, 15, "
                                                   "20, 30, 40, 50)")

    @model_validator(mode="after")
    def _looks(self) -> "RegressionSpec":
        looks = self.ab_looks
        if looks is not None and (looks != sorted(set(looks)) or looks[0] < 3):
            raise ValueError(f"ab_looks must be strictly increasing pair counts >= 3, got {looks}")
        return self


class Suite(Strict):
    """One suite file."""

    name: str
    description: str | None = None
    workload: WorkloadSection | None = None
    models: list[ModelFile] = Field(default_factory=list)
    variants: list[Variant] = Field(default_factory=lambda: list(ALL_VARIANTS), min_length=1)
    optimize: OptimizeSpec = OptimizeSpec()
    measurements: Measurements = Measurements()
    thresholds: dict[str, float] = Field(default_factory=dict,
                                         description="regression thresholds per metric")
    regression: RegressionSpec = RegressionSpec()

    @model_validator(mode="after")
    def _has_models(self) -> "Suite":
        if self.workload is None and not self.models:
            raise ValueError("a suite needs a workload: section or a models: list")
        if not NAME_RE.match(self.name):
            raise ValueError(f"suite name {self.name!r}: letters, digits, _ . - only")
        return self


def load_suite(path: Path) -> Suite:
    """Read and validate a suite file."""
    return load(Suite, path, "suite")
