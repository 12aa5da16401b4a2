"""Float Keras accuracy of the NILM suite on the synthetic held-out house, with training time.

Usage: .venv/bin/python bench/nilm_accuracy.py [--appliances kettle microwave] [--archs cnn]
(`train s` is wall time, `cpu s` the process CPU time of training, all threads.)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from harness.config.suite import NilmWorkload
from harness.workloads.nilm import prepare
from harness.workloads.nilm.metrics import nilm_metrics


def main() -> None:
    """Train every appliance × architecture with the default budget and print F1/MAE/time."""
    from harness.workloads.nilm.models import predict_power_w
    from harness.workloads.nilm.train import train

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--appliances", nargs="+",
                        default=["kettle", "microwave", "fridge", "dishwasher", "washing_machine"])
    parser.add_argument("--archs", nargs="+", default=["cnn", "transformer"])
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "nilm_bench")
    args = parser.parse_args()
    workload = NilmWorkload(appliances=args.appliances, architectures=args.archs)
    print(f"{'appliance':<16}{'arch':<12}{'F1':>7}{'MCC':>7}{'MAE W':>9}{'SAE':>8}"
          f"{'epochs':>8}{'train s':>9}{'cpu s':>8}")
    for appliance in workload.appliances:
        data = prepare(workload, appliance, args.data_dir)
        for arch in workload.architectures:
            epochs: list[int] = []
            start, cpu_start = time.perf_counter(), time.process_time()
            model = train(workload, appliance, arch, data,
                          progress=lambda epoch, _total, _logs: epochs.append(epoch))
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
            pred = predict_power_w(model, data.test_inputs, appliance)
            m = nilm_metrics(pred, data.test_targets_w, appliance, data.test_sample_seconds)
            print(f"{appliance:<16}{arch:<12}{m['f1']:>7.3f}{m['mcc']:>7.3f}{m['mae']:>9.1f}"
                  f"{m['sae']:>8.3f}{len(epochs):>8}{seconds:>9.1f}{cpu:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
