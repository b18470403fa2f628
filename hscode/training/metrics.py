"""Classification metrics reported for every model (networks and baseline alike)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _level_accuracy(y_true: Sequence[str], y_pred: Sequence[str], digits: int) -> float:
    t = np.array([c[:digits] for c in y_true])
    p = np.array([c[:digits] for c in y_pred])
    return float((t == p).mean()) if len(t) else 0.0


def classification_metrics(y_true: Sequence[str], y_pred: Sequence[str],
                           top_k: Sequence[Sequence[str]] | None = None) -> dict[str, Any]:
    """Accuracy, macro/weighted precision/recall/F1, top-3 and HS2/HS4/HS6 accuracy.

    Args:
        y_true: True HS6 codes.
        y_pred: Predicted HS6 codes.
        top_k: Per row, the model's best codes in order (for top-3 accuracy).
    """
    from sklearn.metrics import precision_recall_fscore_support

    out: dict[str, Any] = {"rows": len(y_true)}
    out["accuracy"] = _level_accuracy(y_true, y_pred, 6)
    for avg in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average=avg,
                                                     zero_division=0)
        out[f"{avg}_precision"], out[f"{avg}_recall"], out[f"{avg}_f1"] = (
            float(p), float(r), float(f))
    for digits in (2, 4, 6):
        out[f"hs{digits}_accuracy"] = _level_accuracy(y_true, y_pred, digits)
    if top_k is not None:
        hits = [t in list(k)[:3] for t, k in zip(y_true, top_k, strict=True)]
        out["top3_accuracy"] = float(np.mean(hits)) if hits else 0.0
    return out


def top_k_codes(probabilities: np.ndarray, labels: Sequence[str], k: int = 3) -> list[list[str]]:
    """The ``k`` most probable codes per row, best first."""
    idx = np.argsort(-probabilities, axis=1)[:, :k]
    lab = np.asarray(labels)
    return [list(lab[row]) for row in idx]
