#!/usr/bin/env python3
"""Op-split accuracy benchmark: sum of per-op medians ÷ whole-model median.

Acceptance (issue 5): for the NILM CNN in `convert_only` and `w8_a8` the ratio lies in 0.85–1.15.
Without the lead's NILM artifacts this builds a seq2point-like CNN (Input (599, 1), batch 1, Conv1D
16/16/32/32 kernel 9 ReLU each followed by max-pooling, flatten, dense 64, dense 1), converts it in
both modes (untrained weights: latency does not depend on their values) and profiles each with
`targets/opsplit.py` through the same runtime the runner uses.

    .venv/bin/python bench/opsplit_ratio.py                     # build + profile both modes
    .venv/bin/python bench/opsplit_ratio.py --model A.tflite …  # profile existing artifacts
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "targets"))

WINDOW = 599
MODES = ("convert_only", "w8_a8")


def build_cnn(seed: int = 0):
    """The seq2point-like CNN (Keras, untrained)."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    inp = tf.keras.Input((WINDOW, 1), batch_size=1)
    x = inp
    for filters in (16, 16, 32, 32):
        x = tf.keras.layers.Conv1D(filters, 9, padding="same", activation="relu")(x)
        x = tf.keras.layers.MaxPooling1D(2)(x)
    x = tf.keras.layers.Flatten()(x)
    x = tf.keras.layers.Dense(64, activation="relu")(x)
    out = tf.keras.layers.Dense(1)(x)
    return tf.keras.Model(inp, out, name="cnn")


def convert(model, mode: str, calibration_windows: int = 32) -> bytes:
    """Convert from a concrete function with a fixed batch of 1.

    Modes: convert_only (float32), w8 (dynamic range), f16 (float16 weights), w8_a8 (full-integer
    ops, float I/O, representative dataset of standard-normal windows).
    """
    import numpy as np
    import tensorflow as tf

    shape = [1, *model.input_shape[1:]]
    fn = tf.function(lambda x: model(x, training=False))
    concrete = fn.get_concrete_function(tf.TensorSpec(shape, tf.float32))
    # no trackable object: with one, Keras 3 variables stay resource variables (READ_VARIABLE ops)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    if mode in ("w8", "f16", "w8_a8"):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "f16":
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "w8_a8":
        rng = np.random.default_rng(1)

        def representative():
            for _ in range(calibration_windows):
                yield [rng.standard_normal(shape).astype(np.float32)]

        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    elif mode not in ("convert_only", "w8"):
        raise ValueError(f"unknown mode {mode!r}")
    return converter.convert()


def build(out_dir: Path) -> dict[str, Path]:
    """Build (or reuse) the two test artifacts in out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {mode: out_dir / f"seq2point_cnn_{mode}.tflite" for mode in MODES}
    if all(p.exists() for p in paths.values()):
        return paths
    model = build_cnn()
    for mode, path in paths.items():
        path.write_bytes(convert(model, mode))
    return paths


def profile(path: Path, spec: dict) -> dict:
    """Profile one artifact with the runner's runtime selection and op-split code."""
    from opsplit import profile_model
    from backends import import_runtime

    _, _, module = import_runtime("auto")
    return profile_model(module, str(path), spec)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", type=Path,
                        help="existing .tflite artifact (repeatable); default: build the test CNN")
    parser.add_argument("--out", type=Path, default=Path("/tmp/harness_opsplit_bench"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--min-seconds", type=float, default=0.5)
    parser.add_argument("--warmup-runs", type=int, default=10)
    parser.add_argument("--warmup-seconds", type=float, default=0.2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("-v", "--verbose", action="store_true", help="print every operator")
    parser.add_argument("--json", type=Path, help="also write the profile sections here")
    args = parser.parse_args(argv)

    spec = {"threads": args.threads, "warmup_runs": args.warmup_runs,
            "warmup_seconds": args.warmup_seconds, "runs": args.runs,
            "min_seconds": args.min_seconds, "rounds": args.rounds}
    models = ({p.stem: p for p in args.model} if args.model else build(args.out))
    sections, failed = {}, False
    for label, path in models.items():
        started = time.perf_counter()
        section = profile(path, spec)
        sections[label] = section
        if section["status"] != "ok":
            print(f"{label}: {section['error']}")
            failed = True
            continue
        ok = 0.85 <= section["ratio"] <= 1.15
        failed |= not ok
        print(f"{label}: sum of per-op medians {section['sum_op_median_us']:.1f} µs "
              f"(invoke overhead {section['overhead_us']:.2f} µs counted once; raw sum "
              f"{section['sum_op_median_raw_us']:.1f}) / whole-model median "
              f"{section['whole_median_us']:.1f} µs = ratio {section['ratio']:.3f} "
              f"({'in' if ok else 'OUT OF'} 0.85–1.15; raw ratio {section['ratio_raw']:.3f}; "
              f"{len(section['ops'])} ops, {section['ops_failed']} failed, delegate "
              f"{section['whole']['delegate']}, {time.perf_counter() - started:.1f} s)")
        if args.verbose:
            for op in section["ops"]:
                print(f"    {op['index']:3d} {op['op']:<18} {op['median_us'] or 0:9.2f} µs "
                      f"net {op['net_us'] or 0:8.2f}  n={op['n']:<7} {op['delegate'] or op['error']}")
    if args.json:
        args.json.write_text(json.dumps(sections, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
