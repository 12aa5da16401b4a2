"""The reference presets build the NILM reference project's architectures layer by layer, export
at batch 1 without extra ops, and train on the single-output loss."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from harness.config.suite import CnnSpec, NilmWorkload, TransformerSpec

REFERENCE = NilmWorkload(appliances=["kettle"], cnn={"preset": "seq2point-reference"},
                         transformer={"preset": "nilm-transformer-reference"})


def test_a_preset_fixes_the_architecture():
    assert CnnSpec().preset is None and TransformerSpec().preset is None
    with pytest.raises(ValidationError, match="fixes the architecture"):
        CnnSpec(preset="seq2point-reference", filters=[8])
    with pytest.raises(ValidationError, match="fixes the architecture"):
        TransformerSpec(preset="nilm-transformer-reference", d_model=64)
    with pytest.raises(ValidationError):
        CnnSpec(preset="resnet")


@pytest.mark.slow  # builds Keras models (TensorFlow)
def test_reference_cnn_layer_by_layer():
    from harness.workloads.nilm.models import build_model

    model = build_model("cnn", REFERENCE)
    convs = [layer for layer in model.layers if type(layer).__name__ == "Conv1D"]
    assert [(c.filters, c.kernel_size[0], c.padding) for c in convs] == [
        (16, 5, "same"), (32, 3, "same"), (64, 3, "same"), (128, 3, "same"), (256, 3, "same")]
    pools = [layer for layer in model.layers if type(layer).__name__ == "MaxPooling1D"]
    assert [p.output.shape[1] for p in pools] == [300, 150, 75, 38]
    dense = [layer for layer in model.layers if type(layer).__name__ == "Dense"]
    assert [(d.units, d.activation.__name__) for d in dense] == [
        (1024, "relu"), (512, "relu"), (1, "linear")]
    assert model.get_layer("flatten").output.shape[1] == 38 * 256
    assert model.count_params() == 10_618_945          # ~42.5 MB of float32 weights
    assert model.output_shape == (None, 1)


@pytest.mark.slow  # builds Keras models (TensorFlow)
def test_reference_transformer_layer_by_layer():
    from harness.workloads.nilm.models import build_model

    model = build_model("transformer", REFERENCE)
    assert model.get_layer("conv").filters == 256 and model.get_layer("conv").kernel_size == (5,)
    assert model.get_layer("l2_norm_pool").output.shape[1:] == (299, 256)
    assert tuple(model.get_layer("position").embeddings.shape) == (599, 256)
    assert tuple(model.get_layer("relative_position").embeddings.shape) == (150, 256)
    block = model.get_layer("block0")
    assert (block.heads, block.ff, block.attention.d_k, block.attention.d_v) == (2, 1024, 128, 128)
    assert model.get_layer("dense1").units == 256 and model.get_layer("power").units == 1
    assert model.count_params() == 1_576_961
    assert model.output_shape == (None, 1)


@pytest.mark.slow  # builds Keras models (TensorFlow)
def test_relative_position_table_is_mirrored():
    from harness.workloads.nilm.reference_models import RelativePositionEmbedding

    layer = RelativePositionEmbedding(5)
    x = np.zeros((1, 5, 2), dtype=np.float32)
    layer.build(x.shape)
    layer.embeddings.assign(np.array([[0, 0], [1, 1], [2, 2]], dtype=np.float32))
    assert np.asarray(layer(x))[0, :, 0].tolist() == [2, 1, 0, 1, 2]
    even = RelativePositionEmbedding(4)
    even.build((1, 4, 2))
    even.embeddings.assign(np.array([[0, 0], [1, 1]], dtype=np.float32))
    assert np.asarray(even(np.zeros((1, 4, 2), np.float32)))[0, :, 0].tolist() == [1, 0, 0, 1]


@pytest.mark.slow  # builds Keras models (TensorFlow)
def test_single_output_export_adds_no_op_and_loss_trains():
    import keras

    from harness.workloads.nilm.models import export_model
    from harness.workloads.nilm.reference_models import build_reference_cnn
    from harness.workloads.nilm.train import nilm_loss

    model = build_reference_cnn()
    exported = export_model(model, 599)
    assert tuple(exported.input_shape) == (1, 599, 1) and tuple(exported.output_shape) == (1, 1)
    x = np.random.default_rng(0).standard_normal((1, 599, 1)).astype(np.float32)
    np.testing.assert_allclose(exported(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-6)
    loss = nilm_loss(1.0, on_threshold=0.5)
    y_true = keras.ops.convert_to_tensor(np.array([[0.8, 1.0], [0.0, 0.0]], np.float32))
    # on window predicted 0.6 (on, right): mse + l1 over the on window only
    y_pred = keras.ops.convert_to_tensor(np.array([[0.6], [0.1]], np.float32))
    expected = np.mean([0.2 ** 2, 0.1 ** 2]) + 0.2
    assert float(loss(y_true, y_pred)) == pytest.approx(expected, rel=1e-5)
    # the off window predicted on (0.7 ≥ 0.5) is misclassified: it joins the L1 term
    y_pred = keras.ops.convert_to_tensor(np.array([[0.6], [0.7]], np.float32))
    expected = np.mean([0.2 ** 2, 0.7 ** 2]) + (0.2 + 0.7) / 2
    assert float(loss(y_true, y_pred)) == pytest.approx(expected, rel=1e-5)


@pytest.mark.slow
def test_reference_cnn_converts_with_three_fully_connected_nodes(tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    from harness.artifacts.convert import convert, converter_factory, export_batch1
    from harness.workloads.nilm.models import build_model, export_model

    export_model(build_model("cnn", REFERENCE), 599).save(tmp_path / "cnn.keras")
    factory = converter_factory(export_batch1(tmp_path / "cnn.keras", tmp_path / "saved", None))
    data = convert(factory, "convert_only", None)
    assert 42e6 < len(data) < 43e6                      # 10.6 M float32 weights
    interpreter = Interpreter(model_content=data)
    ops = [op["op_name"] for op in interpreter._get_ops_details()]
    assert ops.count("FULLY_CONNECTED") == 3 and ops.count("CONV_2D") == 5
    assert ops.count("MAX_POOL_2D") == 4
