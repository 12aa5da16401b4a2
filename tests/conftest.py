"""Shared fixtures: small real TFLite models."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # testutil, for tests in sub-folders

# Fixtures that import TensorFlow and convert models (seconds each): every test that uses one,
# directly or through another fixture, is `slow`, so the fast suite never imports TensorFlow.
MODEL_BUILDING_FIXTURES = {"tiny_models", "accel_models", "seq2point_int8", "cnn_model",
                           "generic_run", "midpoint_model"}


@pytest.hookimpl(tryfirst=True)   # before `-m` deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if MODEL_BUILDING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small seq2point-shaped Keras model converted to float32 and full-int8 .tflite files."""
    import numpy as np

    from harness.artifacts.convert import convert, converter_factory, export_batch1

    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((64, 1))
    x = keras.layers.Conv1D(4, 5, activation="relu")(inputs)
    x = keras.layers.MaxPooling1D(2)(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(1)(keras.layers.Dense(8, activation="relu")(x))
    model = keras.Model(inputs, outputs)
    folder = tmp_path_factory.mktemp("models")
    model.save(folder / "tiny.keras")
    factory = converter_factory(export_batch1(folder / "tiny.keras", folder / "saved", None))
    representative = np.random.default_rng(0).standard_normal((16, 64, 1)).astype(np.float32)
    paths = {"keras": folder / "tiny.keras"}
    for variant in ("convert_only", "w8_a8"):
        paths[variant] = folder / f"tiny_{variant}.tflite"
        paths[variant].write_bytes(convert(factory, variant, representative))
    return paths


@pytest.fixture(scope="session")
def accel_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The accelerator tests' tiny NILM CNN: .keras, TFLite variants and evaluation inputs."""
    from accel_util import build_models

    return build_models(tmp_path_factory.mktemp("accel_models"))


@pytest.fixture(scope="session")
def harness_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One artifact cache for every end-to-end test of the session (train and convert once)."""
    return tmp_path_factory.mktemp("harness-cache")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The fast suite (`-m "not slow ..."`) must not import TensorFlow (4 s and 500 MB): a test
    that builds a model is `slow`. Fails the session when one slipped through."""
    markexpr = session.config.getoption("markexpr") or ""
    if "not slow" in markexpr and "tensorflow" in sys.modules and exitstatus == 0:
        print("\nthe fast suite imported TensorFlow: mark the test that builds a model `slow` "
              "(or use a fixture in tests/conftest.py MODEL_BUILDING_FIXTURES)")
        session.exitstatus = 1
