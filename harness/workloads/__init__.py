"""Workloads: the models a suite trains, converts and measures (NILM today)."""
