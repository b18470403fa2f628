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


class UnsafeModelError(ValueError):
    """A model file that could run code when loaded; refused."""


def load_predictor(artifact: Path) -> Predictor:
    """Load a model in safe mode: nothing in the file can run code.

    ``model.keras`` loads with Keras' ``safe_mode`` (no Lambda layers, only registered
    classes); the SVM's ``model.skops`` with skops (only scikit-learn/NumPy/SciPy types skops
    trusts by default). Pickles (``model.joblib``, ``*.pkl``) are refused: retrain the model.

    Raises:
        FileNotFoundError: when the folder holds no model.
        UnsafeModelError: when it holds only a pickle, or a file with untrusted content.
    """
    labels = json.loads((artifact / "labels.json").read_text())
    if (artifact / "model.keras").is_file():
        import tensorflow as tf

        import hscode.models.text  # noqa: F401 - registers SubwordTokens for loading

        try:
            model = tf.keras.models.load_model(artifact / "model.keras", safe_mode=True)
        except ValueError as exc:
            if "safe_mode" not in str(exc) and "Lambda" not in str(exc):
                raise
            raise UnsafeModelError(f"{artifact / 'model.keras'} refused in safe mode: {exc}"
                                   ) from exc
        return Predictor(artifact, labels, "keras", model)
    if (artifact / "model.skops").is_file():
        import skops.io as sio

        try:
            model = sio.load(artifact / "model.skops")  # default-trusted types only
        except Exception as exc:  # skops raises UntrustedTypesFoundException (a ValueError)
            raise UnsafeModelError(f"{artifact / 'model.skops'} refused: {exc}") from exc
        return Predictor(artifact, labels, "svm", model)
    pickles = [p.name for p in artifact.glob("*") if p.suffix in {".joblib", ".pkl", ".pickle"}]
    if pickles:
        raise UnsafeModelError(f"{artifact} holds only pickled model files {pickles}: loading "
                               "one could run arbitrary code, so it is refused; retrain the "
                               "model (artifacts are written as model.keras / model.skops)")
    raise FileNotFoundError(f"no model.keras or model.skops in {artifact}")
