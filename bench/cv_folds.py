"""Fold assignment of the CV (hscode.selection.cv.assign_folds) against scikit-learn's
``StratifiedGroupKFold`` on the same pool, in one process.

    python bench/cv_folds.py --prepared data/training/prepared/ds=2026-11-01 --folds 3 37

Per k: seconds of each, and how well each stratifies: the mean over codes (with at least k
rows) of the largest minus the smallest number of the code's rows in a fold, the codes
missing from some fold, and the smallest and largest fold. Appends one line per k to
``bench/results.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

RESULTS = Path(__file__).with_name("results.jsonl")


def _quality(pool: pd.DataFrame, folds: pd.Series, k: int) -> dict[str, Any]:
    counts = pd.crosstab(pool["hs6"], folds)
    counts = counts[counts.sum(axis=1) >= k]
    sizes = folds.value_counts()
    return {"mean_code_spread": round(float((counts.max(axis=1) - counts.min(axis=1)).mean()), 3),
            "codes_missing_a_fold": int((counts == 0).any(axis=1).sum()),
            "fold_rows": [int(sizes.min()), int(sizes.max())]}


def sklearn_folds(pool: pd.DataFrame, k: int, seed: int) -> pd.Series:
    from sklearn.model_selection import StratifiedGroupKFold

    folds = pd.Series(-1, index=pool.index)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        for i, (_, val) in enumerate(splitter.split(pool, pool["hs6"], pool["text"])):
            folds.iloc[val] = i
    return folds


def main() -> None:
    from hscode.selection.cv import assign_folds
    from hscode.training.data import load_prepared

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prepared", type=Path, required=True)
    ap.add_argument("--folds", type=int, nargs="+", default=[3, 37])
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    pool = load_prepared(args.prepared).train.drop_duplicates("product_id")
    pool = pool.reset_index(drop=True)
    for k in args.folds:
        line: dict[str, Any] = {"bench": "cv_folds", "at": datetime.now().isoformat(
            timespec="seconds"), "prepared": str(args.prepared), "k": k, "rows": len(pool)}
        for name, assign in (("sklearn", sklearn_folds), ("hscode", assign_folds)):
            t0 = time.perf_counter()
            folds = assign(pool, k, args.seed)
            line[name] = {"seconds": round(time.perf_counter() - t0, 2), **_quality(pool, folds, k)}
        line["speedup"] = round(line["sklearn"]["seconds"] / line["hscode"]["seconds"], 1)
        with RESULTS.open("a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")
        print(json.dumps(line))


if __name__ == "__main__":
    main()
