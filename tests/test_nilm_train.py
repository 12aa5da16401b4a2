"""A tiny real training run, the batch-1 export and the QuantizationDebugger on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.config.suite import NilmWorkload
from harness.workloads.nilm import prepare

FIXTURE = Path(__file__).resolve().parent / "data" / "tools" / "quant_debug" / "kettle_cnn_debug_w8_a8.csv"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    workload = NilmWorkload(
        appliances=["kettle"], window=31,
        dataset={"houses": {"train": [1], "val": [2], "test": [3]}, "days": 1},
        training={"epochs": 1, "batch_size": 64, "max_train_windows": 300,
                  "max_eval_windows": 100, "calibration_windows": 16},
        evaluation={"days": 0.1},
        cnn={"filters": [4, 8], "kernel_size": 3, "dense": 8},
        transformer={"d_model": 8, "heads": 2, "layers": 1, "ff": 16, "stride": 2})
    return workload, prepare(workload, "kettle", tmp_path_factory.mktemp("nilm"))


@pytest.mark.slow  # trains a model: seconds of CPU each (the fast suite stays under a minute)
@pytest.mark.parametrize("arch", ["cnn", "transformer"])
def test_tiny_training_run(tiny, arch):
    from harness.workloads.nilm.models import export_model, predict_power_w
    from harness.workloads.nilm.train import train

    workload, data = tiny
    seen = []
    model = train(workload, "kettle", arch, data,
                  progress=lambda epoch, total, logs: seen.append((epoch, total, logs)))
    assert [(e, n) for e, n, _ in seen] == [(1, 1)]
    assert np.isfinite(seen[0][2]["loss"]) and np.isfinite(seen[0][2]["val_loss"])
    assert model.predict(data.val.x[:5], verbose=0).shape == (5, 2)
    exported = export_model(model, workload.window)
    assert tuple(exported.input_shape) == (1, 31, 1) and tuple(exported.output_shape) == (1, 1)
    np.testing.assert_allclose(exported(data.val.x[:1]).numpy()[0, 0],
                               model(data.val.x[:1]).numpy()[0, 0], rtol=1e-5, atol=1e-6)
    watts = predict_power_w(model, data.val.x, "kettle")
    assert watts.shape == (len(data.val.x),) and watts.min() >= 0


def test_rmse_scale_matches_fixture_arithmetic():
    from harness.artifacts.quant_debug import rmse_scale_from_frame, with_efficacy

    frame = pd.read_csv(FIXTURE)
    first = frame.iloc[0]                    # EXPAND_DIMS: sqrt(0.00066693826) / 0.09384304
    assert rmse_scale_from_frame(frame).iloc[0] == pytest.approx(
        np.sqrt(first["mean_squared_error"]) / first["scale"])
    assert rmse_scale_from_frame(frame).iloc[0] == pytest.approx(0.27519, abs=1e-4)
    flagged = with_efficacy(frame, threshold=0.7)
    assert list(flagged.columns) == list(frame.columns) + ["rmse_scale", "suspected"]
    assert flagged["suspected"].tolist() == (flagged["rmse_scale"] > 0.7).tolist()


@pytest.mark.slow
def test_full_integer_power_has_its_own_scale(tiny, tmp_path):
    """The exported output is the status gate's product, not a column of [power, logit]: in
    w8_a8 the tensor the output is dequantized from comes from the gate's MUL, so the power keeps
    an int8 scale of its own (a shared one, set by the logit's range, made the washing machine's
    step 240 W)."""
    from ai_edge_litert.interpreter import Interpreter

    from harness.artifacts.convert import convert, converter_factory, export_batch1
    from harness.workloads.nilm.models import build_model, export_model

    workload, data = tiny
    export_model(build_model("cnn", workload), workload.window).save(tmp_path / "m.keras")
    saved = export_batch1(tmp_path / "m.keras", tmp_path / "saved", None)
    model = convert(converter_factory(saved), "w8_a8", np.asarray(data.representative))
    interpreter = Interpreter(model_content=model)
    interpreter.allocate_tensors()
    ops = interpreter._get_ops_details()
    producer = {tensor: op["op_name"] for op in ops for tensor in op["outputs"]}
    output = interpreter.get_output_details()[0]["index"]
    last = next(op for op in ops if output in op["outputs"])
    assert last["op_name"] == "DEQUANTIZE" and producer[last["inputs"][0]] == "MUL"


@pytest.mark.slow
def test_quantization_debugger_on_trained_model(tiny):
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    from harness.workloads.nilm.models import build_model, export_model
    from harness.artifacts.quant_debug import (convert_with_denylist, debug_full_int8,
                                                    suspected_nodes)

    workload, data = tiny
    exported = export_model(build_model("cnn", workload), workload.window)

    def factory():
        converter = tf.lite.TFLiteConverter.from_keras_model(exported)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([x[None]] for x in data.representative)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        return converter

    stats = debug_full_int8(factory, data.representative, threshold=0.0)
    assert list(stats.columns) == list(pd.read_csv(FIXTURE).columns) + ["rmse_scale", "suspected"]
    assert (stats["op_name"] == "CONV_2D").sum() == 2
    nodes = suspected_nodes(stats)
    conv = [n for n, op in zip(stats["tensor_name"], stats["op_name"]) if op == "CONV_2D"][:1]
    assert conv[0] in nodes
    model = convert_with_denylist(factory, data.representative, conv)
    interpreter = Interpreter(model_content=model)
    interpreter.allocate_tensors()
    assert interpreter.get_input_details()[0]["shape"].tolist() == [1, 31, 1]
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], data.val.x[:1])
    interpreter.invoke()
    assert interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).shape == (1, 1)


@pytest.mark.slow  # builds Keras models (TensorFlow)
def test_long_programme_appliances_floor_the_on_power():
    """Dishwasher / washing machine: wherever the status head says on (P ≥ 0.8) the output is
    over the 10-W threshold, however low the regressed power; other appliances have no floor."""
    import keras

    from harness.workloads.nilm.appliances import params
    from harness.workloads.nilm.models import build_model, on_power_floor

    assert on_power_floor("kettle") == on_power_floor("microwave") == on_power_floor(None) == 0.0
    p = params("washing_machine")
    assert on_power_floor("washing_machine") == pytest.approx((10 + 1.5 * 2500 / 255) / 2500)
    workload = NilmWorkload(appliances=["washing_machine"], window=31,
                            cnn={"filters": [4], "kernel_size": 3, "dense": 8})
    model = build_model("cnn", workload, appliance="washing_machine")
    model.get_layer("power").set_weights([np.zeros((8, 1)), np.zeros(1)])        # regresses 0
    model.get_layer("status").set_weights([np.zeros((8, 1)), np.full(1, np.log(4.0))])  # P = 0.8
    x = np.zeros((1, 31, 1), np.float32)
    floor_w = 10 + 1.5 * 2500 / 255                                  # 24.7 W
    out = model(x, training=True).numpy()[0, 0] * p.max_power_w     # the smooth training gate
    assert out == pytest.approx(0.8 * floor_w, rel=1e-4) and out > 10
    out = model(x).numpy()[0, 0] * p.max_power_w                     # inference: P(on) ≈ 1
    assert out == pytest.approx(floor_w, rel=1e-3)
    plain = build_model("cnn", workload.model_copy(update={"appliances": ["kettle"]}),
                        appliance="kettle")
    assert "power_floor" not in [layer.name for layer in plain.layers]
    assert isinstance(keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(
        model.get_layer("power_floor"))), type(model.get_layer("power_floor")))


@pytest.mark.slow  # builds Keras models (TensorFlow)
def test_transformer_head_sees_the_middle_encoder_tokens():
    """The transformer's head gets the encoder's middle tokens as they are (a short activation at
    the window's centre is not averaged away with the other tokens)."""
    import keras

    from harness.config.suite import TransformerSpec
    from harness.workloads.nilm.models import CENTRE_TOKENS, build_transformer

    model = build_transformer(63, TransformerSpec(d_model=8, heads=2, layers=1, ff=16, stride=4))
    encoded = model.get_layer("norm_f0").output
    probe = keras.Model(model.input, [encoded, model.get_layer("centre_tokens").output])
    x = np.random.default_rng(0).standard_normal((2, 63, 1)).astype(np.float32)
    tokens, middle = (t.numpy() if hasattr(t, "numpy") else t for t in probe(x))
    assert tokens.shape == (2, 16, 8) and middle.shape == (2, CENTRE_TOKENS, 8)
    left = (16 - CENTRE_TOKENS) // 2
    np.testing.assert_array_equal(middle, tokens[:, left:left + CENTRE_TOKENS])
    # the head's input: mean token + middle tokens + the window's 33 centre samples
    assert model.get_layer("head").kernel.shape[0] == 8 + CENTRE_TOKENS * 8 + 33


@pytest.mark.slow  # builds Keras models (TensorFlow)
def test_status_gate_is_smooth_while_training_and_sharp_at_inference():
    """An uncertain "off" (logit -0.5) lets 38 % of the power through while training, 1.8 % at
    inference (and in the exported model): the status head decides on or off."""
    import keras

    from harness.workloads.nilm.models import GATE_SHARPNESS, StatusGate, build_model, export_model

    gate = StatusGate()
    power, logit = np.full((2, 1), 0.5, np.float32), np.array([[-0.5], [2.0]], np.float32)
    smooth = gate([power, logit], training=True).numpy()
    sharp = gate([power, logit]).numpy()
    np.testing.assert_allclose(smooth, 0.5 / (1 + np.exp(-logit)), rtol=1e-5)
    np.testing.assert_allclose(sharp, 0.5 / (1 + np.exp(-GATE_SHARPNESS * logit)), rtol=1e-5)
    assert sharp[0, 0] < 0.01 < 0.15 < smooth[0, 0] and sharp[1, 0] > 0.499
    workload = NilmWorkload(appliances=["kettle"], window=31,
                            cnn={"filters": [4], "kernel_size": 3, "dense": 8})
    model = build_model("cnn", workload, appliance="kettle")
    model.get_layer("power").set_weights([np.zeros((8, 1)), np.full(1, 0.5)])
    model.get_layer("status").set_weights([np.zeros((8, 1)), np.full(1, -0.5)])
    exported = export_model(model, 31)
    out = exported(np.zeros((1, 31, 1), np.float32)).numpy()[0, 0]
    assert out == pytest.approx(0.5 / (1 + np.exp(4.0)), rel=1e-4)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(gate))
    assert isinstance(restored, StatusGate) and restored.sharpness == GATE_SHARPNESS
