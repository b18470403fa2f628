"""A retrain that learns from reviewers: labels before and after a round of corrections.

    python bench/review_retrain.py [--rows 20000] [--model svm]

On a temporary home seeded with the first ``--rows`` declarations: extract, clean, prepare
and train (night 1); then a *simulated* reviewer decides every product whose description
the catalog files under several codes, giving the code most products with that text carry
(``hscode review import``); then the same jobs again (night 2), which train on the
reviewed labels. Reported (and appended to ``bench/results.jsonl``): decisions recorded,
reviewed rows per split, and on night 2's reviewed test rows that neither model trained on,
the HS6 accuracy of the night-1 model and of the night-2 model against the reviewed labels.
The reviewer is simulated: the figures show the loop working, not what real reviewers gain.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
from argparse import Namespace
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
NIGHTS = ("2026-11-01", "2026-11-02")


def _night(settings, ds: str, model: str):
    from hscode.training.train import train
    from jobs import clean_products, extract_products, prepare_training

    for job in (extract_products, clean_products, prepare_training):
        job.run(Namespace(ds=ds, master=None, config=None), settings)
    return train(settings, ds, model)


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(ROOT))
    from hscode.catalog import Catalog
    from hscode.config import load_settings
    from hscode.predictor import load_predictor
    from hscode.review.store import import_file
    from hscode.seed import seed_warehouse
    from hscode.training.artifacts import text_hashes, trained_texts
    from hscode.training.data import load_prepared
    from hscode.warehouse import warehouse_from_settings

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=20000)
    p.add_argument("--model", default="svm")
    a = p.parse_args(argv)
    home = Path(tempfile.mkdtemp(prefix="hscode-review-bench-"))
    settings = load_settings(environ={
        "HSCODE_PATHS__HOME": str(home), "HSCODE_PATHS__SOURCE_DIR": str(ROOT.parent / "shared" / "data"),
        "HSCODE_QUALITY__DATA_DOCS": "false", "HSCODE_SPARK__LOG_LEVEL": "ERROR",
        "HSCODE_TRAINING__NUM_PROC": "1"})
    with warehouse_from_settings(settings) as wh:
        seed_warehouse(settings, wh)
        wh.execute("DELETE FROM product_master WHERE product_id NOT IN (SELECT product_id "
                   "FROM product_master ORDER BY product_id LIMIT ?)", [a.rows])
    before = _night(settings, NIGHTS[0], a.model)
    # the simulated reviewer: each product of a text filed under several codes gets the
    # code most of that text's products carry (ties: the smallest code)
    catalog = Catalog.from_settings(settings)
    scoring = pd.read_parquet(catalog.partition(catalog.scoring_set, NIGHTS[0]),
                              columns=["product_id", "text", "hs6", "conflicting_code",
                                       "code_status"])
    conflicted = scoring[scoring["conflicting_code"] & (scoring["code_status"] == "valid")]
    majority = (conflicted.groupby(["text", "hs6"]).size().rename("n").reset_index()
                .sort_values(["text", "n", "hs6"], ascending=[True, False, True])
                .drop_duplicates("text").set_index("text")["hs6"])
    decisions = pd.DataFrame({"product_id": conflicted["product_id"], "decision": "corrected",
                              "hs6": conflicted["text"].map(majority), "reviewer": "bench",
                              "decided_at": f"{NIGHTS[0]}T12:00:00"})
    sheet = home / "decisions.csv"
    decisions.to_csv(sheet, index=False)
    with warehouse_from_settings(settings) as wh:
        report = import_file(wh, sheet)
    after = _night(settings, NIGHTS[1], a.model)
    prepared = json.loads((catalog.run_dir(NIGHTS[1]) / "prepare_training.json").read_text())
    test = load_prepared(catalog.partition(catalog.prepared, NIGHTS[1])).test
    test = test[test["reviewed"].astype(bool)]
    seen = set(trained_texts(before.artifact)) | set(trained_texts(after.artifact))
    test = test[~pd.Series(text_hashes(list(test["text"]), unique=False)).isin(seen).to_numpy()]
    accuracy = {}
    for name, outcome in (("night 1 model", before), ("night 2 model", after)):
        predicted = load_predictor(outcome.artifact).predict(list(test["text"])) \
            if len(test) else []
        accuracy[name] = float(np.mean(np.asarray(predicted) == test["hs6"].to_numpy())) \
            if len(test) else None
    result = {"bench": "review_retrain", "at": dt.datetime.now(dt.UTC).isoformat(),
              "rows": a.rows, "model": a.model, "import": report.summary(),
              "reviewed_rows": prepared["reviewed_rows"], "reviewed_test_rows_unseen": len(test),
              "hs6_on_reviewed_test_rows": accuracy,
              "test_hs6": {"night 1": before.metrics.get("hs6_accuracy"),
                           "night 2": after.metrics.get("hs6_accuracy")}}
    print(json.dumps(result, indent=2))
    with (ROOT / "bench" / "results.jsonl").open("a") as out:
        out.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
