"""Drift of a night's predictions against the model's training data.

Two distributions are compared with the population stability index (PSI) and, for codes,
the Kullback-Leibler divergence: the predicted codes vs. the training codes' shares, and the
confidence histogram vs. the hold-out's. Rules of thumb for PSI: < 0.1 stable, 0.1-0.25
moderate shift, > 0.25 a real shift (retrain).

Those rules of thumb assume few bins and many rows. Over 400+ codes, a catalog of a few
thousand rows drawn from the very distribution the model was trained on already has a code
PSI well above 0.25: most codes are seen a handful of times or not at all. So each metric's
threshold is the configured value **or** the ``null_quantile`` (99%) of the same statistic
on catalogs of tonight's size with no drift, whichever is higher. Those catalogs are drawn
(multinomial bootstrap, seeded) from the model's own predictions on its test split: rows
drawn like the catalog, scored by the same model, so the null includes both the sampling
noise of tonight's size and the model's own bias against the training shares.
``bootstrap_samples: 0`` turns the null off: the configured thresholds apply as they are.
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


def null_quantiles(reference: Mapping[str, Any], rows: int, quantile: float, samples: int,
                   seed: int = 0) -> dict[str, float] | None:
    """Per metric, the ``quantile`` of its value on ``samples`` no-drift catalogs of ``rows``
    rows drawn from the reference's test-split predictions; None when the reference has no
    predictions (artifacts from before they were kept) or ``samples`` is 0."""
    held = reference.get("holdout", {})
    predicted, conf = held.get("predicted"), held.get("confidence")
    if not predicted or rows <= 0 or samples <= 0:
        return None
    from hscode.scoring.reference import confidence_histogram

    rng = np.random.default_rng(seed)
    codes, counts = np.unique(np.asarray(predicted, dtype=object), return_counts=True)
    code_draws = rng.multinomial(rows, counts / counts.sum(), size=samples)
    bins = np.asarray(confidence_histogram(np.asarray(conf, float)), float)
    bins = bins / bins.sum() if bins.sum() else bins
    conf_draws = rng.multinomial(rows, bins, size=samples) if bins.sum() else None
    conf_ref = {str(i): float(v) for i, v in enumerate(reference["confidence_hist"])}
    stats: dict[str, list[float]] = {"code_psi": [], "code_kl": [], "confidence_psi": []}
    for j in range(samples):
        drawn = {str(c): float(n) for c, n in zip(codes, code_draws[j], strict=True) if n}
        stats["code_psi"].append(psi(drawn, reference["code_shares"]))
        stats["code_kl"].append(kl_divergence(drawn, reference["code_shares"]))
        if conf_draws is not None:
            stats["confidence_psi"].append(psi({str(i): float(v) for i, v in
                                                enumerate(conf_draws[j])}, conf_ref))
    return {m: float(np.quantile(v, quantile)) for m, v in stats.items() if v}


def drift_metrics(code_counts: Mapping[str, int], confidence_hist: list[float],
                  reference: Mapping[str, Any], cfg: DriftSettings) -> list[dict[str, Any]]:
    """One row per metric: ``metric, value, threshold, breached``.

    Args:
        code_counts: Predicted code -> rows tonight.
        confidence_hist: Tonight's top-1 probabilities in the reference's ten bins
            (counts or shares; see :func:`hscode.scoring.reference.confidence_histogram`).
        reference: The model's scoring reference (see ``hscode.scoring.reference``).
        cfg: Configured thresholds (floors) and the no-drift quantile.
    """
    codes = {k: float(v) for k, v in code_counts.items()}
    conf_now = {str(i): float(v) for i, v in enumerate(confidence_hist)}
    conf_ref = {str(i): float(v) for i, v in enumerate(reference["confidence_hist"])}
    null = null_quantiles(reference, int(sum(code_counts.values())), cfg.null_quantile,
                          cfg.bootstrap_samples) or {}
    rows = [
        ("code_psi", psi(codes, reference["code_shares"]), cfg.code_psi_threshold),
        ("code_kl", kl_divergence(codes, reference["code_shares"]), cfg.code_kl_threshold),
        ("confidence_psi", psi(conf_now, conf_ref), cfg.confidence_psi_threshold),
    ]
    out = []
    for m, v, floor in rows:
        t = max(floor, null.get(m, 0.0))
        out.append({"metric": m, "value": round(v, 6), "threshold": round(t, 6),
                    "breached": bool(v > t)})
    return out
