"""Fold assignment: a description never on both sides of a fold, every code in every fold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hscode.selection.cv import assign_folds

pytestmark = pytest.mark.unit


def _pool(seed: int = 0) -> pd.DataFrame:
    """600 rows: 30 codes of 5-40 rows, texts repeated up to 3 times, a few conflicting."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(30):
        n_texts = int(rng.integers(5, 20))
        for t in range(n_texts):
            for _ in range(3 if t == 0 else int(rng.integers(1, 4))):
                rows.append({"text": f"text {c}-{t}", "hs6": f"{c:06d}"})
    # two descriptions also seen once with another code (their main code is clear)
    rows += [{"text": "text 0-0", "hs6": "000029"}, {"text": "text 1-0", "hs6": "000028"}]
    frame = pd.DataFrame(rows)
    return frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)


def test_folds_keep_each_text_whole_and_every_code_in_every_fold() -> None:
    pool, k = _pool(), 4
    folds = assign_folds(pool, k, seed=7)
    assert folds.index.equals(pool.index) and set(folds) == set(range(k))
    assert (pool.assign(fold=folds).groupby("text")["fold"].nunique() == 1).all()
    main_code = pool.groupby("text")["hs6"].agg(lambda codes: codes.value_counts().index[0])
    texts = pd.DataFrame({"hs6": main_code, "fold": folds.groupby(pool["text"]).first(),
                          "rows": pool.groupby("text").size()})
    rows = texts.pivot_table(index="hs6", columns="fold", values="rows", aggfunc="sum",
                             fill_value=0)
    largest = texts.groupby("hs6")["rows"].max()
    many = texts.groupby("hs6").size() >= k
    assert (rows.loc[many] > 0).all().all()  # codes with >= k texts reach every fold ...
    # ... their rows spread evenly: folds differ by at most the code's largest text
    assert ((rows.max(axis=1) - rows.min(axis=1)) <= largest).all()
    sizes = folds.value_counts()
    assert sizes.max() - sizes.min() <= 3  # the folds are the same size


def test_folds_follow_the_seed() -> None:
    pool = _pool()
    assert assign_folds(pool, 3, seed=1).equals(assign_folds(pool, 3, seed=1))
    assert not assign_folds(pool, 3, seed=1).equals(assign_folds(pool, 3, seed=2))
    with pytest.raises(ValueError, match="k >= 2"):
        assign_folds(pool, 1, seed=1)
