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


def cross_validate(settings: Settings, ds: str, folds: int | None = None,
                   models: Sequence[str] | None = None, runner: str | None = None,
                   progress: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """Stage 1: k-fold CV of each network (resumable) and the per-code tests.

    Writes ``fold_metrics.csv``, ``fold_accuracy.csv``, ``per_code_tests.csv`` and
    ``cv.json`` (with the champion model) under the date's selection folder.
    """
    from hscode.selection.cv import FoldTask, assign_folds, fold_table, run_folds, write_fold_data
    from hscode.selection.stats import compare_models
    from hscode.training.data import load_prepared
    from hscode.training.train import train_job_for

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
    fold_accuracy.to_csv(run_dir / "fold_accuracy.csv", index=False)
    comparison.to_csv(run_dir / "per_code_tests.csv", index=False)
    cv = {
        "ds": ds, "folds": k, "models": models, "epochs_per_fold": sel.epochs,
        "beta": sel.beta, "alpha": sel.alpha, "cv_wall_seconds": round(cv_seconds, 1),
        "cv_mean_accuracy": fold_accuracy.groupby("model")["accuracy"].mean().round(4).to_dict(),
        "cv_mean_fbeta": table.groupby("model")["fbeta"].mean().round(4).to_dict(),
        "codes_tested": len(comparison),
        "codes_significant": int(comparison["significant"].sum()) if len(comparison) else 0,
        "champion": champion_model,
    }
    _write(run_dir / "cv.json", cv)
    return cv


def promote(settings: Settings, ds: str, progress: Callable[[str], None] = lambda _m: None
            ) -> dict[str, Any]:
    """Stage 2: the CV champion's artifact for ``ds`` (trained if missing) challenges the
    registry's champion on the hold-out; it is registered and promoted unless significantly
    worse (McNemar). Writes ``promotion.json`` and ``holdout_predictions.csv``.
    """
    from hscode.predictor import load_predictor
    from hscode.selection.registry import Registry, promotion_decision
    from hscode.training.data import load_prepared
    from hscode.training.train import train

    catalog = Catalog.from_settings(settings)
    run_dir = catalog.selection_dir(ds)
    cv = _read(run_dir / "cv.json", "run the cross-validation stage first")
    champion_model = cv["champion"]
    data = load_prepared(catalog.partition(catalog.prepared, ds))
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
    decision = promotion_decision(champion_correct, challenger_pred == truth,
                                  settings.selection.alpha)
    metrics = json.loads((artifact / "metrics.json").read_text())
    version = registry.register(artifact, champion_model, metrics)
    registry.record(version, decision)
    pd.DataFrame({"truth": truth, "prediction": challenger_pred}).to_csv(
        run_dir / "holdout_predictions.csv", index=False)
    out = {"champion": champion_model, "artifact": str(artifact), "registry_version": version,
           "promoted": decision.promote, "decision": {"version": version, **asdict(decision)},
           "metrics": metrics}
    _write(run_dir / "promotion.json", out)
    return out


def report(settings: Settings, ds: str) -> dict[str, Any]:
    """Stage 3: the HTML report and ``selection.json`` from the first two stages' files."""
    from hscode.selection.report import write_report

    catalog = Catalog.from_settings(settings)
    run_dir = catalog.selection_dir(ds)
    cv = _read(run_dir / "cv.json", "run the cross-validation stage first")
    promoted = _read(run_dir / "promotion.json", "run the promotion stage first")
    champion_model, metrics = promoted["champion"], promoted["metrics"]
    holdout = {f"{champion_model} (champion)": metrics}
    for other in [*cv["models"], "svm"]:
        art = latest_artifact(catalog, other, ds) if other != champion_model else None
        if art is not None:
            holdout[other] = json.loads((art / "metrics.json").read_text())
    summary = {
        **cv, "artifact": promoted["artifact"], "registry_version": promoted["registry_version"],
        "promoted": promoted["promoted"], "holdout_hs6": metrics["hs6_accuracy"],
        "holdout_hs4": metrics["hs4_accuracy"], "holdout_hs2": metrics["hs2_accuracy"],
    }
    preds = pd.read_csv(run_dir / "holdout_predictions.csv", dtype=str)
    path = write_report(run_dir / "report.html", summary=summary,
                        folds=pd.read_csv(run_dir / "fold_metrics.csv", dtype={"code": str}),
                        fold_accuracy=pd.read_csv(run_dir / "fold_accuracy.csv"),
                        comparison=pd.read_csv(run_dir / "per_code_tests.csv",
                                               dtype={"code": str}),
                        holdout=holdout, y_true=list(preds["truth"]),
                        y_pred=list(preds["prediction"]), decision=promoted["decision"])
    summary["report"] = str(path)
    _write(run_dir / "selection.json", summary)
    return summary


def select_models(settings: Settings, ds: str, folds: int | None = None,
                  models: Sequence[str] | None = None, runner: str | None = None,
                  progress: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """The whole selection for one date: :func:`cross_validate`, :func:`promote`,
    :func:`report`; returns the summary (also saved as ``selection.json``)."""
    cross_validate(settings, ds, folds, models, runner, progress)
    promote(settings, ds, progress)
    return report(settings, ds)


def _write(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")


def _read(path: Path, hint: str) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing: {hint}")
    return json.loads(path.read_text(encoding="utf-8"))
