"""Accuracy of one network configuration against the SVM baseline, on the same prepared data.

    python bench/networks.py --prepared data/training/prepared/ds=2026-11-01 \
        --model textcnn --set epochs=6 --set subwords=0 --label "no char n-grams"

Trains the SVM baseline and the network (through Horovod, ``--ranks``) on the prepared train
split and scores both on its test split, all rows counted (a code the model never saw is an
error). Nothing is chosen on the test split here: the network stops on its own validation
rows. Appends one line to ``bench/results.jsonl`` with both figures, their difference and the
wall times, so a change's effect is read as network minus baseline from one run.

``--seeds 42,1,2`` trains the network once per seed (initial weights, batch order and
validation rows) and reports each run, their mean and spread, and each run's paired
difference to the SVM on the same rows (95% interval, McNemar's p): the DNN's test HS6 spans
2.3 points over five seeds (0.624-0.647, 2026-12-04), so a one-seed difference of a point or
two between two configurations is not evidence.

``--plain`` also fits the issue's plain reference - scikit-learn's ``TfidfVectorizer()`` and
``LinearSVC()`` with their defaults (word unigrams, C = 1) on the same train rows - and gives
each run's paired difference to it as well (``vs_plain``): the yardstick the issue's targets
name besides the project's SVM.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).with_name("results.jsonl")


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main() -> None:
    from hscode.models import default_params
    from hscode.training.baseline import fit_predict
    from hscode.training.data import load_prepared
    from hscode.training.hvd_train import TrainJob
    from hscode.training.metrics import classification_metrics

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prepared", type=Path, required=True)
    ap.add_argument("--model", default="textcnn", choices=["textcnn", "dnn", "lstm"])
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="TrainJob field, or params.<name> for a model parameter")
    ap.add_argument("--ranks", type=int, default=1)
    ap.add_argument("--label", default="")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--plain", action="store_true",
                    help="also the plain TF-IDF + LinearSVC reference, paired with each run")
    ap.add_argument("--seeds", default="",
                    help="comma-separated seeds, one training each (default: the job's seed)")
    args = ap.parse_args()

    job = TrainJob(model=args.model, prepared_dir=str(args.prepared), out_dir="",
                   params=default_params(args.model).to_dict(), save_artifact=False)
    names = {f.name for f in fields(TrainJob)}
    params = dict(job.params)
    changes: dict[str, Any] = {}
    for item in args.set:
        key, _, raw = item.partition("=")
        changes[key] = _value(raw)
        if key.startswith("params."):
            params[key.removeprefix("params.")] = changes[key]
        elif key in names:
            job = replace(job, **{key: changes[key]})
        else:
            raise SystemExit(f"unknown setting {key!r}")
    job = replace(job, params=params)

    line: dict[str, Any] = {"bench": "networks", "at": datetime.now().isoformat(timespec="seconds"),
                            "prepared": str(args.prepared), "model": args.model,
                            "label": args.label, "changes": changes, "ranks": args.ranks}
    data = load_prepared(args.prepared)
    truth = data.test["hs6"].to_numpy(dtype=object)
    line["train_rows"], line["test_rows"] = len(data.train), len(data.test)
    svm_right = None
    if not args.no_baseline:
        t0 = time.perf_counter()
        _, pred, top3 = fit_predict(data.train, data.test, job.seed)
        m = classification_metrics(list(truth), pred, top3)
        line["svm"] = {"hs6": m["accuracy"], "top3": m["top3_accuracy"],
                       "train_s": round(time.perf_counter() - t0, 1)}
        svm_right = np.asarray(pred, dtype=object) == truth
    references = {"svm": svm_right} if svm_right is not None else {}
    if args.plain:
        t0 = time.perf_counter()
        pred, top3 = _plain_reference(data.train, data.test)
        m = classification_metrics(list(truth), pred, top3)
        line["plain"] = {"hs6": m["accuracy"], "top3": m["top3_accuracy"],
                         "train_s": round(time.perf_counter() - t0, 1)}
        references["plain"] = np.asarray(pred, dtype=object) == truth
        if svm_right is not None:
            line["svm"]["vs_plain"] = _paired(svm_right, references["plain"])
    seeds = [int(x) for x in args.seeds.split(",") if x.strip()] or [job.seed]
    runs = [_train(replace(job, seed=seed), args.ranks, truth, references) for seed in seeds]
    if len(runs) == 1:
        line["network"] = runs[0]
    else:
        line["seeds"] = seeds
        line["runs"] = runs
        line["network"] = {k: round(float(np.mean([r[k] for r in runs])), 4)
                           for k in ("hs6", "top3", "train_s")}
        line["network"]["hs6_sd"] = round(float(np.std([r["hs6"] for r in runs], ddof=1)), 4)
    if "svm" in line:
        line["hs6_minus_svm"] = round(line["network"]["hs6"] - line["svm"]["hs6"], 4)
        line["top3_minus_svm"] = round(line["network"]["top3"] - line["svm"]["top3"], 4)
    with RESULTS.open("a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")
    print(json.dumps(line, indent=1))


def _plain_reference(train: Any, test: Any) -> tuple[list[str], list[list[str]]]:
    """The issue's plain reference fitted on ``train``: test predictions and top-3 codes."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC

    from hscode.training.metrics import top_k_codes

    model = make_pipeline(TfidfVectorizer(), LinearSVC()).fit(train["text"], train["hs6"])
    top3 = top_k_codes(model.decision_function(test["text"]), model.classes_)
    return [codes[0] for codes in top3], top3


def _paired(right: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """:func:`hscode.evaluate.paired_difference`, rounded for the results file."""
    from hscode.evaluate import paired_difference

    d = paired_difference(right, reference)
    return {**{k: round(d[k], 4) for k in ("diff", "low", "high")}, "p": float(f"{d['p']:.2g}")}


def _train(job: Any, ranks: int, truth: np.ndarray, references: dict[str, np.ndarray]
           ) -> dict[str, Any]:
    """One training run's test figures, and its paired difference to each reference's rows
    (``vs_svm``, ``vs_plain``)."""
    from hscode.training.hvd_train import launch

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = launch(replace(job, out_dir=tmp, return_predictions=True), ranks)[0]
        seconds = time.perf_counter() - t0
    m = result["metrics"]
    run = {"seed": job.seed, "hs6": m["accuracy"], "top3": m["top3_accuracy"],
           "epochs_run": m["epochs_run"], "train_s": round(seconds, 1),
           "val_accuracy": result["history"].get("val_accuracy")}
    right = np.asarray(result["predictions"], dtype=object) == truth
    for name, reference in references.items():
        run[f"vs_{name}"] = _paired(right, reference)
    return run


if __name__ == "__main__":
    main()
