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
    """A loaded model: ``predict_proba(texts)`` gives one row of probabilities per text.

    Raw scores (a network's log-probabilities, the SVM's margins, an ensemble's combined
    log-probabilities) become probabilities as ``softmax(scores / temperature)``; the
    temperature comes from the artifact's ``calibration.json`` (1 when uncalibrated).
    """

    artifact: Path
    labels: list[str]
    kind: str  # keras, svm or ensemble
    model: Any
    temperature: float = 1.0

    def raw_scores(self, texts: Sequence[str], batch_size: int = 2048) -> np.ndarray:
        """Uncalibrated scores, columns = ``labels``."""
        arr = np.asarray(list(texts), dtype=object)
        if not len(arr):
            return np.zeros((0, len(self.labels)))
        if self.kind == "svm":
            return np.asarray(self.model.decision_function(arr), float)
        from hscode.calibration import log_probabilities

        if self.kind == "ensemble":
            return log_probabilities(self.model.predict_proba(list(arr), batch_size))
        # texts of similar length in one batch: the network trims a batch to its longest
        # text, so a text's scores are the same in any batch and short batches cost less
        order = np.argsort([len(str(t).split()) for t in arr], kind="stable")
        scores = self.model.predict(arr[order].astype(str).reshape(-1, 1),
                                    batch_size=batch_size, verbose=0)
        out = np.empty_like(scores)
        out[order] = scores
        return log_probabilities(out)

    def predict_proba(self, texts: Sequence[str], batch_size: int = 2048) -> np.ndarray:
        """Calibrated class probabilities, columns = ``labels``."""
        from hscode.calibration import softmax

        scores = self.raw_scores(texts, batch_size)
        return softmax(scores, self.temperature) if len(scores) else scores

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """The most probable code per text."""
        probs = self.predict_proba(texts)
        return (np.asarray(self.labels, dtype=object)[probs.argmax(axis=1)] if len(probs)
                else np.array([], dtype=object))


SKOPS_TRUSTED = ["scipy.sparse._csr.csr_matrix"]


class UnsafeModelError(ValueError):
    """A model file that could run code when loaded; refused."""


def load_keras(path: Path) -> Any:
    """A ``.keras`` archive's model in safe mode, for inference (not compiled).

    The same two steps as Keras' ``load_model`` - the model from the archive's
    ``config.json`` through ``deserialize_keras_object(safe_mode=True)``, then its
    ``model.weights.h5`` - but the weights are read from a local copy: Keras 2.15 reads them
    through TensorFlow's file API inside the zip, where every backward seek re-reads the
    member (12 s for the Text-CNN's 100 MB of weights, 2 s this way, identical outputs).

    Raises:
        ValueError: from Keras, for a layer safe mode refuses (e.g. a ``Lambda``).
    """
    import shutil
    import tempfile
    import zipfile

    import tensorflow as tf

    import hscode.models.text  # noqa: F401 - registers SubwordTokens for loading

    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
        config["compile_config"] = None  # inference only, as load_model(compile=False)
        model = tf.keras.saving.deserialize_keras_object(config, safe_mode=True)
        with tempfile.TemporaryDirectory() as tmp:
            weights = Path(tmp) / "model.weights.h5"
            with archive.open("model.weights.h5") as src, weights.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 24)
            model.load_weights(weights)
    return model


def load_predictor(artifact: Path) -> Predictor:
    """Load a model in safe mode: nothing in the file can run code.

    ``model.keras`` loads with Keras' ``safe_mode`` (no Lambda layers, only registered
    classes); the SVM's ``model.npz`` as plain arrays without pickle
    (:mod:`hscode.training.svm_store`), and an older artifact's ``model.skops`` with skops
    (only scikit-learn/NumPy/SciPy types skops trusts by default, and scipy's CSR matrix).
    Pickles (``model.joblib``, ``*.pkl``) are refused: retrain the model.

    Raises:
        FileNotFoundError: when the folder holds no model.
        UnsafeModelError: when it holds only a pickle, or a file with untrusted content.
    """
    from hscode.calibration import CALIBRATION_FILE
    from hscode.training.svm_store import FILE as SVM_FILE
    from hscode.training.svm_store import load_svm

    labels = json.loads((artifact / "labels.json").read_text())
    cal = artifact / CALIBRATION_FILE
    temperature = float(json.loads(cal.read_text())["temperature"]) if cal.is_file() else 1.0
    if (artifact / "ensemble.json").is_file():
        from hscode.ensemble import load_ensemble

        return Predictor(artifact, labels, "ensemble", load_ensemble(artifact), temperature)
    if (artifact / "model.keras").is_file():
        try:
            model = load_keras(artifact / "model.keras")
        except ValueError as exc:
            if "safe_mode" not in str(exc) and "Lambda" not in str(exc):
                raise
            raise UnsafeModelError(f"{artifact / 'model.keras'} refused in safe mode: {exc}"
                                   ) from exc
        return Predictor(artifact, labels, "keras", model, temperature)
    if (artifact / SVM_FILE).is_file():
        try:
            model = load_svm(artifact / SVM_FILE)
        except ValueError as exc:  # an object array (a pickle), or a setting not plain
            raise UnsafeModelError(f"{artifact / SVM_FILE} refused: {exc}") from exc
        return Predictor(artifact, labels, "svm", model, temperature)
    if (artifact / "model.skops").is_file():  # written before the model.npz format
        import skops.io as sio

        try:
            # default-trusted types, and the SVM's sparse weights: skops reads a sparse
            # matrix with scipy's load_npz, pickles refused (allow_pickle=False)
            model = sio.load(artifact / "model.skops", trusted=SKOPS_TRUSTED)
        except Exception as exc:  # skops raises UntrustedTypesFoundException (a ValueError)
            raise UnsafeModelError(f"{artifact / 'model.skops'} refused: {exc}") from exc
        return Predictor(artifact, labels, "svm", model, temperature)
    pickles = [p.name for p in artifact.glob("*") if p.suffix in {".joblib", ".pkl", ".pickle"}]
    if pickles:
        raise UnsafeModelError(f"{artifact} holds only pickled model files {pickles}: loading "
                               "one could run arbitrary code, so it is refused; retrain the "
                               "model (artifacts are written as model.keras / model.npz)")
    raise FileNotFoundError(f"no model.keras, model.npz or ensemble.json in {artifact}")
