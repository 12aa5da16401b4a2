"""Clustering and quantization-aware training in a tf-keras process of their own.

tensorflow-model-optimization's `cluster_weights` and `quantize_model` run on tf-keras only
(`TF_USE_LEGACY_KERAS=1`), which must never be switched on in the harness or the converter
process (both use Keras 3). So the builder writes the Keras 3 model's weights (.npz, by layer
name), the fine-tune pairs and the representative inputs to a work folder, and runs
`harness.artifacts.legacy_worker` in a fresh Python with that variable set; the worker rebuilds the
architecture with tf-keras from the workload's twin builder and returns the converted .tflite.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from harness import fileio
from harness.artifacts.cache import PACKAGE_ROOT, write_npy
from harness.artifacts.convert import ConversionError, ConverterFailed
from harness.artifacts.legacy_worker import LEGACY_ENV

if TYPE_CHECKING:
    from harness.config.suite import OptimizeSpec
    from harness.config.variants import VariantPlan
    from harness.workloads.base import FineTune

TIMEOUT_S = 3600
OPTIMIZE_EXTRA = "pip install 'harness[optimize]' (tf-keras, tensorflow-model-optimization)"


def legacy_convert(weights_npz: bytes, fine: "FineTune", plan: "VariantPlan",
                   spec: "OptimizeSpec", representative: np.ndarray | None, work_near: Path,
                   timeout_s: float = TIMEOUT_S) -> bytes:
    """The .tflite of `plan`'s cluster / qat steps and converter mode over the given weights.
    ConversionError when the converter refuses the model; ConverterFailed when the process
    crashed, timed out, or the tools are not installed."""
    from harness.artifacts.pruning import fine_tune_subset

    work = fileio.temp_dir_beside(work_near)
    try:
        x, y = fine_tune_subset(fine, spec)
        (work / "weights.npz").write_bytes(weights_npz)
        write_npy(work / "x.npy", x)
        write_npy(work / "y.npy", y)
        if representative is not None:
            write_npy(work / "representative.npy", representative)
        request = {
            "weights": str(work / "weights.npz"), "x": str(work / "x.npy"),
            "y": str(work / "y.npy"),
            "representative": str(work / "representative.npy")
            if representative is not None else None,
            "builder": fine.builder, "kwargs": fine.kwargs, "mode": plan.mode,
            "cluster": plan.cluster, "qat": plan.qat, "prune": plan.prune,
            "epochs": spec.epochs, "batch_size": spec.batch_size,
            "learning_rate": spec.learning_rate, "seed": spec.seed,
            "out": str(work / "model.tflite"), "status": str(work / "status.json")}
        (work / "request.json").write_text(json.dumps(request))
        env = dict(os.environ, **{LEGACY_ENV: "1"})
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(PACKAGE_ROOT.parent), env.get("PYTHONPATH")) if p)
        try:
            done = subprocess.run([sys.executable, "-m", "harness.artifacts.legacy_worker",
                                   str(work / "request.json")], env=env, capture_output=True,
                                  text=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired as exc:
            raise ConverterFailed(f"the tf-keras process ran over {timeout_s:.0f} s") from exc
        status_path = work / "status.json"
        if not status_path.is_file():
            tail = " | ".join(done.stderr.strip().splitlines()[-3:])
            raise ConverterFailed(f"the tf-keras process died (exit code {done.returncode}): "
                                  f"{tail[-300:]}")
        status = json.loads(status_path.read_text())
        if status["status"] == "ok":
            return (work / "model.tflite").read_bytes()
        if status["status"] == "refused":
            raise ConversionError(status["reason"], status.get("kind", "conversion_failed"))
        if status["status"] == "missing":
            raise ConverterFailed(f"{status['reason']}: {OPTIMIZE_EXTRA}")
        raise ConverterFailed(f"{plan.name}: {status['reason']}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
