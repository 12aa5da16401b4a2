"""Build harness/data/probe_model.tflite: the tiny float CNN `harness targets --setup` runs on a
device to check that the TFLite runtime it installed really works.

Run once from the repository root (needs the `convert` extra, TensorFlow):

    python scripts/make_probe_model.py

The model is made through the harness's own conversion path (`harness.artifacts.convert`, the
`convert_only` variant: float32, batch of 1): Conv1D → ReLU → Conv1D → global average → Dense,
input (1, 32, 1), a few KB, with fixed seeds so the weights are the same on every run.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "harness" / "data" / "probe_model.tflite"


def build(out: Path = OUT) -> Path:
    import keras

    from harness.artifacts.convert import convert, converter_factory, export_batch1

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((32, 1)),
        keras.layers.Conv1D(4, 3, activation="relu"),
        keras.layers.Conv1D(4, 3, activation="relu"),
        keras.layers.GlobalAveragePooling1D(),
        keras.layers.Dense(1),
    ])
    with tempfile.TemporaryDirectory() as tmp:
        keras_path = Path(tmp) / "probe.keras"
        model.save(keras_path)
        saved = export_batch1(keras_path, Path(tmp) / "saved_model", (32, 1))
        out.write_bytes(convert(converter_factory(saved), "convert_only", None))
    return out


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    path = build()
    print(f"{path} ({path.stat().st_size} bytes)")
