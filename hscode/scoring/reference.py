"""What a model's hold-out says about its scores: the review threshold and drift reference.

Every artifact carries ``scoring_reference.json``, written after training and calibration
from two splits it never trained on, both drawn like the catalog (any assurance level):

* the **review threshold** is *chosen* on the calibration split: the lowest confidence ``t``
  such that calibration predictions with confidence >= ``t`` are at least
  ``review_precision`` (97%) correct;
* a product whose description the catalog itself files under several HS6 codes
  (``conflicting_code``, flagged by the clean job over the whole snapshot) is **never
  auto-accepted**, however confident the model: the text does not decide its code. Such rows
  are *ineligible*: the threshold is chosen on the eligible calibration rows, and on the test
  split a row is auto-accepted when it is eligible and confident enough (coverage stays a
  share of all rows);
* it is *reported* on the test split, where nothing was chosen: the precision of the rows it
  auto-accepts and the share of rows it accepts (**coverage**, what share of the catalog is
  expected to skip review), each with a 95% Wilson interval;
* the **drift reference**: the training data's code shares, the test split's confidence
  histogram and predicted codes, against which each night's predictions are compared.
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
    """A review threshold, where it was chosen and what it gives on the test split."""

    value: float  # confidence >= value: auto-accepted; below: needs review
    target_precision: float
    precision: float | None  # of auto-accepted test rows (None: none accepted)
    coverage: float  # share of test rows auto-accepted
    support: int  # test rows
    precision_low: float | None = None  # 95% Wilson interval of precision
    precision_high: float | None = None
    coverage_low: float | None = None  # 95% Wilson interval of coverage
    coverage_high: float | None = None
    chosen_on: str = "holdout"  # calibration (honest) | holdout (old artifacts) | fixed
    chosen_precision: float | None = None  # precision on the rows it was chosen on


def choose_threshold(confidence: np.ndarray, correct: np.ndarray, target: float,
                     eligible: np.ndarray | None = None) -> Threshold:
    """The lowest confidence cut whose accepted rows are at least ``target`` precise.

    Cuts are only placed between distinct confidence values (ties are accepted or reviewed
    together). With no cut reaching the target, everything goes to review (value above 1).
    Rows not ``eligible`` (never auto-accepted) take no part in the choice; coverage is
    the accepted share of all rows.
    """
    conf = np.asarray(confidence, float)
    ok = np.asarray(correct, bool)
    total = len(conf)
    if eligible is not None:
        keep = np.asarray(eligible, bool)
        conf, ok = conf[keep], ok[keep]
    n = len(conf)
    if n == 0:
        return Threshold(float(np.nextafter(1.0, 2.0)), target, None, 0.0, total)
    order = np.argsort(-conf, kind="stable")
    c, hit = conf[order], ok[order]
    precision = np.cumsum(hit) / np.arange(1, n + 1)
    boundary = np.r_[c[:-1] > c[1:], True]  # the last row of each tie group
    candidates = np.nonzero(boundary & (precision >= target))[0]
    if not len(candidates):
        return Threshold(float(np.nextafter(1.0, 2.0)), target, None, 0.0, total)
    k = int(candidates.max())
    return Threshold(float(c[k]), target, float(precision[k]), (k + 1) / total, total)


def confidence_histogram(confidence: np.ndarray) -> list[float]:
    """Shares of ``confidence`` in the ten bins [0, .1), ..., [.9, 1]."""
    counts, _ = np.histogram(np.clip(np.asarray(confidence, float), 0, 1), CONFIDENCE_BINS)
    total = counts.sum()
    return (counts / total).tolist() if total else [0.0] * (len(CONFIDENCE_BINS) - 1)


def eligible_rows(rows: dict[str, Any] | pd.DataFrame) -> np.ndarray:
    """Which rows may be auto-accepted: those whose description is not filed under several
    codes (``conflicting_code``; absent: every row, as in references written before)."""
    if isinstance(rows, pd.DataFrame):
        flag = rows["conflicting_code"] if "conflicting_code" in rows else None
        n = len(rows)
    else:
        flag = rows.get("conflicting")
        n = len(rows["confidence"])
    if flag is None:
        return np.ones(n, dtype=bool)
    return ~pd.Series(np.asarray(flag, dtype=object), dtype="boolean").fillna(False).to_numpy(
        dtype=bool)


def _outcome(probs: np.ndarray, labels: list[str], rows: pd.DataFrame) -> dict[str, list[Any]]:
    conf = probs.max(axis=1) if len(probs) else np.zeros(0)
    pred = np.asarray(labels, dtype=object)[probs.argmax(axis=1)] if len(probs) else \
        np.array([], dtype=object)
    return {"confidence": [round(float(x), 6) for x in conf],
            "correct": [bool(x) for x in (pred == rows["hs6"].to_numpy())],
            "predicted": [str(x) for x in pred],
            "conflicting": [bool(x) for x in ~eligible_rows(rows)]}


def build_reference(train: pd.DataFrame, test: pd.DataFrame, probs: np.ndarray,
                    labels: list[str], calibration: pd.DataFrame | None = None,
                    calibration_probs: np.ndarray | None = None) -> dict[str, Any]:
    """The reference of a model from its training rows and its held-out probabilities.

    Args:
        train: Training rows (``product_id``, ``hs6``); up-sampled copies are counted once.
        test: Test rows (``hs6``, optionally ``conflicting_code``), aligned with ``probs``.
        probs: Test class probabilities (calibrated), columns = ``labels``.
        labels: The model's codes.
        calibration: Calibration rows (like ``test``), aligned with ``calibration_probs``; the
            review threshold is chosen on them.
        calibration_probs: Their calibrated probabilities.
    """
    shares = train.drop_duplicates("product_id")["hs6"].value_counts(normalize=True)
    held = _outcome(probs, labels, test)
    ref = {
        "code_shares": {str(k): float(v) for k, v in shares.sort_index().items()},
        "confidence_bins": CONFIDENCE_BINS.tolist(),
        "confidence_hist": confidence_histogram(np.asarray(held["confidence"], float)),
        "holdout": held,
    }
    if calibration is not None and calibration_probs is not None and len(calibration):
        ref["calibration"] = _outcome(calibration_probs, labels, calibration)
    return ref


def compute_reference(artifact: Path, prepared: Path) -> dict[str, Any]:
    """Score the calibration and test splits of ``prepared`` with the saved artifact."""
    from hscode.predictor import load_predictor
    from hscode.training.data import load_prepared

    data = load_prepared(prepared)
    predictor = load_predictor(artifact)
    return build_reference(data.train, data.test,
                           predictor.predict_proba(list(data.test["text"])), predictor.labels,
                           data.calibration,
                           predictor.predict_proba(list(data.calibration["text"])))


def save_reference(artifact: Path, ref: dict[str, Any]) -> dict[str, Any]:
    """Write ``ref`` into the artifact (``scoring_reference.json``)."""
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


def threshold_on(conf: np.ndarray, correct: np.ndarray, value: float, target: float,
                 chosen_on: str, chosen_precision: float | None = None,
                 eligible: np.ndarray | None = None) -> Threshold:
    """What threshold ``value`` gives on rows (``conf``, ``correct``), with 95% intervals:
    a row is auto-accepted when it is ``eligible`` and ``conf >= value``; coverage is the
    accepted share of all rows."""
    from hscode.calibration import wilson

    conf, ok = np.asarray(conf, float), np.asarray(correct, bool)
    accepted = conf >= value
    if eligible is not None:
        accepted &= np.asarray(eligible, bool)
    prec = wilson(int(ok[accepted].sum()), int(accepted.sum()))
    cov = wilson(int(accepted.sum()), len(conf))
    return Threshold(float(value), target, prec.value, cov.value or 0.0, len(conf),
                     prec.low, prec.high, cov.low, cov.high, chosen_on, chosen_precision)


def review_threshold(reference: dict[str, Any], target_precision: float,
                     fixed: float | None = None) -> Threshold:
    """The review threshold and its figures on the test split.

    A ``fixed`` threshold is taken as given. Otherwise it is chosen on the calibration
    split (artifacts from before the calibration split existed: on the test split itself,
    marked ``chosen_on="holdout"``).
    """
    test = reference["holdout"]
    conf = np.asarray(test["confidence"], float)
    ok = np.asarray(test["correct"], bool)
    eligible = eligible_rows(test)
    if fixed is not None:
        return threshold_on(conf, ok, fixed, target_precision, "fixed", eligible=eligible)
    source = "calibration" if reference.get("calibration") else "holdout"
    rows = reference[source]
    chosen = choose_threshold(np.asarray(rows["confidence"], float),
                              np.asarray(rows["correct"], bool), target_precision,
                              eligible_rows(rows))
    return threshold_on(conf, ok, chosen.value, target_precision, source, chosen.precision,
                        eligible)
