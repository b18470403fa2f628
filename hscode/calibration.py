"""Confidence that keeps its promise: temperature scaling, calibration error, intervals.

Every model's raw scores (a network's log-probabilities, the SVM's margins, an ensemble's
log of its combined probabilities) become probabilities as ``softmax(scores / T)``. The one
parameter ``T`` is fitted by minimising the negative log-likelihood on the **calibration
split** (rows the model never trained on and no figure is reported on); it changes no
prediction, only how sure the model says it is. Calibration error and the review threshold's
precision are then measured on the untouched test split.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

CALIBRATION_FILE = "calibration.json"
MIN_T, MAX_T = 0.01, 100.0


def softmax(scores: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise ``softmax(scores / temperature)``."""
    z = np.asarray(scores, float) / temperature  # one array, then updated in place (a
    z -= z.max(axis=1, keepdims=True)  # CV fold's scores are ~30M values: temporaries cost
    np.exp(z, out=z)  # more than the arithmetic)
    z /= z.sum(axis=1, keepdims=True)
    return z


def label_index(truth: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """Column of each true code in ``labels``; -1 for a code the model does not know."""
    index = {c: i for i, c in enumerate(labels)}
    return np.array([index.get(t, -1) for t in truth], dtype=np.int64)


def nll(scores: np.ndarray, target: np.ndarray, temperature: float) -> float:
    """Mean negative log-likelihood of ``target`` columns under ``softmax(scores / T)``."""
    z = np.asarray(scores, float) / temperature
    m = z.max(axis=1)
    log_norm = m + np.log(np.exp(z - m[:, None]).sum(axis=1))
    return float(np.mean(log_norm - z[np.arange(len(z)), target]))


def fit_temperature(scores: np.ndarray, truth: Sequence[str], labels: Sequence[str]) -> float:
    """The temperature minimising the NLL of the true codes the model knows.

    Rows whose code is not among ``labels`` carry no likelihood to fit (they still count as
    errors in every reported figure). With no such row, ``T = 1``.
    """
    return fit_temperature_blocks([(scores, truth, labels)])


def fit_temperature_blocks(blocks: Sequence[tuple[np.ndarray, Sequence[str], Sequence[str]]]
                           ) -> float:
    """One temperature for several ``(scores, truth, labels)`` blocks (e.g. the other
    folds of a cross-validation, each with its own code columns): minimises their pooled
    NLL over rows with a known code."""
    from scipy.optimize import minimize_scalar

    data = []
    for scores, truth, labels in blocks:
        target = label_index(truth, labels)
        known = target >= 0
        if known.any():
            data.append((np.asarray(scores, float)[known], target[known]))
    rows = sum(len(t) for _, t in data)
    if not rows:
        return 1.0

    def pooled(log_t: float) -> float:
        t = float(np.exp(log_t))
        return sum(nll(s, y, t) * len(y) for s, y in data) / rows

    res = minimize_scalar(pooled, bounds=(np.log(MIN_T), np.log(MAX_T)), method="bounded",
                          options={"xatol": 1e-4})
    return float(np.exp(res.x))


def log_probabilities(probs: np.ndarray) -> np.ndarray:
    """Probabilities as scores for :func:`softmax` (``log``, floored at 1e-12)."""
    return np.log(np.clip(probs, 1e-12, 1))


def reliability_table(confidence: np.ndarray, correct: np.ndarray, bins: int = 10
                      ) -> pd.DataFrame:
    """Per equal-width confidence bin: rows, mean confidence and accuracy (the reliability
    diagram)."""
    conf = np.asarray(confidence, float)
    ok = np.asarray(correct, bool)
    idx = np.clip((conf * bins).astype(int), 0, bins - 1)
    rows = []
    for b in range(bins):
        sel = idx == b
        rows.append({"bin": f"{b / bins:.1f}-{(b + 1) / bins:.1f}", "rows": int(sel.sum()),
                     "confidence": float(conf[sel].mean()) if sel.any() else np.nan,
                     "accuracy": float(ok[sel].mean()) if sel.any() else np.nan})
    return pd.DataFrame(rows)


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray,
                               bins: int = 15) -> float:
    """ECE: the row-weighted mean gap between confidence and accuracy over the bins of
    :func:`reliability_table` (top-1 confidence)."""
    if not len(confidence):
        return 0.0
    t = reliability_table(confidence, correct, bins)
    t = t[t["rows"] > 0]
    return float((t["rows"] * (t["confidence"] - t["accuracy"]).abs()).sum() / t["rows"].sum())


@dataclass(frozen=True)
class Interval:
    """A proportion with its Wilson score interval."""

    value: float | None
    low: float | None
    high: float | None
    n: int


def wilson(successes: int, n: int, z: float = 1.959964) -> Interval:
    """The Wilson score interval of ``successes / n`` (95% by default)."""
    if n <= 0:
        return Interval(None, None, None, 0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return Interval(float(p), float(max(0.0, centre - half)), float(min(1.0, centre + half)), n)
