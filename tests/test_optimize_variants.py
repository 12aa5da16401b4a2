"""The optimisation variants: names, the pruning mask, the architecture twin, and (slow) every
variant built through the real builder from a tiny trained NILM CNN, checked from the .tflite
file itself and run on ai_edge_litert."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.config.suite import load_suite
from harness.config.variants import MODES, parse_variant
from harness.errors import ErrorKind, UserError

TINY_WORKLOAD = {
    "kind": "nilm", "appliances": ["kettle"], "architectures": ["cnn"], "window": 31,
    "dataset": {"houses": {"train": [1], "val": [2], "test": [3]}, "days": 1},
    "training": {"epochs": 1, "batch_size": 64, "max_train_windows": 300,
                 "max_eval_windows": 60, "calibration_windows": 16},
    "cnn": {"filters": [4, 8], "kernel_size": 3, "dense": 8}}
VARIANTS = ["convert_only", "prune50", "prune75", "cluster16", "qat", "w4", "w8_a8_fallback",
            "separable", "prune50+qat"]


# --------------------------------------------------------------------------- names

@pytest.mark.parametrize("name, expected", [
    ("w8_a8", dict(mode="w8_a8")),
    ("w8_a8_fallback", dict(mode="w8_a8_fallback")),
    ("prune50", dict(mode="convert_only", prune=50)),
    ("prune75+w8_a8", dict(mode="w8_a8", prune=75)),
    ("cluster16", dict(mode="w8_a8", cluster=16)),
    ("qat", dict(mode="w8_a8", qat=True)),
    ("prune50+qat", dict(mode="w8_a8", prune=50, qat=True)),
    ("w4", dict(mode="convert_only", w4=True)),
    ("separable", dict(mode="convert_only", separable=True)),
    ("separable+w8_a8", dict(mode="w8_a8", separable=True)),
])
def test_variant_names_parse_into_plans(name, expected):
    plan = parse_variant(name)
    assert plan.name == name
    for field in ("mode", "prune", "cluster", "qat", "w4", "separable"):
        default = {"prune": None, "cluster": None}.get(field, False)
        assert getattr(plan, field) == expected.get(field, default), field
    assert plan.plain == (name in MODES)


@pytest.mark.parametrize("name, words", [
    ("w9", "unknown variant"), ("prune0", "1..99"), ("prune100", "1..99"),
    ("cluster1", "2..256"), ("w8+w8_a8", "two converter modes"), ("qat+f16", "full integer"),
    ("w4+w8_a8", "int4"), ("w4+qat", "choose one"), ("prune50+prune50", "twice"),
])
def test_bad_variant_names_are_refused(name, words):
    with pytest.raises(ValueError, match=words):
        parse_variant(name)


def test_a_bad_variant_in_a_suite_is_a_user_error_naming_the_field(tmp_path):
    suite = tmp_path / "s.yaml"
    suite.write_text("name: s\nworkload: {kind: nilm, appliances: [kettle]}\n"
                     "variants: [w8_a8, prune50+f16+w8]\n")
    with pytest.raises(UserError, match=r"variants.*two converter modes"):
        load_suite(suite)
    suite.write_text("name: s\nworkload: {kind: nilm, appliances: [kettle]}\n"
                     "variants: [w8_a8, prune50+qat, cluster16, w4, separable]\n")
    assert load_suite(suite).variants == ["w8_a8", "prune50+qat", "cluster16", "w4", "separable"]


def test_the_optimize_suite_loads():
    suite = load_suite(Path(__file__).resolve().parent.parent / "suites" / "optimize.yaml")
    assert {"prune50", "prune75", "cluster16", "qat", "w4", "w8_a8_fallback",
            "separable"} <= set(suite.variants)


# --------------------------------------------------------------------------- pruning mask

def test_magnitude_mask_zeroes_exactly_the_smallest():
    from harness.artifacts.pruning import magnitude_mask, scheduled_sparsity

    weights = np.array([[0.5, -0.1], [0.05, -2.0], [0.3, 0.0]])
    mask = magnitude_mask(weights, 0.5)
    assert mask.tolist() == [[1, 0], [0, 1], [1, 0]]
    assert magnitude_mask(weights, 0.0).all()
    assert scheduled_sparsity(0, 0.8, "polynomial", 100) == 0.0
    assert scheduled_sparsity(50, 0.8, "polynomial", 100) == pytest.approx(0.8 * (1 - 0.5 ** 3))
    assert scheduled_sparsity(100, 0.8, "polynomial", 100) == 0.8
    assert scheduled_sparsity(0, 0.8, "constant", 100) == 0.8


@pytest.mark.slow  # builds Keras models (TensorFlow)
@pytest.mark.parametrize("schedule", ["constant", "polynomial"])
def test_pruning_callback_holds_the_sparsity_it_claims(schedule):
    import keras

    from harness.artifacts.pruning import kernel_variables, magnitude_pruning, scheduled_sparsity

    keras.utils.set_random_seed(0)
    inputs = keras.Input((12,))
    model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Dense(16)(inputs)))
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    pruning = magnitude_pruning(0.6, schedule, end_step=8, frequency=1)
    seen: list[tuple[int, float]] = []

    def after_batch(batch, logs):  # runs after the pruning callback in the same batch
        kernels = [v.numpy() for v in kernel_variables(model)]
        zeros = sum(int((k == 0).sum()) for k in kernels) / sum(k.size for k in kernels)
        seen.append((pruning.step, zeros))

    rng = np.random.default_rng(0)
    model.fit(rng.standard_normal((256, 12)), rng.standard_normal((256, 1)), batch_size=16,
              epochs=1, verbose=0, callbacks=[pruning, keras.callbacks.LambdaCallback(
                  on_train_batch_end=after_batch)])
    assert len(kernel_variables(model)) == 2  # kernels, never biases
    for step, zeros in seen:
        assert zeros >= scheduled_sparsity(step, 0.6, schedule, 8) - 0.02, (step, zeros)
    for variable in kernel_variables(model):  # 12x16 and 16x1 kernels: round(0.6 * size)
        kernel = variable.numpy()
        assert int((kernel == 0).sum()) == round(0.6 * kernel.size)
    assert any(b.numpy().any() for b in model.trainable_weights
               if b.name.endswith("bias"))


# --------------------------------------------------------------------------- the twin

@pytest.mark.slow  # builds Keras models (TensorFlow)
@pytest.mark.parametrize("separable, appliance", [(False, "kettle"), (True, "kettle"),
                                                  (False, "dishwasher")])   # with a power floor
def test_twin_computes_what_the_export_model_computes(separable, appliance):
    import keras

    from harness.artifacts.keras_weights import named_weights, set_named_weights
    from harness.config.suite import NilmWorkload
    from harness.workloads.nilm.models import (CENTRE_HALF, GATE_SHARPNESS, build_model,
                                               export_model, on_power_floor)
    from harness.workloads.nilm.twin import build_cnn_twin

    workload = NilmWorkload(**{**TINY_WORKLOAD, "cnn": {**TINY_WORKLOAD["cnn"],
                                                        "separable": separable}})
    keras.utils.set_random_seed(1)
    exported = export_model(build_model("cnn", workload, appliance=appliance), workload.window)
    x = np.random.default_rng(1).standard_normal((3, workload.window, 1)).astype(np.float32)
    expected = np.concatenate([exported(x[i:i + 1]).numpy() for i in range(3)])
    kwargs = dict(window=workload.window, filters=workload.cnn.filters,
                  kernel_size=workload.cnn.kernel_size, dense=workload.cnn.dense,
                  separable=separable, floor=on_power_floor(appliance), centre_half=CENTRE_HALF,
                  gate_sharpness=GATE_SHARPNESS)
    assert (on_power_floor(appliance) > 0) == (appliance == "dishwasher")
    for conv2d in (False, True):
        twin = build_cnn_twin(keras, None, conv2d=conv2d, **kwargs)
        set_named_weights(twin, named_weights(exported))
        np.testing.assert_allclose(twin(x).numpy(), expected, rtol=1e-4, atol=1e-5)
    wrong = build_cnn_twin(keras, None, **{**kwargs, "dense": 4})
    with pytest.raises(ValueError, match="head"):
        set_named_weights(wrong, named_weights(exported))


# --------------------------------------------------------------------------- rows and policy

def test_weight_rows_and_their_policies(tiny_models):
    from harness.compare import default_policy
    from harness.results.profile_rows import size_rows

    rows = {r["metric"]: r for r in size_rows(tiny_models["w8_a8"], {"variant": "cluster4"})}
    assert 0 < rows["gzip_bytes"]["value"] < rows["size_bytes"]["value"]
    assert 0 <= rows["weight_sparsity"]["value"] < 0.1
    assert rows["int4_tensors"]["value"] == 0
    assert 1 < rows["distinct_weights_max"]["value"] <= 256  # int8 kernels
    assert rows["distinct_weights"]["key"]  # per kernel, keyed by tensor name
    plain = {r["metric"] for r in size_rows(tiny_models["w8_a8"], {"variant": "w8_a8"})}
    assert "distinct_weights_max" not in plain and "weight_sparsity" in plain
    assert default_policy("size", "weight_sparsity").higher_is_better
    assert default_policy("size", "int4_tensors").higher_is_better
    assert not default_policy("size", "distinct_weights_max").higher_is_better
    assert all(default_policy("size", m).counts for m in ("gzip_bytes", "weight_sparsity",
                                                          "int4_tensors", "distinct_weights"))


# --------------------------------------------------------------------------- real builds

def _run_on_litert(path: Path, window: int) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    assert detail["dtype"] == np.float32 and tuple(detail["shape"]) == (1, window, 1)
    x = np.random.default_rng(2).standard_normal((1, window, 1)).astype(np.float32)
    interpreter.set_tensor(detail["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def _op_names(path: Path) -> set[str]:
    from harness.results.weight_stats import flatbuffer_schema

    schema = flatbuffer_schema()
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    model = schema.ModelT.InitFromPackedBuf(path.read_bytes(), 0)
    return {names[max(c.builtinCode, c.deprecatedBuiltinCode)] for c in model.operatorCodes}


def _tensor_types(path: Path) -> set[str]:
    from harness.results.weight_stats import flatbuffer_schema

    schema = flatbuffer_schema()
    names = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    model = schema.ModelT.InitFromPackedBuf(path.read_bytes(), 0)
    return {names[t.type] for g in model.subgraphs for t in g.tensors}


def _builder(tmp: Path, workload: dict, variants: list[str]):
    from harness.artifacts.build import Builder
    from harness.config.suite import Suite

    suite = Suite(name="optimize_test", workload=workload, variants=variants,
                  optimize={"epochs": 1, "max_windows": 300})
    return Builder(suite, tmp / "suite.yaml", tmp / "cache")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Every variant of a tiny kettle CNN, through the builder (trains, prunes, clusters, ...)."""
    tmp = tmp_path_factory.mktemp("optimize")
    builder = _builder(tmp, TINY_WORKLOAD, VARIANTS)
    try:
        spec = builder.workload.models()[0]
        artifacts = {a.variant: a for a in builder.build(spec)}
    finally:
        builder.close()
    return artifacts


