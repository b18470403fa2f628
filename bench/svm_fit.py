"""The SVM baseline's fit: working sets against scikit-learn's plain one-vs-rest, same process.

    python bench/svm_fit.py --prepared data/training/prepared/ds=2026-11-01

Both fit the same TF-IDF features of the prepared train split (the plain fit is
``OneVsRestClassifier(LinearSVC)`` on every core, as the baseline was fitted before the
working sets); reported: seconds of each, their ratio, the test split's HS6 / top-3 of each
and the largest difference between their scores. Appends one line to ``bench/results.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).with_name("results.jsonl")


def main() -> None:
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.svm import LinearSVC

    from hscode.training.baseline import TOL, C, build_baseline
    from hscode.training.data import load_prepared
    from hscode.training.linear_ovr import WorkingSetLinearSVC
    from hscode.training.metrics import classification_metrics, top_k_codes

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prepared", type=Path, required=True)
    args = ap.parse_args()
    data = load_prepared(args.prepared)
    features = build_baseline().named_steps["tfidf"]
    train_x = features.fit_transform(data.train["text"])
    test_x = features.transform(data.test["text"])
    line = {"bench": "svm_fit", "at": datetime.now().isoformat(timespec="seconds"),
            "prepared": str(args.prepared), "train_rows": train_x.shape[0],
            "features": train_x.shape[1], "codes": int(data.train["hs6"].nunique())}
    scores = {}
    for name, model in (("plain", OneVsRestClassifier(LinearSVC(C=C, tol=TOL, random_state=42),
                                                      n_jobs=-1)),
                        ("working_set", WorkingSetLinearSVC(C=C, tol=TOL, random_state=42))):
        t0 = time.perf_counter()
        model.fit(train_x, data.train["hs6"])
        seconds = time.perf_counter() - t0
        scores[name] = np.asarray(model.decision_function(test_x))
        labels = [str(c) for c in model.classes_]
        pred = [labels[i] for i in scores[name].argmax(axis=1)]
        m = classification_metrics(list(data.test["hs6"]), pred,
                                   top_k_codes(scores[name], labels))
        line[name] = {"fit_s": round(seconds, 1), "hs6": m["accuracy"],
                      "top3": m["top3_accuracy"]}
    line["speedup"] = round(line["plain"]["fit_s"] / line["working_set"]["fit_s"], 2)
    line["max_score_difference"] = float(np.abs(scores["plain"] - scores["working_set"]).max())
    with RESULTS.open("a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")
    print(json.dumps(line, indent=1))


if __name__ == "__main__":
    main()
