"""What a model's hold-out says about its scores: the review threshold and drift reference.

Every artifact carries ``scoring_reference.json``, written after training from the
hold-out (test split) it never saw:

* the **review threshold**: the lowest confidence ``t`` such that hold-out predictions with
  confidence >= ``t`` are at least ``review_precision`` (97%) correct; the share of hold-out
  rows above it is the **coverage** (how much of the catalog is expected to be auto-accepted);
* the **drift reference**: the training data's code shares and the hold-out's confidence
  histogram, against which each night's predictions are compared.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REFERENCE_FILE = "scoring_reference.json"
CONFIDENCE_BINS = np.linspace(0.0, 1.0, 11)


@dataclass(frozen=True)
class Threshold:
    """A review threshold and what it gives on the hold-out."""

    value: float  # confidence >= value: auto-accepted; below: needs review
    target_precision: float
    precision: float | None  # of auto-accepted hold-out rows (None: none accepted)
    coverage: float  # share of hold-out rows auto-accepted
    support: int  # hold-out rows


def choose_threshold(confidence: np.ndarray, correct: np.ndarray, target: float) -> Threshold:
    """The lowest confidence cut whose accepted rows are at least ``target`` precise.

    Cuts are only placed between distinct confidence values (ties are accepted or reviewed
    together). With no cut reaching the target, everything goes to review (value above 1).
    """
    conf = np.asarray(confidence, float)
    ok = np.asarray(correct, bool)
    n = len(conf)
    if n == 0:
        return Threshold(float(np.nextafter(1.0, 2.0)), target, None, 0.0, 0)
    order = np.argsort(-conf, kind="stable")
    c, hit = conf[order], ok[order]
    precision = np.cumsum(hit) / np.arange(1, n + 1)
    boundary = np.r_[c[:-1] > c[1:], True]  # the last row of each tie group
    candidates = np.nonzero(boundary & (precision >= target))[0]
    if not len(candidates):
        return Threshold(float(np.nextafter(1.0, 2.0)), target, None, 0.0, n)
    k = int(candidates.max())
    return Threshold(float(c[k]), target, float(precision[k]), (k + 1) / n, n)


def confidence_histogram(confidence: np.ndarray) -> list[float]:
    """Shares of ``confidence`` in the ten bins [0, .1), ..., [.9, 1]."""
    counts, _ = np.histogram(np.clip(np.asarray(confidence, float), 0, 1), CONFIDENCE_BINS)
    total = counts.sum()
    return (counts / total).tolist() if total else [0.0] * (len(CONFIDENCE_BINS) - 1)


def build_reference(train: pd.DataFrame, test: pd.DataFrame, probs: np.ndarray,
                    labels: list[str]) -> dict[str, Any]:
    """The reference of a model from its training rows and its hold-out probabilities.

    Args:
        train: Training rows (``product_id``, ``hs6``); up-sampled copies are counted once.
        test: Hold-out rows (``hs6``), aligned with ``probs``.
        probs: Hold-out class probabilities, columns = ``labels``.
        labels: The model's codes.
    """
    shares = train.drop_duplicates("product_id")["hs6"].value_counts(normalize=True)
    conf = probs.max(axis=1) if len(probs) else np.zeros(0)
    pred = np.asarray(labels, dtype=object)[probs.argmax(axis=1)] if len(probs) else []
    return {
        "code_shares": {str(k): float(v) for k, v in shares.sort_index().items()},
        "confidence_bins": CONFIDENCE_BINS.tolist(),
        "confidence_hist": confidence_histogram(conf),
        "holdout": {"confidence": [round(float(x), 6) for x in conf],
                    "correct": [bool(x) for x in (np.asarray(pred) == test["hs6"].to_numpy())]},
    }


def compute_reference(artifact: Path, prepared: Path) -> dict[str, Any]:
    """Score the hold-out of ``prepared`` with the saved artifact; its reference."""
    from hscode.predictor import load_predictor
    from hscode.training.data import load_prepared

    data = load_prepared(prepared)
    predictor = load_predictor(artifact)
    return build_reference(data.train, data.test,
                           predictor.predict_proba(list(data.test["text"])), predictor.labels)


def write_reference(artifact: Path, prepared: Path) -> dict[str, Any]:
    """Compute the reference and write it into the artifact (``scoring_reference.json``)."""
    ref = compute_reference(artifact, prepared)
    (artifact / REFERENCE_FILE).write_text(json.dumps(ref), encoding="utf-8")
    return ref


def load_reference(artifact: Path) -> dict[str, Any]:
    """The artifact's reference; artifacts from before it existed get it computed from the
    prepared data named in their lineage (not written: registry copies stay immutable).

    Raises:
        FileNotFoundError: when neither the file nor the lineage's prepared data exist.
    """
    path = artifact / REFERENCE_FILE
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    lineage = json.loads((artifact / "lineage.json").read_text(encoding="utf-8"))
    return compute_reference(artifact, Path(lineage["prepared_dir"]))


def review_threshold(reference: dict[str, Any], target_precision: float,
                     fixed: float | None = None) -> Threshold:
    """The configured fixed threshold (with its hold-out precision), else the derived one."""
    conf = np.asarray(reference["holdout"]["confidence"], float)
    ok = np.asarray(reference["holdout"]["correct"], bool)
    if fixed is None:
        return choose_threshold(conf, ok, target_precision)
    accepted = conf >= fixed
    return Threshold(float(fixed), target_precision,
                     float(ok[accepted].mean()) if accepted.any() else None,
                     float(accepted.mean()) if len(conf) else 0.0, len(conf))


