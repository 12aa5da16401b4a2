"""Shared by the accelerator tests: a tiny NILM seq2point CNN as Keras + TFLite files (built once
per session by the `accel_models` fixture in conftest.py), a suite, a target context, artifacts."""

from __future__ import annotations

from pathlib import Path

import numpy as np

WINDOW = 99


def build_models(folder: Path) -> dict[str, Path]:
    """A tiny NILM CNN (the suite's architecture) saved as .keras and converted to TFLite variants."""
    import keras

    from harness.artifacts.convert import convert, converter_factory, export_batch1
    from harness.config.suite import CnnSpec
    from harness.workloads.nilm.models import build_cnn, export_model

    keras.utils.set_random_seed(0)
    model = export_model(build_cnn(WINDOW, CnnSpec(filters=[8, 8], kernel_size=9, dense=16)),
                         WINDOW)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"keras": folder / "cnn.keras"}
    model.save(paths["keras"])
    factory = converter_factory(export_batch1(paths["keras"], folder / "saved", None))
    representative = np.random.default_rng(0).standard_normal((32, WINDOW, 1)).astype(np.float32)
    for variant in ("convert_only", "w8_a8", "w8_a16"):
        paths[variant] = folder / f"cnn_{variant}.tflite"
        paths[variant].write_bytes(convert(factory, variant, representative))
    inputs = np.random.default_rng(1).standard_normal((12, WINDOW, 1)).astype(np.float32)
    paths["inputs"] = folder / "inputs.npy"
    np.save(paths["inputs"], inputs)
    return paths


def make_suite(model_path: Path, runs: int = 20):
    """A small suite over one model file (latency + memory)."""
    from harness.config.suite import Suite

    return Suite.model_validate({
        "name": "accel", "models": [{"name": "cnn", "path": str(model_path)}],
        "variants": ["convert_only", "w8_a8"],
        "measurements": {"latency": {"threads": [1], "warmup_runs": 2, "warmup_seconds": 0.01,
                                     "runs": runs, "min_seconds": 0.05, "rounds": 2},
                         "memory": True}})


def make_ctx(tmp: Path, target: dict, suite, transport=None, name: str = "dut"):
    """A TargetContext over a local transport (or the given one) with the runner pushed."""
    from harness.config.inventory import Target
    from harness.devices.base import TargetContext
    from harness.transport import LocalTransport

    t = Target.model_validate(target)
    transport = transport or LocalTransport(name, tmp / "device")
    ctx = TargetContext(name, t, transport, suite, tmp / "local", tmp / "cache")
    ctx.ensure_runner()
    return ctx


def artifact_for(paths: dict[str, Path], variant: str, model: str = "cnn"):
    """An Artifact as the builder makes it: the .tflite of a variant and its Keras source."""
    from harness.artifacts import Artifact
    from harness.artifacts.cache import sha256_file

    path = paths[variant]
    return Artifact(model, variant, path=path, sha256=sha256_file(path),
                    size_bytes=path.stat().st_size, source=paths["keras"])
