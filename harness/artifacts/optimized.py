"""The optimisation variants (harness/config/variants.py): the steps of a `VariantPlan` from the
workload's model to a .tflite, for the builder.

`separable` asks the workload for the model with that architecture option (trained on its own);
`prune<P>` fine-tunes the Keras 3 model with a magnitude-pruning mask (harness/artifacts/pruning.py,
in the builder's process, where training runs); `cluster<K>` and `qat` run in the tf-keras
process (harness/artifacts/legacy_keras.py), which also converts; otherwise the converter
process converts in the plan's mode; `w4` then quantizes the float .tflite's weights to int4
(harness/artifacts/int4.py). A model the workload cannot rebuild for a fine-tune (a user's file,
the transformer) or without the architecture option makes the variant `not_applicable`.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import fileio
from harness.artifacts.cache import code_version, key_of, package_version
from harness.artifacts.convert import ConversionError
from harness.config.variants import VariantPlan
from harness.errors import ErrorKind
from harness.workloads import ModelSpec

if TYPE_CHECKING:
    from harness.artifacts.build import Builder

CODE = ("artifacts/optimized.py", "artifacts/pruning.py", "artifacts/keras_weights.py",
        "artifacts/legacy_keras.py", "artifacts/legacy_worker.py", "artifacts/int4.py",
        "config/variants.py", "workloads/nilm/twin.py")
TOOLS = ("tensorflow-model-optimization", "tf-keras", "ai-edge-quantizer")


def cache_parts(builder: "Builder") -> list[Any]:
    """What an optimisation variant's artifact depends on beyond a plain conversion's key."""
    return [code_version(*CODE), builder.suite.optimize.model_dump(),
            [package_version(tool) for tool in TOOLS]]


def optimized_spec(builder: "Builder", spec: ModelSpec, plan: VariantPlan) -> ModelSpec:
    """The model a plan starts from (with its architecture option); not_applicable when the
    workload does not offer the option."""
    if not plan.separable:
        return spec
    workload = builder.workload if spec.workload is not None else None
    if workload is None or "separable" not in workload.model_options(spec):
        raise ConversionError(f"{plan.name}: {spec.name} has no separable form (an option of "
                              "the workload's CNN)", kind=ErrorKind.NOT_APPLICABLE)
    return replace(spec, options=("separable",))


def build_optimized(builder: "Builder", spec: ModelSpec, plan: VariantPlan) -> bytes:
    """The .tflite bytes of one optimisation variant of `spec`."""
    from harness.artifacts.convert import export_batch1
    from harness.artifacts.int4 import int4_weights

    spec = optimized_spec(builder, spec, plan)
    workload = builder.workload if spec.workload is not None else None
    fine = None
    if plan.prune or plan.legacy_keras:
        fine = workload.fine_tune(spec, builder.cache) if workload is not None else None
        if fine is None:
            raise ConversionError(f"{plan.name}: {spec.name} cannot be fine-tuned (its "
                                  "workload does not rebuild its architecture)",
                                  kind=ErrorKind.NOT_APPLICABLE)
    model_key = builder._model_key(spec)
    keras_path = builder._keras_model(spec, model_key)
    if workload is not None:
        workload.register_layers()
    if plan.prune:
        assert fine is not None
        keras_path, model_key = _pruned(builder, spec, keras_path, model_key, fine, plan.prune)
    representative = builder._calibration(spec)
    if plan.legacy_keras:
        import keras

        from harness.artifacts.keras_weights import named_weights, to_npz
        from harness.artifacts.legacy_keras import legacy_convert

        assert fine is not None
        builder.step(f"{plan.name}: fine-tuning {spec.name} (tf-keras)")
        weights = to_npz(named_weights(keras.models.load_model(keras_path, compile=False)))
        data = legacy_convert(weights, fine, plan, builder.suite.optimize, representative,
                              builder.cache / "tflite" / "legacy")
    else:
        shape = workload.input_shape(spec) if workload is not None else None
        saved = export_batch1(keras_path, builder.cache / "models" / model_key / "saved_model",
                              shape)
        builder.step(f"converting {spec.name} {plan.name}")
        data = builder._run("convert", saved, plan.mode, representative)
    if plan.w4:
        builder.step(f"int4 weights {spec.name} {plan.name}")
        data = int4_weights(data)
    return data


def _pruned(builder: "Builder", spec: ModelSpec, keras_path: Path, model_key: str, fine: Any,
            percent: int) -> tuple[Path, str]:
    """The pruned Keras model (cached beside the trained ones) and its model key."""
    from harness.artifacts.pruning import prune_keras_model

    optimize = builder.suite.optimize
    key = key_of("pruned", model_key, percent, optimize.model_dump(),
                 code_version("artifacts/pruning.py", "artifacts/keras_weights.py",
                              "workloads/nilm/twin.py"))
    path = builder.cache / "models" / key / "model.keras"
    if not path.is_file():
        builder.step(f"prune{percent}: fine-tuning {spec.name}")
        work = fileio.temp_dir_beside(path)
        try:
            prune_keras_model(keras_path, work / path.name, fine, percent, optimize)
            (work / path.name).replace(path)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        builder._count(built=1)
    return path, key
