"""harness: benchmark ML models across a fleet of heterogeneous edge devices."""

import os

__version__ = "0.1.0"

# TensorFlow's C++ INFO lines (oneDNN, CPU features) would drown the progress display.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
