"""k-fold cross-validation of every candidate model, one stored result per (model, fold).

The pool is the prepared train split's original rows (no up-sampled copies, so a validation
fold never holds duplicates of a training row). Folds are stratified by code and
grouped by model text, seeded (:func:`assign_folds`). Each fold's
per-code precision / recall / F-beta lands in ``<folds>/<model>/fold_<k>.json``, and its raw
scores on the fold's rows in ``fold_<k>.npz`` (for the ensembles), as soon as it is done, so
an interrupted run resumes where it stopped. The folders are keyed by the content of the
data and the training parameters (see :func:`cache_key`): a new snapshot or new parameters
never reuse an old fold.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
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


# part of the fold folders' key: a change to assign_folds gets new folders, never old folds
FOLD_SCHEME = "dealt-by-code"


def assign_folds(pool: pd.DataFrame, k: int, seed: int) -> pd.Series:
    """Fold number per row: grouped by ``text`` (a description never sits on both sides of a
    fold), stratified by ``hs6``.

    Each text goes with its most frequent code. Per code, its texts, largest first (ties in
    seeded random order), each go to the fold holding the fewest of that code's rows so far,
    and among those to the smallest fold overall. So a code with at least ``k`` texts is in
    every fold and the folds stay the same size. One pass over the texts: scikit-learn's
    ``StratifiedGroupKFold`` scores every fold against every code for each text (10 s for
    the demo's 3 folds, 275 s for the default 37; ``bench/cv_folds.py``).
    """
    if k < 2:
        raise ValueError(f"k-fold cross-validation needs k >= 2, got {k}")
    rng = np.random.default_rng(seed)
    per_text = (pool.groupby(["text", "hs6"], sort=False).size().rename("rows").reset_index()
                .sort_values(["text", "rows", "hs6"], ascending=[True, False, True]))
    main = per_text.drop_duplicates("text")  # text -> its most frequent code
    size = pool.groupby("text", sort=False).size().loc[main["text"]].to_numpy()
    order = np.lexsort((rng.random(len(main)), -size, main["hs6"].to_numpy()))
    codes, size = main["hs6"].to_numpy()[order], size[order]
    fold = np.empty(len(main), dtype=np.int64)
    total = np.zeros(k, dtype=np.int64)
    of_code = np.zeros(k, dtype=np.int64)
    for i in range(len(main)):
        if i == 0 or codes[i] != codes[i - 1]:
            of_code[:] = 0
        fewest = np.flatnonzero(of_code == of_code.min())
        f = fewest[np.argmin(total[fewest])]
        fold[i] = f
        of_code[f] += size[i]
        total[f] += size[i]
    by_text = pd.Series(fold, index=main["text"].to_numpy()[order])
    return pd.Series(by_text.loc[pool["text"]].to_numpy(), index=pool.index)


def write_fold_data(pool: pd.DataFrame, folds: pd.Series, root: Path) -> list[Path]:
    """One prepared-style folder per fold (train = other folds, test = this fold)."""
    dirs = []
    for k in sorted(folds.unique()):
        d = root / f"fold_{k}"
        if not (d / "split=test" / "part.parquet").is_file():
            for name, part in (("train", pool[folds != k]), ("test", pool[folds == k])):
                (d / f"split={name}").mkdir(parents=True, exist_ok=True)
                cols = ["product_id", "text", "hs6"] + [c for c in ("weight",) if c in part]
                part[cols].to_parquet(d / f"split={name}" / "part.parquet")
        dirs.append(d)
    return dirs


def cache_key(*parts: Any) -> str:
    """A short content hash of JSON-able ``parts`` (data snapshot, parameters, k, seed)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def _svm_fold(task: FoldTask) -> dict[str, Any]:
    from hscode.training.baseline import fit_baseline
    from hscode.training.data import load_prepared
    from hscode.training.hvd_train import TrainJob

    data = load_prepared(Path(task.fold_dir))
    seed = TrainJob.from_json(task.job_json).seed
    model = fit_baseline(data.train, seed)
    scores = (np.asarray(model.decision_function(data.test["text"]), float) if len(data.test)
              else np.zeros((0, len(model.classes_))))
    labels = [str(c) for c in model.classes_]
    pred = [labels[i] for i in scores.argmax(axis=1)]
    truth = list(data.test["hs6"])
    return {"truth": truth, "predictions": pred, "labels": labels, "scores": scores,
            "metrics": {"accuracy": float(np.mean(np.array(pred) == np.array(truth)))
                        if truth else 0.0}}


def run_fold(task: FoldTask) -> dict[str, Any]:
    """Train and evaluate one fold (single process); store and return its result."""
    from hscode.training.hvd_train import TrainJob, train_worker

    out = Path(task.result_file)
    if out.is_file() and out.with_suffix(".npz").is_file():  # resume: this fold is done
        return json.loads(out.read_text())
    if task.model == "svm":
        res = _svm_fold(task)
    else:
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
    # the raw scores first (the ensembles combine them), then the result file, which marks
    # the fold done; each replaced atomically. Uncompressed: float scores deflate by 15 %
    # (110 -> 94 MB for a demo fold) at 4 s a fold, a third of a 1-epoch DNN fold
    tmp_npz = out.with_suffix(".tmp.npz")
    np.savez(tmp_npz, scores=np.asarray(res["scores"], np.float32),
             labels=np.asarray(res["labels"], dtype=str), truth=np.asarray(truth, dtype=str))
    tmp_npz.replace(out.with_suffix(".npz"))
    tmp_file = out.with_suffix(".tmp")
    tmp_file.write_text(json.dumps(result))
    tmp_file.replace(out)  # atomic: a fold file is complete or absent
    return result


def load_fold_scores(result_file: Path) -> tuple[np.ndarray, list[str], list[str]]:
    """A fold's stored ``(scores, labels, truth)``."""
    with np.load(result_file.with_suffix(".npz")) as z:
        return z["scores"].astype(np.float32), [str(c) for c in z["labels"]], \
            [str(c) for c in z["truth"]]


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
