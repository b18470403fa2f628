"""Nightly scoring: resolve the model, score the catalog, review threshold, drift, publish."""
