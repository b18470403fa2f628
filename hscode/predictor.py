"""Load a trained artifact and predict codes for model texts (selection, scoring)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class Predictor:
    """A loaded model: ``predict_proba(texts)`` gives one row of scores per text."""

    artifact: Path
    labels: list[str]
    kind: str  # keras or svm
    model: Any

    def predict_proba(self, texts: Sequence[str], batch_size: int = 2048) -> np.ndarray:
        """Class probabilities (SVM: softmax of the decision scores), columns = ``labels``."""
        arr = np.asarray(list(texts), dtype=object)
        if not len(arr):
            return np.zeros((0, len(self.labels)))
        if self.kind == "svm":
            scores = self.model.decision_function(arr)
            scores = scores - scores.max(axis=1, keepdims=True)
            e = np.exp(scores)
            return e / e.sum(axis=1, keepdims=True)
        return self.model.predict(arr.astype(str).reshape(-1, 1), batch_size=batch_size,
                                  verbose=0)

    def predict(self, texts: Sequence[str]) -> list[str]:
        """The most probable code per text."""
        probs = self.predict_proba(texts)
        return [self.labels[i] for i in probs.argmax(axis=1)] if len(probs) else []


def load_predictor(artifact: Path) -> Predictor:
    """Load ``model.keras`` (safe mode: only registered layers) or the SVM's ``model.joblib``.

    Raises:
        FileNotFoundError: when the folder holds no model.
    """
    labels = json.loads((artifact / "labels.json").read_text())
    if (artifact / "model.keras").is_file():
        import tensorflow as tf

        import hscode.models.text  # noqa: F401 - registers SubwordTokens for loading

        model = tf.keras.models.load_model(artifact / "model.keras", safe_mode=True)
        return Predictor(artifact, labels, "keras", model)
    if (artifact / "model.joblib").is_file():
        import joblib

        return Predictor(artifact, labels, "svm", joblib.load(artifact / "model.joblib"))
    raise FileNotFoundError(f"no model.keras or model.joblib in {artifact}")