@pytest.mark.slow
def test_every_variant_builds_and_runs_on_litert(built):
    assert sorted(built) == sorted(VARIANTS)
    for variant, artifact in built.items():
        assert artifact.ok, (variant, artifact.error)
        output = _run_on_litert(artifact.path, TINY_WORKLOAD["window"])
        assert output.shape == (1, 1) and np.isfinite(output).all(), variant
    assert len({a.sha256 for a in built.values()}) == len(built)  # all different models


@pytest.mark.slow
@pytest.mark.parametrize("variant, target", [("prune50", 0.5), ("prune75", 0.75),
                                             ("prune50+qat", 0.5)])
def test_pruned_models_have_the_sparsity_they_asked_for(built, variant, target):
    from harness.results.weight_stats import weight_stats

    stats = weight_stats(built[variant].path)
    assert len(stats.kernels) == 5  # two convolutions, three dense layers
    assert stats.sparsity == pytest.approx(target, abs=0.02)
    assert weight_stats(built["convert_only"].path).sparsity < 0.02


@pytest.mark.slow
def test_clustered_kernels_have_at_most_k_values(built):
    from harness.results.weight_stats import weight_stats

    stats = weight_stats(built["cluster16"].path)
    assert {k.dtype for k in stats.kernels} == {"INT8"}
    assert stats.distinct_max <= 16
    big = [k for k in stats.kernels if k.size > 16]
    assert big and all(k.distinct <= 16 for k in big)
    assert weight_stats(built["w8_a8_fallback"].path).distinct_max > 16  # not clustered


