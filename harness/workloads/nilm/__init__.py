"""NILM workload: REFIT-format data, seq2point windows, models, training, metrics.

Importing this package does not import TensorFlow (`models`, `train` and `quant_debug` do).
"""

from harness.workloads.nilm.dataset import NilmData, Split, data_fingerprint, prepare

__all__ = ["NilmData", "Split", "data_fingerprint", "prepare"]
