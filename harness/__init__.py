"""harness: benchmark ML models across a fleet of heterogeneous edge devices."""

__version__ = "0.1.0"