@pytest.mark.slow
def test_w4_has_int4_weights_and_qat_is_int8(built):
    from harness.results.weight_stats import weight_stats

    w4 = weight_stats(built["w4"].path)
    assert w4.int4_tensors >= 3 and {k.dtype for k in w4.kernels} == {"INT4"}
    assert weight_stats(built["convert_only"].path).int4_tensors == 0
    assert built["w4"].size_bytes < built["convert_only"].size_bytes
    qat = weight_stats(built["qat"].path)
    assert {k.dtype for k in qat.kernels} == {"INT8"}
    assert "INT8" in _tensor_types(built["qat"].path) and "QUANTIZE" in _op_names(
        built["qat"].path)


@pytest.mark.slow
def test_separable_model_has_depthwise_convolutions(built):
    assert "DEPTHWISE_CONV_2D" in _op_names(built["separable"].path)
    assert "DEPTHWISE_CONV_2D" not in _op_names(built["convert_only"].path)


@pytest.mark.slow
def test_fallback_keeps_an_op_without_int8_kernel_in_float(tmp_path):
    """SIN has no int8 kernel: the fallback keeps it in float between int8 FULLY_CONNECTEDs.
    (TF 2.21's int8-only ops set falls back the same way for SIN instead of refusing it.)"""
    import keras
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    from harness.artifacts.convert import convert, converter_factory
    from harness.results.weight_stats import weight_stats

    keras.utils.set_random_seed(0)
    inputs = keras.Input((16,), batch_size=1)
    hidden = keras.layers.Dense(8, name="dense_in")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1, name="dense_out")(keras.ops.sin(hidden)))
    model.export(str(tmp_path / "saved"), format="tf_saved_model", verbose=False,
                 input_signature=[tf.TensorSpec((1, 16), tf.float32)])
    representative = np.random.default_rng(0).standard_normal((8, 16)).astype(np.float32)
    factory = converter_factory(tmp_path / "saved")
    path = tmp_path / "fallback.tflite"
    path.write_bytes(convert(factory, "w8_a8_fallback", representative))
    assert {"SIN", "FULLY_CONNECTED", "QUANTIZE", "DEQUANTIZE"} <= _op_names(path)
    assert {k.dtype for k in weight_stats(path).kernels} == {"INT8"}
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    sin = [d for d in interpreter._get_ops_details() if d["op_name"] == "SIN"][0]
    types = {d["index"]: d["dtype"] for d in interpreter.get_tensor_details()}
    assert types[sin["inputs"][0]] == np.float32 and types[sin["outputs"][0]] == np.float32
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], representative[:1])
    interpreter.invoke()
    assert np.isfinite(interpreter.get_tensor(interpreter.get_output_details()[0]["index"])).all()


@pytest.mark.slow
def test_the_transformer_has_no_fine_tune_or_separable_form(tmp_path):
    builder = _builder(tmp_path, {**TINY_WORKLOAD, "architectures": ["transformer"],
                                  "transformer": {"d_model": 8, "heads": 2, "layers": 1,
                                                  "ff": 16, "stride": 2}},
                       ["prune50", "cluster16", "separable"])
    try:
        artifacts = builder.build(builder.workload.models()[0])
    finally:
        builder.close()
    assert [a.error_kind for a in artifacts] == [ErrorKind.NOT_APPLICABLE] * 3
    assert "fine-tuned" in artifacts[0].error and "separable" in artifacts[2].error
