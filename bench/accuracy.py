"""Accuracy benchmark: every candidate of a selection run on the project's own hold-out.

    python bench/accuracy.py [--config hscode/demo.yaml] [--ds 2026-11-01]

The hold-out is the run's test split (rows drawn like the catalog, that no model trained on
and nothing was chosen on), written as a declarations-format CSV and passed through
``hscode evaluate --all-candidates``: the same cleaning and the same scoring path as any
labelled file. Appends one line to ``bench/results.jsonl`` with each candidate's figures and
its HS6 accuracy as a ratio to the SVM baseline scored in the same run, and its paired
difference to it (95% interval, McNemar's p: ``hscode.evaluate.paired_difference``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    from hscode.catalog import Catalog
    from hscode.config import load_settings
    from hscode.evaluate import selection_run

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, default=None)
    p.add_argument("--ds", default=None, help="selection run date (default: the newest)")
    args = p.parse_args(argv)
    settings = load_settings(args.config)
    catalog = Catalog.from_settings(settings)
    run = selection_run(catalog, args.ds)
    if run is None:
        print("no selection run: run the retrain first (make run, or hscode select)")
        return 2
    ds = run.name.removeprefix("ds=")
    test = pd.read_parquet(catalog.partition(catalog.prepared, ds) / "split=test")
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / f"holdout-{ds}.csv"
        pd.DataFrame({"hs10": test["hs6"], "goods_description": test["text"],
                      "product_id": test["product_id"]}).to_csv(csv, index=False)
        out = Path(tmp) / "evaluation"
        cmd = [sys.executable, "-m", "hscode", "evaluate", "--csv", str(csv),
               "--all-candidates", "--ds", ds, "--out", str(out)]
        if args.config:
            cmd += ["--config", str(args.config)]
        subprocess.run(cmd, check=True)
        doc = json.loads((out / "evaluation.json").read_text())
    models = {m["model"]: m for m in doc["models"]}
    base = models.get("svm", {}).get("hs6_accuracy")
    line = {"bench": "accuracy", "at": dt.datetime.now().isoformat(timespec="seconds"),
            "ds": ds, "rows": doc["rows"], "target_precision": doc["target_precision"],
            "models": doc["models"],
            "ratio_hs6_to_svm": {m: round(v["hs6_accuracy"] / base, 4)
                                 for m, v in models.items()} if base else None}
    with (ROOT / "bench" / "results.jsonl").open("a", encoding="utf-8") as f:
        f.write(json.dumps(line, default=str) + "\n")
    print(json.dumps(line["ratio_hs6_to_svm"], indent=2))
    for m, v in models.items():  # the paired difference: is a gap more than noise?
        if v.get("hs6_vs_svm") is not None:
            print(f"{m:>10}: HS6 {v['hs6_accuracy']:.4f}, vs svm {v['hs6_vs_svm']:+.4f} "
                  f"[{v['hs6_vs_svm_low']:+.4f}, {v['hs6_vs_svm_high']:+.4f}], "
                  f"McNemar p {v['hs6_vs_svm_p']:.2g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
