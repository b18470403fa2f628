"""The working-set one-vs-rest SVM fits the same model as fitting every code on every row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def declarations(shared_data: Path) -> tuple[object, np.ndarray, object, np.ndarray]:
    """2,400 real declarations of their 40 most frequent codes, TF-IDF features, 2/3 : 1/3."""
    from hscode.training.baseline import build_baseline

    rows = pd.read_csv(shared_data / "declarations.csv", dtype=str).dropna()
    rows["hs6"] = rows["hs10"].str[:6]
    top = rows["hs6"].value_counts().index[:40]
    rows = (rows[rows["hs6"].isin(top)].groupby("hs6").head(60)
            .sample(frac=1.0, random_state=0).reset_index(drop=True))
    text = rows["goods_description"].str.lower()
    cut = len(rows) * 2 // 3
    features = build_baseline().named_steps["tfidf"]
    train_x = features.fit_transform(text[:cut])
    return train_x, rows["hs6"].to_numpy()[:cut], features.transform(text[cut:]), \
        rows["hs6"].to_numpy()[cut:]


def _plain_one_vs_rest(x: object, y: np.ndarray) -> object:
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.svm import LinearSVC

    return OneVsRestClassifier(LinearSVC(C=0.5, tol=1e-6, max_iter=100_000,
                                         random_state=0)).fit(x, y)


@pytest.mark.parametrize("working_set, max_rounds", [(20, 8), (20, 1), (100_000, 8)])
def test_working_set_fit_scores_rows_as_the_fit_on_every_row(declarations, working_set: int,
                                                            max_rounds: int) -> None:
    """A working set far too small for the first fit (20 other rows per code) still ends on
    the whole training set's SVM, through added violators or, with one round allowed, the
    fallback; a working set larger than the data is the plain fit."""
    from hscode.training.linear_ovr import WorkingSetLinearSVC

    train_x, train_y, test_x, _ = declarations
    plain = _plain_one_vs_rest(train_x, train_y)
    fitted = WorkingSetLinearSVC(C=0.5, tol=1e-6, working_set=working_set,
                                 max_rounds=max_rounds, n_jobs=2, random_state=0
                                 ).fit(train_x, train_y)
    np.testing.assert_array_equal(fitted.classes_, plain.classes_)
    np.testing.assert_allclose(fitted.decision_function(test_x),
                               plain.decision_function(test_x), atol=1e-3)
    np.testing.assert_array_equal(fitted.predict(test_x), plain.predict(test_x))


def test_working_set_fit_learns_the_codes(declarations) -> None:
    from hscode.training.linear_ovr import WorkingSetLinearSVC

    train_x, train_y, test_x, test_y = declarations
    fitted = WorkingSetLinearSVC(C=0.5, tol=1e-3, working_set=50).fit(train_x, train_y)
    assert fitted.coef_.shape == (40, train_x.shape[1])
    assert fitted.score(test_x, test_y) > 0.8


def test_one_code_is_refused(declarations) -> None:
    from hscode.training.linear_ovr import WorkingSetLinearSVC

    train_x, train_y, _, _ = declarations
    with pytest.raises(ValueError, match="two codes"):
        WorkingSetLinearSVC().fit(train_x[:5], np.array(["392410"] * 5))


def test_the_saved_baseline_scores_as_the_fitted_one(shared_data: Path, tmp_path: Path) -> None:
    """``model.npz`` holds everything the pipeline scores with: the loaded model's scores are
    the fitted model's, bit for bit, on texts it never saw (unknown words included)."""
    import json

    from hscode.predictor import load_predictor
    from hscode.training.baseline import fit_baseline, save_baseline

    rows = pd.read_csv(shared_data / "declarations.csv", dtype=str).dropna()
    rows = rows.assign(hs6=rows["hs10"].str[:6], text=rows["goods_description"].str.lower())
    rows = rows[rows["hs6"].isin(rows["hs6"].value_counts().index[:12])].head(600)
    fitted = fit_baseline(rows.iloc[:500])
    save_baseline(fitted, tmp_path)
    (tmp_path / "labels.json").write_text(json.dumps([str(c) for c in fitted.classes_]))
    loaded = load_predictor(tmp_path)
    texts = list(rows["text"].iloc[500:]) + ["zzqx unheard-of words", ""]
    assert loaded.kind == "svm"
    np.testing.assert_array_equal(loaded.model.decision_function(texts),
                                  fitted.decision_function(texts))
    np.testing.assert_array_equal(loaded.model.classes_, fitted.classes_)
