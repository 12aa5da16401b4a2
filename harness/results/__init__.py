"""Tidy results: schema, run store, history, baselines."""
