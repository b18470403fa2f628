"""``hscode evaluate``: any labelled CSV through the pipeline's cleaning and chosen models.

The CSV is read like a seed source (declarations format: ``hs10`` or ``hs_code``, and
``goods_description``; ``product_id`` and ``assurance_level`` optional), turned into
product-master rows, cleaned by the same Spark transform as the nightly job, and the rows
with a valid HS 2022 code are scored by each model. Per model:

* HS6 / HS4 / HS2 and top-3 accuracy;
* the model's own review threshold (chosen on its calibration split, never on this file):
  the precision of the rows it auto-accepts here, with a 95% interval, and its coverage;
* the coverage this file would allow at the target precision (an oracle: the best any
  threshold could do here, for comparison only);
* the expected calibration error of its confidence;
* with ``--all-candidates``, its HS6 accuracy minus the SVM baseline's on the same rows, with a
  95% interval for paired proportions and McNemar's exact p-value (only the rows exactly one
  of the two gets right tell them apart: on a 2,746-row hold-out, one model's accuracy alone
  has a standard error of ~0.9 points, so a difference under ~1.5 points is rarely real).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hscode.config import Settings

COLUMNS = ("model", "version", "rows", "hs6_accuracy", "hs4_accuracy", "hs2_accuracy",
           "top3_accuracy", "threshold", "threshold_precision", "threshold_precision_low",
           "threshold_precision_high", "threshold_coverage", "oracle_coverage_at_target", "ece",
           "hs6_vs_svm", "hs6_vs_svm_low", "hs6_vs_svm_high", "hs6_vs_svm_p")
REFERENCE = "svm"  # the baseline every candidate is compared with, row by row


def clean_labelled_csv(settings: Settings, csv: Path) -> tuple[pd.DataFrame, dict[str, int]]:
    """The CSV's rows with a valid code after the pipeline's cleaning (``product_id, text,
    hs6, conflicting_code``: the last flagged within this file, as a night flags it within its
    catalog) and the row accounting (read, rejected, quarantined, invalid code, evaluated)."""
    from pyspark.sql import functions as F

    from hscode.clean import clean_products, default_stop_words
    from hscode.seed import build_product_master, read_nomenclature, read_source_csv
    from hscode.spark import build_spark

    parsed = read_source_csv(csv)
    products, rejects = build_product_master(parsed.rows, settings.seed, csv.name)
    nomenclature = read_nomenclature(settings.source("nomenclature_csv"))
    spark = build_spark(settings, settings.spark.master, "hscode-evaluate")
    raw = spark.createDataFrame(products).withColumn("ds", F.current_date())
    codes = spark.createDataFrame(
        nomenclature.loc[nomenclature["level"] == 6, ["code"]].astype(str))
    result = clean_products(raw, codes, settings.cleaning,
                            settings.training.trusted_levels_list, default_stop_words())
    scoring = result.scoring.select("product_id", "text", "hs6", "code_status",
                                    "conflicting_code").toPandas()
    valid = scoring[scoring["code_status"] == "valid"][["product_id", "text", "hs6",
                                                        "conflicting_code"]]
    counts = {"rows_read": int(parsed.rows_read),
              "rejected": int(len(parsed.rejects) + len(rejects)),
              "quarantined": int(len(products) - len(scoring)),
              "invalid_code": int(len(scoring) - len(valid)), "evaluated": int(len(valid))}
    return valid.sort_values("product_id").reset_index(drop=True), counts


def evaluate_model(artifact: Path, frame: pd.DataFrame, target_precision: float,
                   fixed_threshold: float | None = None
                   ) -> tuple[dict[str, Any], np.ndarray]:
    """Figures of one model artifact on ``frame`` (``text``, ``hs6``, optionally
    ``conflicting_code``: those rows are never auto-accepted), and whether its code is right
    on each row (for :func:`paired_difference`)."""
    from hscode.calibration import expected_calibration_error
    from hscode.predictor import load_predictor
    from hscode.scoring.reference import (
        choose_threshold,
        eligible_rows,
        load_reference,
        review_threshold,
        threshold_on,
    )
    from hscode.training.metrics import classification_metrics, top_k_codes

    predictor = load_predictor(artifact)
    probs = predictor.predict_proba(list(frame["text"]))
    labels = np.asarray(predictor.labels, dtype=object)
    pred = labels[probs.argmax(axis=1)] if len(probs) else np.array([], dtype=object)
    truth = frame["hs6"].to_numpy(dtype=object)
    conf = probs.max(axis=1) if len(probs) else np.zeros(0)
    correct = pred == truth
    m = classification_metrics(list(truth), list(pred), top_k_codes(probs, predictor.labels))
    chosen = review_threshold(load_reference(artifact), target_precision, fixed_threshold)
    eligible = eligible_rows(frame)
    here = threshold_on(conf, correct, chosen.value, target_precision, chosen.chosen_on,
                        eligible=eligible)
    return {"rows": len(frame), "hs6_accuracy": m["hs6_accuracy"],
            "hs4_accuracy": m["hs4_accuracy"], "hs2_accuracy": m["hs2_accuracy"],
            "top3_accuracy": m.get("top3_accuracy"), "threshold": chosen.value,
            "threshold_chosen_on": chosen.chosen_on,
            "threshold_precision": here.precision, "threshold_precision_low": here.precision_low,
            "threshold_precision_high": here.precision_high,
            "threshold_coverage": here.coverage,
            "oracle_coverage_at_target": choose_threshold(conf, correct, target_precision,
                                                          eligible).coverage,
            "ece": expected_calibration_error(conf, correct)}, correct


def paired_difference(correct: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """A model's accuracy minus a reference model's on the same rows, row by row.

    Args:
        correct: Whether the model is right, one boolean per row.
        reference: Whether the reference model is right on the same rows.

    Returns:
        ``diff`` (the difference of the two accuracies), ``low`` / ``high`` (its 95% Wald
        interval for paired proportions) and ``p`` (McNemar's exact two-sided p-value: a
        binomial test on the rows exactly one of the two gets right).
    """
    from hscode.selection.stats import mcnemar

    wins, losses, p = mcnemar(correct, reference)
    n = len(correct)
    if not n:
        return {"diff": 0.0, "low": 0.0, "high": 0.0, "p": 1.0}
    diff = (wins - losses) / n
    half = 1.96 * np.sqrt(max(wins + losses - (wins - losses) ** 2 / n, 0.0)) / n
    return {"diff": diff, "low": diff - half, "high": diff + half, "p": p}


def compare_with_reference(rows: list[dict[str, Any]], correct: list[np.ndarray]) -> None:
    """Add each row's ``hs6_vs_svm`` figures (:func:`paired_difference`) when the SVM
    baseline is among the evaluated models; the rows are changed in place."""
    ref = next((c for r, c in zip(rows, correct, strict=True) if r["model"] == REFERENCE), None)
    if ref is None:
        return
    for row, right in zip(rows, correct, strict=True):
        d = paired_difference(right, ref)
        row.update(hs6_vs_svm=d["diff"], hs6_vs_svm_low=d["low"], hs6_vs_svm_high=d["high"],
                   hs6_vs_svm_p=d["p"])


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as a Markdown table (numbers to 3 decimals, p-values to 2 significant
    digits)."""
    def cell(column: str, v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.2g}" if column.endswith("_p") else f"{v:.3f}"
        return "" if v is None else str(v)

    head = "| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS) + "\n"
    return head + "".join("| " + " | ".join(cell(c, r.get(c)) for c in COLUMNS) + " |\n"
                          for r in rows)


