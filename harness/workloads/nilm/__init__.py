"""NILM workload: REFIT-format data, seq2point windows, models, training, metrics.

Importing this package does not import TensorFlow (`models` and `train` do). `workload.Nilm` is
the workload behind the seam of harness/workloads/base.py.
"""

from harness.workloads.nilm.dataset import NilmData, Split, data_fingerprint, prepare

__all__ = ["NilmData", "Split", "data_fingerprint", "prepare"]
