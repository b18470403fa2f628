"""``hscode select``: cross-validate the networks, test per code, promote, report."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pandas as pd

from hscode.catalog import Catalog
from hscode.config import Settings


def latest_artifact(catalog: Catalog, model: str, ds: str) -> Path | None:
    """The newest artifact of ``model`` trained on date ``ds``."""
    found = []
    for lineage in (catalog.models / model).glob("*/lineage.json"):
        if json.loads(lineage.read_text()).get("ds") == ds:
            found.append(lineage.parent)
    return max(found, key=lambda p: p.name) if found else None


def select_models(settings: Settings, ds: str, folds: int | None = None,
                  models: Sequence[str] | None = None, runner: str | None = None,
                  progress: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """Run the selection for one date; return its summary (also saved as JSON).

    Steps: k-fold CV of each network (resumable), per-code tests, champion; the champion
    model's artifact for ``ds`` (trained if missing) challenges the registry's champion on
    the hold-out and is promoted unless significantly worse; a report is written.
    """
    from hscode.predictor import load_predictor
    from hscode.selection.cv import (
        FoldTask,
        assign_folds,
        fold_table,
        run_folds,
        write_fold_data,
    )
    from hscode.selection.registry import Registry, promotion_decision
    from hscode.selection.report import write_report
    from hscode.selection.stats import compare_models
    from hscode.training.data import load_prepared
    from hscode.training.train import train, train_job_for

    sel, t = settings.selection, settings.training
    catalog = Catalog.from_settings(settings)
    run_dir = catalog.selection_dir(ds)
    k = folds or sel.folds
    models = list(models or sel.models)
    data = load_prepared(catalog.partition(catalog.prepared, ds))
    pool = data.train.drop_duplicates("product_id").reset_index(drop=True)  # no up-sampled copies
    fold_dirs = write_fold_data(pool, assign_folds(pool, k, t.seed), run_dir / f"k{k}" / "data")
    tasks = []
    for model in models:
        template = replace(train_job_for(settings, ds, model, run_dir / "unused"),
                           epochs=sel.epochs)
        tasks += [FoldTask(model, i, str(d), str(run_dir / f"k{k}" / "folds" / model /
                                                 f"fold_{i}.json"), template.to_json(), sel.beta)
                  for i, d in enumerate(fold_dirs)]
    start = time.perf_counter()
    results = run_folds(tasks, runner or sel.runner, progress)
    cv_seconds = time.perf_counter() - start
    table = fold_table(results)
    fold_accuracy = pd.DataFrame([{"model": r["model"], "fold": r["fold"],
                                   "accuracy": r["accuracy"]} for r in results])
    comparison, champion_model = compare_models(table, sel.alpha)
    table.to_csv(run_dir / "fold_metrics.csv", index=False)
    comparison.to_csv(run_dir / "per_code_tests.csv", index=False)

    # hold-out: the champion model's artifact challenges the registry's champion
    progress(f"hold-out evaluation of {champion_model}")
    artifact = latest_artifact(catalog, champion_model, ds) or \
        train(settings, ds, champion_model).artifact
    texts, truth = list(data.test["text"]), data.test["hs6"].to_numpy()
    challenger_pred = load_predictor(artifact).predict(texts)
    registry = Registry(catalog.registry)
    current = registry.alias("champion")
    champion_correct = None
    if current is not None:
        champion_correct = load_predictor(Path(current["path"])).predict(texts) == truth
    decision = promotion_decision(champion_correct, challenger_pred == truth, sel.alpha)
    metrics = json.loads((artifact / "metrics.json").read_text())
    version = registry.register(artifact, champion_model, metrics)
    registry.record(version, decision)

    holdout = {f"{champion_model} (champion)": metrics}
    for other in [*models, "svm"]:
        art = latest_artifact(catalog, other, ds) if other != champion_model else None
        if art is not None:
            holdout[other] = json.loads((art / "metrics.json").read_text())
    summary = {
        "ds": ds, "folds": k, "models": models, "epochs_per_fold": sel.epochs,
        "beta": sel.beta, "alpha": sel.alpha, "cv_wall_seconds": round(cv_seconds, 1),
        "cv_mean_accuracy": fold_accuracy.groupby("model")["accuracy"].mean().round(4).to_dict(),
        "cv_mean_fbeta": table.groupby("model")["fbeta"].mean().round(4).to_dict(),
        "codes_tested": len(comparison),
        "codes_significant": int(comparison["significant"].sum()) if len(comparison) else 0,
        "champion": champion_model, "artifact": str(artifact), "registry_version": version,
        "promoted": decision.promote,
        "holdout_hs6": metrics["hs6_accuracy"], "holdout_hs4": metrics["hs4_accuracy"],
        "holdout_hs2": metrics["hs2_accuracy"],
    }
    report = write_report(run_dir / "report.html", summary=summary, folds=table,
                          fold_accuracy=fold_accuracy, comparison=comparison, holdout=holdout,
                          y_true=list(truth), y_pred=challenger_pred,
                          decision={"version": version, **asdict(decision)})
    summary["report"] = str(report)
    (run_dir / "selection.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary
