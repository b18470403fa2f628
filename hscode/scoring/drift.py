"""Drift of a night's predictions against the model's training data.

Two distributions are compared with the population stability index (PSI) and, for codes,
the Kullback-Leibler divergence: the predicted codes vs. the training codes' shares, and the
confidence histogram vs. the hold-out's. Rules of thumb for PSI: < 0.1 stable, 0.1-0.25
moderate shift, > 0.25 a real shift (retrain).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from hscode.config import DriftSettings

EPSILON = 1e-4  # floor for empty bins/codes so that log ratios stay finite


def _aligned(actual: Mapping[str, float], expected: Mapping[str, float]
             ) -> tuple[np.ndarray, np.ndarray]:
    keys = sorted(set(actual) | set(expected))
    a = np.array([actual.get(k, 0.0) for k in keys], float)
    e = np.array([expected.get(k, 0.0) for k in keys], float)
    a, e = np.maximum(a / max(a.sum(), 1e-12), EPSILON), np.maximum(e / max(e.sum(), 1e-12),
                                                                      EPSILON)
    return a / a.sum(), e / e.sum()


def psi(actual: Mapping[str, float], expected: Mapping[str, float]) -> float:
    """Population stability index: ``sum((a - e) * ln(a / e))`` over the union of keys."""
    a, e = _aligned(actual, expected)
    return float(np.sum((a - e) * np.log(a / e)))


def kl_divergence(actual: Mapping[str, float], expected: Mapping[str, float]) -> float:
    """``KL(actual || expected)`` in nats."""
    a, e = _aligned(actual, expected)
    return float(np.sum(a * np.log(a / e)))


def drift_metrics(code_counts: Mapping[str, int], confidence_hist: list[float],
                  reference: Mapping[str, Any], cfg: DriftSettings) -> list[dict[str, Any]]:
    """One row per metric: ``metric, value, threshold, breached``.

    Args:
        code_counts: Predicted code -> rows tonight.
        confidence_hist: Tonight's top-1 probabilities in the reference's ten bins
            (counts or shares; see :func:`hscode.scoring.reference.confidence_histogram`).
        reference: The model's scoring reference (see ``hscode.scoring.reference``).
        cfg: Thresholds.
    """
    codes = {k: float(v) for k, v in code_counts.items()}
    conf_now = {str(i): float(v) for i, v in enumerate(confidence_hist)}
    conf_ref = {str(i): float(v) for i, v in enumerate(reference["confidence_hist"])}
    rows = [
        ("code_psi", psi(codes, reference["code_shares"]), cfg.code_psi_threshold),
        ("code_kl", kl_divergence(codes, reference["code_shares"]), cfg.code_kl_threshold),
        ("confidence_psi", psi(conf_now, conf_ref), cfg.confidence_psi_threshold),
    ]
    return [{"metric": m, "value": round(v, 6), "threshold": t, "breached": bool(v > t)}
            for m, v, t in rows]
