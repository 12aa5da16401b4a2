"""Float Keras accuracy of the NILM suite on the held-out house (contiguous evaluation), with
training time.

Usage: .venv/bin/python bench/nilm_accuracy.py [--appliances kettle microwave] [--archs cnn]
       [--seeds 0 1 2] [--days 1 3] [--epochs 16] [--suite suites/nilm.yaml]
(`train s` is wall time, `cpu s` the process CPU time (user + sys, all threads) of training.)
The metrics are those of a suite run: one prediction per sample of a contiguous span per test
house, the status rules applied per span. `--suite` takes the workload section of a suite file
(presets, training budget); the other options override it.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from harness.config.suite import NilmWorkload, load_suite
from harness.workloads.nilm import prepare
from harness.workloads.nilm.metrics import nilm_metrics


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


def _workload(args: argparse.Namespace, seed: int) -> NilmWorkload:
    base = load_suite(args.suite).workload if args.suite else NilmWorkload(appliances=["kettle"])
    assert isinstance(base, NilmWorkload), "--suite needs a nilm workload"
    training = base.training.model_copy(update={"seed": seed, **(
        {"epochs": args.epochs} if args.epochs else {})})
    evaluation = base.evaluation.model_copy(update={"days": args.days[0]} if args.days else {})
    return base.model_copy(update={"appliances": args.appliances or base.appliances,
                                   "architectures": args.archs or base.architectures,
                                   "training": training, "evaluation": evaluation})


def main() -> None:
    """Train every appliance × architecture × seed and print F1/MCC/ACC/MAE/SAE/NDE/time."""
    from harness.workloads.nilm.models import predict_power_w
    from harness.workloads.nilm.train import train

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--suite", type=Path, default=None)
    parser.add_argument("--appliances", nargs="+", default=None)
    parser.add_argument("--archs", nargs="+", default=None)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--days", type=float, nargs="+", default=None,
                        help="evaluation days per house (several: one row per span)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "nilm_bench")
    args = parser.parse_args()
    if args.appliances is None and args.suite is None:
        args.appliances = ["kettle", "microwave", "fridge", "dishwasher", "washing_machine"]
    print(f"{'appliance':<16}{'arch':<12}{'seed':>5}{'F1':>7}{'MCC':>7}{'ACC':>7}{'MAE W':>8}"
          f"{'SAE':>7}{'NDE':>7}{'epochs':>7}{'train s':>9}{'cpu s':>8}{'days':>6}", flush=True)
    for seed in args.seeds:
        workload = _workload(args, seed)
        for appliance in workload.appliances:
            data = prepare(workload, appliance, args.data_dir)
            spans = [data] + [prepare(workload.model_copy(update={"evaluation": workload.evaluation
                              .model_copy(update={"days": days})}), appliance, args.data_dir)
                              for days in (args.days or [])[1:]]
            for arch in workload.architectures:
                epochs: list[int] = []
                start, cpu_start = time.perf_counter(), _cpu()
                model = train(workload, appliance, arch, data,
                              progress=lambda epoch, _total, _logs: epochs.append(epoch))
                seconds, cpu = time.perf_counter() - start, _cpu() - cpu_start
                for span in spans:
                    pred = predict_power_w(model, span.test_windows(), appliance)
                    m = nilm_metrics(pred, span.test_truth_w(), appliance,
                                     segments=span.segments)
                    print(f"{appliance:<16}{arch:<12}{seed:>5}{m['f1']:>7.3f}{m['mcc']:>7.3f}"
                          f"{m['acc']:>7.3f}{m['mae']:>8.1f}{m['sae']:>7.3f}{m['nde']:>7.3f}"
                          f"{len(epochs):>7}{seconds:>9.1f}{cpu:>8.1f}"
                          f"{sum(span.segments) * 8 / 86400:>6.2f}", flush=True)


if __name__ == "__main__":
    main()
