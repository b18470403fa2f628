"""The SVM baseline on disk as plain arrays: ``model.npz``, read back without pickle.

What is stored is what the fitted pipeline needs to score, nothing that runs code: per
TF-IDF vectoriser its settings (a whitelist of plain values, as JSON), its terms in column
order and its idf weights; the linear SVMs' sparse weights (CSR arrays), intercepts and
codes. :func:`load_svm` rebuilds a scikit-learn ``Pipeline`` of ``FeatureUnion`` of
``TfidfVectorizer`` and ``LinearSVC`` from them, with ``np.load(allow_pickle=False)``: an
object array (the only way a ``.npz`` can carry a pickle) is refused.

Before, the artifact was a skops file: 22 s to write and 11 s to read on the reference data,
because skops encodes each of the vectorisers' 197,458 vocabulary entries as its own JSON
object (and deflates 128 MB); every training, promotion and nightly scoring run paid that.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from hscode.files import temporary_beside

FILE = "model.npz"
FORMAT = 1
COEF_LAYOUT = "csc"  # the weights stored by column (see save_svm)
# the TfidfVectorizer settings a stored model may carry: plain values only (an analyzer,
# tokenizer or preprocessor callable cannot be stored, so none can be injected)
VECTORIZER_SETTINGS = ("analyzer", "ngram_range", "sublinear_tf", "min_df", "max_df",
                       "token_pattern", "lowercase", "norm", "use_idf", "smooth_idf", "binary",
                       "strip_accents")
ANALYZERS = ("word", "char", "char_wb")


def save_svm(model: Any, path: Path) -> Path:
    """Write the fitted TF-IDF + linear SVM ``model`` (``tfidf`` and ``svm`` steps, the SVM
    with a sparse ``coef_``) to ``path`` (uncompressed: written and read at disk speed).

    Raises:
        ValueError: when a vectoriser has a setting outside :data:`VECTORIZER_SETTINGS`'s
            plain values (a callable analyzer, say), which could not be stored.
    """
    import scipy.sparse as sp

    steps = model.named_steps
    arrays: dict[str, np.ndarray] = {}
    vectorizers = []
    for i, (name, vec) in enumerate(steps["tfidf"].transformer_list):
        params = {k: vec.get_params()[k] for k in VECTORIZER_SETTINGS}
        if params["analyzer"] not in ANALYZERS or vec.tokenizer or vec.preprocessor:
            raise ValueError(f"vectoriser {name!r}: only {ANALYZERS} analyzers without a "
                             "custom tokenizer or preprocessor can be stored")
        vectorizers.append({"name": name, "params": params})
        terms = [b""] * len(vec.vocabulary_)
        for term, column in vec.vocabulary_.items():
            terms[column] = term.encode("utf-8")
        # the terms in column order as one UTF-8 blob and where each ends (a fixed-width
        # string array would pad every term to the longest, in UTF-32)
        arrays[f"terms_{i}"] = np.frombuffer(b"".join(terms), dtype=np.uint8)
        arrays[f"term_ends_{i}"] = np.cumsum([len(t) for t in terms], dtype=np.int64)
        arrays[f"idf_{i}"] = np.asarray(vec.idf_, dtype=np.float64)
    svm = steps["svm"]
    # by column: scoring multiplies by coef_.T, which is then row-major, as scikit-learn's
    # sparse product wants it (a row-major coef_ was transposed on every call: 13 % of
    # predict); COEF_LAYOUT says so in the file
    coef = sp.csc_matrix(svm.coef_)
    arrays.update(coef_data=coef.data, coef_indices=coef.indices, coef_indptr=coef.indptr,
                  coef_shape=np.asarray(coef.shape, dtype=np.int64),
                  intercept=np.asarray(svm.intercept_, dtype=np.float64).ravel(),
                  classes=np.asarray(svm.classes_).astype(str),
                  config=np.asarray(json.dumps({"format": FORMAT, "vectorizers": vectorizers,
                                                "svm": {"C": svm.C, "tol": svm.tol},
                                                "coef_layout": COEF_LAYOUT})))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_beside(path)
    with tmp.open("wb") as f:
        np.savez(f, **arrays)
    tmp.replace(path)  # atomic: a model file is complete or absent
    return path


def load_svm(path: Path) -> Any:
    """The pipeline stored by :func:`save_svm` (same ``decision_function``, bit for bit).

    Raises:
        ValueError: when the file holds an object array (a pickle), an unknown format, a
            setting that is not a plain value of :data:`VECTORIZER_SETTINGS`, or lacks an
            array.
    """
    try:
        return _load(path)
    except KeyError as exc:  # an array the format requires is missing
        raise ValueError(f"{path}: not an SVM model file ({exc})") from exc


def _load(path: Path) -> Any:
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion, Pipeline
    from sklearn.svm import LinearSVC

    with np.load(path, allow_pickle=False) as z:
        config = json.loads(str(z["config"]))
        if config.get("format") != FORMAT:
            raise ValueError(f"{path}: unknown SVM format {config.get('format')!r}")
        union = []
        for i, entry in enumerate(config["vectorizers"]):
            params = _plain_settings(entry["params"], path)
            terms = _terms(z[f"terms_{i}"], z[f"term_ends_{i}"])
            vec = TfidfVectorizer(**params, vocabulary={t: j for j, t in enumerate(terms)})
            vec.idf_ = z[f"idf_{i}"]
            union.append((str(entry["name"]), vec))
        svm = LinearSVC(C=float(config["svm"]["C"]), tol=float(config["svm"]["tol"]))
        # files written before the layout was recorded hold the weights by row
        layout = {"csc": sp.csc_matrix, "csr": sp.csr_matrix}[config.get("coef_layout", "csr")]
        coef = layout((z["coef_data"], z["coef_indices"], z["coef_indptr"]),
                      shape=tuple(int(n) for n in z["coef_shape"]))
        svm.coef_ = coef.tocsc()  # no copy when it is already by column
        svm.intercept_ = z["intercept"]
        svm.classes_ = z["classes"].astype(object)
        svm.n_features_in_ = svm.coef_.shape[1]
    return Pipeline([("tfidf", FeatureUnion(union)), ("svm", svm)])


def _terms(blob: np.ndarray, ends: np.ndarray) -> list[str]:
    raw = blob.tobytes()
    starts = np.concatenate([[0], ends[:-1]]).tolist()
    return [raw[a:b].decode("utf-8") for a, b in zip(starts, ends.tolist(), strict=True)]


def _plain_settings(params: dict[str, Any], path: Path) -> dict[str, Any]:
    unknown = set(params) - set(VECTORIZER_SETTINGS)
    if unknown or params.get("analyzer") not in ANALYZERS:
        raise ValueError(f"{path}: vectoriser settings refused: {sorted(unknown) or params}")
    plain = (str, int, float, bool, type(None))
    for key, value in params.items():
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(v, plain) for v in items):
            raise ValueError(f"{path}: vectoriser setting {key}={value!r} is not a plain value")
    return {**params, "ngram_range": tuple(params["ngram_range"])}
