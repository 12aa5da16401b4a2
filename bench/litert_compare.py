"""Harness median latency vs `litert-benchmark` (shipped with ai-edge-litert) on the same model.

    .venv/bin/python bench/litert_compare.py [--model M.tflite] [--threads 1 2] [--rounds 3]

Without --model it builds the reference-size seq2point CNN (conv 30/30/40/50/50, dense 1024; about
42 MB in float32, like the NILM reference project) and converts it with the harness converter.
litert-benchmark rounds its median to 0.01 ms, so the model must take milliseconds for a 3 % check.
Both tools run alternately, `--rounds` times each, and the ratio uses the median of each side's
per-round medians, so slow drift of the machine does not fall on one tool.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LITERT_BENCHMARK = Path(sys.executable).with_name("litert-benchmark")


def reference_cnn(folder: Path) -> Path:
    """The seq2point CNN of the NILM reference project, float32, fixed batch 1."""
    import keras

    from harness.artifacts.convert import convert, converter_factory, export_batch1

    keras.utils.set_random_seed(0)
    inputs = keras.Input((599, 1))
    x = inputs
    for filters, kernel in ((30, 10), (30, 8), (40, 6), (50, 5), (50, 5)):
        x = keras.layers.Conv1D(filters, kernel, padding="same", activation="relu")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(1024, activation="relu")(x)
    model = keras.Model(inputs, keras.layers.Dense(1)(x))
    model.save(folder / "ref.keras")
    factory = converter_factory(export_batch1(folder / "ref.keras", folder / "saved", None))
    path = folder / "ref_cnn_convert_only.tflite"
    path.write_bytes(convert(factory, "convert_only", None))
    return path


def harness_median_ms(model: Path, threads: int, workdir: Path) -> float:
    """Median latency measured by the harness's own device runner (fresh process)."""
    (workdir / "artifacts").mkdir(parents=True, exist_ok=True)
    (workdir / "jobs").mkdir(exist_ok=True)
    target = workdir / "artifacts" / model.name
    if not target.exists():
        target.symlink_to(model.resolve())
    job = {"schema_version": 1, "job_id": f"t{threads}", "model": f"artifacts/{model.name}",
           "runtime": "auto", "result": f"results/t{threads}.json",
           "measure": {"latency": {"threads": [threads], "warmup_runs": 20, "warmup_seconds": 0.5,
                                   "runs": 200, "min_seconds": 2.0, "rounds": 1}}}
    path = workdir / "jobs" / f"t{threads}.json"
    path.write_text(json.dumps(job))
    subprocess.run([sys.executable, str(ROOT / "targets" / "runner.py"), str(path)], check=True,
                   capture_output=True)
    result = json.loads((workdir / "results" / f"t{threads}.json").read_text())
    return statistics.median(result["latency"][0]["samples_us"]) / 1e3


def litert_median_ms(model: Path, threads: int, workdir: Path) -> float:
    """Median latency reported by litert-benchmark."""
    out = workdir / f"litert_{threads}.json"
    subprocess.run([str(LITERT_BENCHMARK), "--model", str(model), "--num_threads", str(threads),
                    "--warmup_runs", "20", "--num_runs", "200", "--result_json", str(out)],
                   check=True, capture_output=True)
    return float(json.loads(out.read_text())["latency"]["median_ms"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = args.model or reference_cnn(work)
        print(f"model {model.name}: {model.stat().st_size / 1e6:.1f} MB")
        print("threads  harness median ms  litert-benchmark median ms  ratio")
        for threads in args.threads:
            ours, theirs = [], []
            for _ in range(args.rounds):
                ours.append(harness_median_ms(model, threads, work / "wd"))
                theirs.append(litert_median_ms(model, threads, work))
            a, b = statistics.median(ours), statistics.median(theirs)
            print(f"{threads:>7}  {a:>17.3f}  {b:>26.3f}  {a / b:.3f}")


if __name__ == "__main__":
    main()
