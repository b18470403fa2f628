"""After a model is saved: calibrate it, measure it, write its scoring reference.

One function for every kind of artifact (network, SVM, ensemble), so every candidate's
figures come from the same rows by the same code:

1. the temperature is fitted on the **calibration split** (``calibration.json``);
2. the **test split** (nothing chosen on it) gives the metrics (``metrics.json``) and the
   calibration error before and after;
3. the scoring reference (review threshold chosen on calibration, reported on test; drift
   reference) is written (see :mod:`hscode.scoring.reference`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hscode.calibration import (
    CALIBRATION_FILE,
    expected_calibration_error,
    fit_temperature,
    softmax,
)

if TYPE_CHECKING:
    from hscode.predictor import Predictor


def calibration_record(cal_scores: np.ndarray, cal_truth: list[str], test_scores: np.ndarray,
                       test_truth: list[str], labels: list[str]) -> dict[str, Any]:
    """Fit the temperature on the calibration rows; the calibration error on the test rows
    before (T = 1) and after."""
    temperature = fit_temperature(cal_scores, cal_truth, labels) if len(cal_scores) else 1.0
    out: dict[str, Any] = {"temperature": temperature, "fitted_on": "calibration",
                           "calibration_rows": len(cal_truth), "test_rows": len(test_truth)}
    if not len(test_truth):
        return out
    # a temperature changes no prediction: one set of right/wrong rows for both ECEs
    pred = np.asarray(labels, dtype=object)[np.asarray(test_scores).argmax(axis=1)]
    correct = pred == np.asarray(test_truth, dtype=object)
    for name, t in (("before", 1.0), ("after", temperature)):
        confidence = softmax(test_scores, t).max(axis=1)
        out[f"ece_{name}"] = expected_calibration_error(confidence, correct)
        out[f"mean_confidence_{name}"] = float(confidence.mean())
    out["test_accuracy"] = float(correct.mean())
    return out


def reviewed_accuracy(test: Any, scores: np.ndarray, labels: list[str]) -> dict[str, Any]:
    """HS6 accuracy on the test rows a reviewer labelled (the labels people vouched for):
    ``reviewed_test_rows`` and ``reviewed_hs6_accuracy`` (None without such rows)."""
    mask = np.asarray(test["reviewed"], bool) if "reviewed" in test and len(scores) else \
        np.zeros(len(test), bool)
    if not mask.any():
        return {"reviewed_test_rows": 0, "reviewed_hs6_accuracy": None}
    predicted = np.asarray(labels, dtype=object)[scores[mask].argmax(axis=1)]
    truth = np.asarray(test["hs6"], dtype=object)[mask]
    return {"reviewed_test_rows": int(mask.sum()),
            "reviewed_hs6_accuracy": float((predicted == truth).mean())}


def finalise_artifact(artifact: Path, prepared: Path, predictor: Predictor | None = None
                      ) -> dict[str, Any]:
    """Calibrate ``artifact`` on ``prepared``'s calibration split, write its test metrics
    (kept when the trainer wrote them) and its scoring reference; return the calibration
    record. ``predictor``: the artifact already loaded (:class:`hscode.predictor.Predictor`),
    else it is loaded here."""
    from hscode.predictor import load_predictor
    from hscode.scoring.reference import build_reference, save_reference
    from hscode.training.data import load_prepared
    from hscode.training.metrics import classification_metrics, top_k_codes

    data = load_prepared(prepared)
    predictor = predictor if predictor is not None else load_predictor(artifact)
    cal_scores = predictor.raw_scores(list(data.calibration["text"]))
    test_scores = predictor.raw_scores(list(data.test["text"]))
    record = calibration_record(cal_scores, list(data.calibration["hs6"]), test_scores,
                                list(data.test["hs6"]), predictor.labels)
    (artifact / CALIBRATION_FILE).write_text(json.dumps(record, indent=2), encoding="utf-8")
    metrics_file = artifact / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    if not metrics.get("rows") and len(test_scores):
        lab = np.asarray(predictor.labels, dtype=object)
        metrics = classification_metrics(list(data.test["hs6"]),
                                         list(lab[test_scores.argmax(axis=1)]),
                                         top_k_codes(test_scores, predictor.labels))
    metrics.update(ece=record.get("ece_after"), ece_uncalibrated=record.get("ece_before"),
                   temperature=record["temperature"], **reviewed_accuracy(
                       data.test, test_scores, predictor.labels))
    metrics_file.write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    # the reference from the same scores, calibrated: each split is scored once
    t = record["temperature"]
    save_reference(artifact, build_reference(
        data.train, data.test, softmax(test_scores, t) if len(test_scores) else test_scores,
        predictor.labels, data.calibration,
        softmax(cal_scores, t) if len(cal_scores) else cal_scores))
    return record