def write_evaluation(out_dir: Path, csv: Path, counts: dict[str, int],
                     rows: Sequence[dict[str, Any]], target_precision: float) -> Path:
    """``evaluation.json`` and ``evaluation.md`` under ``out_dir``; returns the JSON path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = {"csv": str(csv), "evaluated_at": dt.datetime.now(dt.UTC).isoformat(),
           "target_precision": target_precision, "rows": counts, "models": list(rows)}
    (out_dir / "evaluation.json").write_text(json.dumps(doc, indent=2, default=str))
    (out_dir / "evaluation.md").write_text(
        f"# Evaluation of {csv.name}\n\nRows: {counts}. Target precision {target_precision}; "
        "the threshold of each model was chosen on its own calibration split.\n\n"
        + markdown_table(rows))
    return out_dir / "evaluation.json"


def selection_run(catalog: Any, ds: str | None = None) -> Path | None:
    """The folder of ``ds``'s selection run, or of the newest one, when it got as far as a
    promotion (so its candidates exist); None otherwise."""
    runs = sorted(p for p in ((catalog.root / "selection").glob("ds=*") if ds is None
                              else [catalog.selection_dir(ds)])
                  if (p / "promotion.json").is_file())
    return runs[-1] if runs else None


def models_to_evaluate(settings: Settings, version: int | None, all_candidates: bool,
                       ds: str | None = None) -> list[tuple[str, str, Path]]:
    """``(model, version label, artifact)`` for a registry version, the champion, or every
    candidate of the newest (or ``ds``'s) selection run.

    Raises:
        FileNotFoundError: when there is no selection run to take candidates from.
    """
    from hscode.catalog import Catalog
    from hscode.scoring.model_ref import resolve_model

    catalog = Catalog.from_settings(settings)
    if not all_candidates:
        ref = resolve_model(catalog, version)
        return [(ref.name, ref.version, ref.path)]
    run = selection_run(catalog, ds)
    if run is None:
        raise FileNotFoundError("no selection run with candidates: run `hscode select` first")
    promoted = json.loads((run / "promotion.json").read_text())
    return [(m, Path(p).name, Path(p)) for m, p in promoted["candidates"].items()]
