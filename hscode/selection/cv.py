"""k-fold cross-validation of the networks, one stored result per (model, fold).

The pool is the prepared train split's original rows (no up-sampled copies, so a validation
fold never holds duplicates of a training row). Folds come from scikit-learn's
``StratifiedGroupKFold`` (stratified by code, grouped by model text, seeded). Each fold's
per-code precision / recall / F-beta lands in ``<run>/folds/<model>/fold_<k>.json`` as soon as
it is done, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from hscode.selection.stats import fbeta_per_code

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FoldTask:
    """One (model, fold) to train and evaluate; plain data so Spark can ship it."""

    model: str
    fold: int
    fold_dir: str  # prepared-style folder: split=train, split=test
    result_file: str
    job_json: str  # a TrainJob template (params, epochs, ...)
    beta: float = 1.2


def assign_folds(pool: pd.DataFrame, k: int, seed: int) -> pd.Series:
    """Fold number per row: stratified by ``hs6``, grouped by ``text``."""
    import warnings

    from sklearn.model_selection import StratifiedGroupKFold

    folds = pd.Series(-1, index=pool.index)
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # codes rarer than k rows cannot reach every fold
        warnings.simplefilter("ignore", UserWarning)
        for i, (_, val) in enumerate(splitter.split(pool, pool["hs6"], pool["text"])):
            folds.iloc[val] = i
    return folds


def write_fold_data(pool: pd.DataFrame, folds: pd.Series, root: Path) -> list[Path]:
    """One prepared-style folder per fold (train = other folds, test = this fold)."""
    dirs = []
    for k in sorted(folds.unique()):
        d = root / f"fold_{k}"
        if not (d / "split=test" / "part.parquet").is_file():
            for name, part in (("train", pool[folds != k]), ("test", pool[folds == k])):
                (d / f"split={name}").mkdir(parents=True, exist_ok=True)
                part[["product_id", "text", "hs6"]].to_parquet(d / f"split={name}" / "part.parquet")
        dirs.append(d)
    return dirs


def run_fold(task: FoldTask) -> dict[str, Any]:
    """Train and evaluate one fold (single process); store and return its result."""
    from hscode.training.hvd_train import TrainJob, train_worker

    out = Path(task.result_file)
    if out.is_file():  # resume: this fold is done
        return json.loads(out.read_text())
    template = TrainJob.from_json(task.job_json)
    with tempfile.TemporaryDirectory() as tmp:
        job = replace(template, model=task.model, prepared_dir=task.fold_dir, out_dir=tmp,
                      save_artifact=False, return_predictions=True)
        res = train_worker(job)
    truth = res["truth"]
    codes = sorted(set(truth))
    per_code = fbeta_per_code(truth, res["predictions"], codes, task.beta)
    result = {"model": task.model, "fold": task.fold, "accuracy": res["metrics"]["accuracy"],
              "rows": len(truth), "per_code": per_code.to_dict(orient="records")}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_file = out.with_suffix(".tmp")
    tmp_file.write_text(json.dumps(result))
    tmp_file.replace(out)  # atomic: a fold file is complete or absent
    return result


def run_folds(tasks: list[FoldTask], runner: str = "local",
              progress: Callable[[str], None] = lambda _m: None) -> list[dict[str, Any]]:
    """Run the fold tasks one after another, or in parallel as Spark tasks."""
    if runner == "spark":
        from pyspark.sql import SparkSession

        spark = SparkSession.getActiveSession()
        if spark is None:
            raise RuntimeError("runner=spark needs an active SparkSession")
        return spark.sparkContext.parallelize(tasks, len(tasks)).map(run_fold).collect()
    results = []
    for i, task in enumerate(tasks, 1):
        progress(f"fold {task.fold} of {task.model} ({i}/{len(tasks)})")
        results.append(run_fold(task))
    return results


def fold_table(results: list[dict[str, Any]]) -> pd.DataFrame:
    """Long table ``model, fold, code, precision, recall, fbeta, support``."""
    rows = [{"model": r["model"], "fold": r["fold"], **c} for r in results for c in r["per_code"]]
    return pd.DataFrame(rows)
