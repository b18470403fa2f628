"""The classical reference: TF-IDF (word 1-2 + char 2-5 grams) + LinearSVC."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

C = 0.5  # SVM regularisation (the plain reference)
TOL = 1e-3  # liblinear stopping tolerance (1e-4 took ~12 min on 1,753 codes for the same figure)


def build_baseline(seed: int = 42, smote_targets: dict[str, int] | None = None
                   ) -> Any:
    """The pipeline: word and character TF-IDF features side by side, a linear SVM per code
    (one-vs-rest, the codes' binary problems fitted on working sets in parallel on every
    core: :mod:`hscode.training.linear_ovr`).

    With ``smote_targets`` (rows per minority code), SMOTE (imbalanced-learn) synthesises
    minority rows in the TF-IDF space before the SVM, instead of duplicating rows.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion, Pipeline

    from hscode.training.linear_ovr import WorkingSetLinearSVC

    features = FeatureUnion([
        ("word", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True,
                                 min_df=1, token_pattern=r"\S+")),
        ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True,
                                 min_df=2)),
    ])
    svm = WorkingSetLinearSVC(C=C, tol=TOL, random_state=seed)
    if smote_targets:
        from imblearn.over_sampling import SMOTE
        from imblearn.pipeline import Pipeline as ImbPipeline

        smote = SMOTE(sampling_strategy=smote_targets, k_neighbors=3, random_state=seed)
        return ImbPipeline([("tfidf", features), ("smote", smote), ("svm", svm)])
    return Pipeline([("tfidf", features), ("svm", svm)])


def fit_baseline(train: pd.DataFrame, seed: int = 42,
                 smote_targets: dict[str, int] | None = None) -> Any:
    """The baseline fitted on ``train`` (text, hs6). Rows are not weighted: assurance
    weights made no difference to the SVM (0.665 weighted, 0.667 unweighted HS6 on the
    demo's test split), and the working-set fit (:mod:`hscode.training.linear_ovr`) takes none."""
    return build_baseline(seed, smote_targets).fit(train["text"], train["hs6"])


def fit_predict(train: pd.DataFrame, test: pd.DataFrame, seed: int = 42,
                smote_targets: dict[str, int] | None = None
                ) -> tuple[Any, list[str], list[list[str]]]:
    """Fit on ``train`` (see :func:`fit_baseline`); return the model, test predictions and
    top-3 codes."""
    from hscode.training.metrics import top_k_codes

    model = fit_baseline(train, seed, smote_targets)
    if not len(test):
        return model, [], []
    top3 = top_k_codes(model.decision_function(test["text"]), model.classes_)
    return model, [codes[0] for codes in top3], top3


def one_linear_model(svm: Any) -> Any:
    """The fitted SVMs as one scikit-learn ``LinearSVC`` whose ``coef_`` is a sparse matrix
    (a row per code): the same decision function, in scikit-learn's own type, stored as
    plain arrays (:mod:`hscode.training.svm_store`).

    An L2-regularised linear SVM's weights are zero on every feature none of its support
    vectors has: 95% of the 1,753 x 195,600 weights on the reference data, so a dense
    matrix (2.9 GB on disk) shrinks more than tenfold.
    """
    from sklearn.svm import LinearSVC

    one = LinearSVC(C=svm.C, tol=svm.tol, random_state=svm.random_state)
    # by column, as it is stored and scored (hscode.training.svm_store.save_svm)
    one.coef_, one.classes_ = svm.coef_.tocsc(), svm.classes_
    one.intercept_ = np.asarray(svm.intercept_, dtype=np.float64)
    one.n_features_in_ = svm.coef_.shape[1]
    return one


def save_baseline(model: Any, out_dir: Path) -> Path:
    """Persist as ``model.npz`` (:mod:`hscode.training.svm_store`: plain arrays, read back
    without pickle). SMOTE only acts while fitting, so the saved model is the plain TF-IDF
    + SVM pipeline (identical predictions), its SVMs as :func:`one_linear_model`."""
    from sklearn.pipeline import Pipeline

    from hscode.training.svm_store import FILE, save_svm

    steps = model.named_steps
    return save_svm(Pipeline([("tfidf", steps["tfidf"]), ("svm", one_linear_model(steps["svm"]))]),
                    out_dir / FILE)
