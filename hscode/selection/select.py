"""``hscode select``: cross-validate the networks, test per code, promote, report."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
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
    """Stage 1: k-fold CV of every candidate (resumable), the per-code tests, the champion.

    Candidates: the single models (``selection.models``: networks and the SVM) and the
    ensembles built from their fold scores (``selection.ensembles``). The champion is the
    candidate with the highest mean F-beta over all codes and folds (ties: single models
    before ensembles, in configured order). Writes
    ``fold_metrics.csv``, ``fold_accuracy.csv``, ``per_code_tests.csv`` (all candidates),
    ``routing.csv`` (the routed ensemble's per-code table, single models only) and ``cv.json``
    under the date's selection folder. Fold files live under ``cv/k<k>-<key>/``, keyed by the
    data's content and the parameters, so a rerun after a new snapshot or new parameters
    trains new folds.
    """
    from hscode.selection.cv import (
        FOLD_SCHEME,
        FoldTask,
        assign_folds,
        cache_key,
        fold_table,
        run_folds,
        write_fold_data,
    )
    from hscode.selection.ensemble_cv import ensemble_folds, routing_table
    from hscode.selection.stats import compare_models
    from hscode.training.artifacts import snapshot_id
    from hscode.training.data import load_prepared
    from hscode.training.train import train_job_for

    sel, t = settings.selection, settings.training
    catalog = Catalog.from_settings(settings)
    run_dir = catalog.selection_dir(ds)
    k = folds or sel.folds
    models = list(models or sel.models)
    data = load_prepared(catalog.partition(catalog.prepared, ds))
    pool = data.train.drop_duplicates("product_id").reset_index(drop=True)  # no up-sampled copies
    data_key = cache_key(snapshot_id(ds, pool, pool.iloc[:0]), k, t.seed, FOLD_SCHEME)
    cv_root = run_dir / "cv" / f"k{k}-{data_key}"
    fold_dirs = write_fold_data(pool, assign_folds(pool, k, t.seed), cv_root / "data")
    tasks, files = [], {}
    for model in models:
        template = replace(train_job_for(settings, ds, model, run_dir / "unused"),
                           epochs=sel.epochs, prepared_dir="", out_dir="")
        key = cache_key(template.to_json(), sel.beta)
        files[model] = [cv_root / "folds" / f"{model}-{key}" / f"fold_{i}.json"
                        for i in range(len(fold_dirs))]
        tasks += [FoldTask(model, i, str(d), str(files[model][i]), template.to_json(), sel.beta)
                  for i, d in enumerate(fold_dirs)]
    start = time.perf_counter()
    results = run_folds(tasks, runner or sel.runner, progress)
    members_table = fold_table(results)
    progress(f"ensembles {', '.join(sel.ensembles)} on the stored fold scores")
    results += ensemble_folds(files, members_table, list(sel.ensembles), sel.alpha, sel.beta,
                              t.seed)
    cv_seconds = time.perf_counter() - start
    table = fold_table(results)
    fold_accuracy = pd.DataFrame([{"model": r["model"], "fold": r["fold"],
                                   "accuracy": r["accuracy"]} for r in results])
    # ties go to the simplest candidate (a routed ensemble that routes no code is its base)
    comparison, champion_model = compare_models(table, sel.alpha, [*models, *sel.ensembles])
    routing, base = routing_table(members_table, sel.alpha)
    table.to_csv(run_dir / "fold_metrics.csv", index=False)
    fold_accuracy.to_csv(run_dir / "fold_accuracy.csv", index=False)
    comparison.to_csv(run_dir / "per_code_tests.csv", index=False)
    pd.DataFrame({"code": list(routing), "model": list(routing.values())}).to_csv(
        run_dir / "routing.csv", index=False)
    mean_fbeta = table.groupby("model")["fbeta"].mean().sort_values(ascending=False)
    cv = {
        "ds": ds, "folds": k, "models": models, "ensembles": list(sel.ensembles),
        "candidates": list(mean_fbeta.index), "epochs_per_fold": sel.epochs,
        "beta": sel.beta, "alpha": sel.alpha, "cv_wall_seconds": round(cv_seconds, 1),
        "cv_dir": str(cv_root),
        "cv_mean_accuracy": fold_accuracy.groupby("model")["accuracy"].mean().round(4).to_dict(),
        "cv_mean_fbeta": mean_fbeta.round(4).to_dict(),
        "codes_tested": len(comparison),
        "codes_significant": int(comparison["significant"].sum()) if len(comparison) else 0,
        "routing_base": base, "routed_codes": len(routing),
        "champion": champion_model,
        "champion_reason": _why(mean_fbeta, champion_model),
    }
    _write(run_dir / "cv.json", cv)
    return cv


def _why(mean_fbeta: pd.Series, champion: str) -> str:
    others = mean_fbeta.drop(champion)
    if others.empty:
        return f"{champion} is the only candidate"
    runner_up = str(others.idxmax())
    from hscode.selection.stats import TIE

    tie = (" (a tie goes to the simplest candidate)"
           if abs(others.max() - mean_fbeta[champion]) <= TIE else "")
    return (f"{champion} has the highest cross-validated mean F-beta "
            f"({mean_fbeta[champion]:.4f}; next: {runner_up} {others.max():.4f}){tie}")


def candidate_artifacts(settings: Settings, ds: str, cv: dict[str, Any], required: str,
                        progress: Callable[[str], None] = lambda _m: None) -> dict[str, Path]:
    """The artifact of every candidate for ``ds``: single models as trained (the ones the
    ``required`` candidate needs are trained when missing), ensembles built from them
    (reused when an ensemble of the same member artifacts exists)."""
    from hscode.ensemble import ENSEMBLES, build_ensemble, ensemble_spec, load_ensemble
    from hscode.predictor import Predictor
    from hscode.training.artifacts import new_version
    from hscode.training.finalise import finalise_artifact
    from hscode.training.train import train

    catalog = Catalog.from_settings(settings)
    ensembles = [e for e in cv.get("ensembles", []) if e in ENSEMBLES]
    needed = set(cv["models"]) if required in ensembles else {required}
    found: dict[str, Path] = {}
    for model in cv["models"]:
        art = latest_artifact(catalog, model, ds)
        if art is None and model in needed:
            progress(f"training {model} for {ds}")
            art = train(settings, ds, model).artifact
        if art is not None:
            found[model] = art
    if not all(m in found for m in cv["models"]):
        return found
    run_dir = catalog.selection_dir(ds)
    routing = pd.read_csv(run_dir / "routing.csv", dtype=str) if (
        run_dir / "routing.csv").is_file() else pd.DataFrame(columns=["code", "model"])
    prepared = catalog.partition(catalog.prepared, ds)
    members = {m: found[m] for m in cv["models"]}
    sources = {m: str(p) for m, p in members.items()}
    base = cv.get("routing_base") or cv["models"][0]
    table = dict(zip(routing["code"], routing["model"], strict=True))
    loaded = None  # the first ensemble built here: its members serve the next ones
    for kind in ensembles:
        existing = latest_artifact(catalog, kind, ds)
        # reused only when built from the same member artifacts with the same routing table
        if existing is not None and _same_ensemble(
                existing, sources, ensemble_spec(kind, list(members), base, table)):
            found[kind] = existing
            continue
        progress(f"building the {kind} ensemble")
        out = build_ensemble(kind, members, catalog.models / kind / new_version(),
                             base=base, routing=table,
                             lineage={"ds": ds, "prepared_dir": str(prepared),
                                      "cv_dir": cv.get("cv_dir")})
        ensemble = load_ensemble(out, like=loaded)
        if loaded is None:
            ensemble.memo, loaded = {}, ensemble
        finalise_artifact(out, prepared, Predictor(out, ensemble.labels, "ensemble", ensemble))
        found[kind] = out
    return found


def _same_ensemble(artifact: Path, sources: dict[str, str], spec: dict[str, Any]) -> bool:
    """Whether the ensemble ``artifact`` holds these member artifacts and this spec."""
    lineage = json.loads((artifact / "lineage.json").read_text())
    return (lineage.get("members") == sources
            and json.loads((artifact / "ensemble.json").read_text()) == spec)


def gate_rows(rows: pd.DataFrame, *artifacts: Path) -> np.ndarray:
    """Mask of ``rows`` none of ``artifacts`` trained on (by the texts' hashes each artifact
    carries)."""
    from hscode.training.artifacts import text_hashes, trained_texts

    keep = np.ones(len(rows), dtype=bool)
    hashes = text_hashes(rows["text"], unique=False)
    for art in artifacts:
        seen = trained_texts(art)
        if seen is not None:
            keep &= ~np.isin(hashes, seen)
    return keep


def promote(settings: Settings, ds: str, progress: Callable[[str], None] = lambda _m: None
            ) -> dict[str, Any]:
    """Stage 2: the CV champion's artifact for ``ds`` (trained or built if missing)
    challenges the registry's champion on the **calibration** split's rows neither trained
    on; it is registered, and promoted when the non-inferiority gate says so. The test split
    takes no part in the decision, so the figures reported on it stay unbiased. Writes
    ``promotion.json`` and ``holdout_predictions.csv`` (the champion on the test split).
    """
    from hscode.predictor import load_predictor
    from hscode.selection.registry import Registry, promotion_decision
    from hscode.training.data import load_prepared

    catalog = Catalog.from_settings(settings)
    run_dir = catalog.selection_dir(ds)
    cv = _read(run_dir / "cv.json", "run the cross-validation stage first")
    champion_model = cv["champion"]
    data = load_prepared(catalog.partition(catalog.prepared, ds))
    candidates = candidate_artifacts(settings, ds, cv, champion_model, progress)
    artifact = candidates[champion_model]
    progress(f"promotion gate for {champion_model} (calibration split)")
    registry = Registry(catalog.registry)
    current = registry.alias("champion")
    current_path = Path(current["path"]) if current is not None else None
    challenger = load_predictor(artifact)
    keep = gate_rows(data.calibration, artifact, *([current_path] if current_path else []))
    gate = data.calibration[keep]
    texts, truth = list(gate["text"]), gate["hs6"].to_numpy()
    champion_correct = None
    if current_path is not None:
        champion_correct = load_predictor(current_path).predict(texts) == truth
    decision = promotion_decision(champion_correct, challenger.predict(texts) == truth,
                                  settings.selection.alpha, settings.selection.max_regression)
    decision = replace(decision, rows_left_out=int((~keep).sum()))
    metrics = json.loads((artifact / "metrics.json").read_text())
    version = registry.register(artifact, champion_model, metrics)
    registry.record(version, decision)
    pd.DataFrame({"truth": data.test["hs6"].to_numpy(),
                  "prediction": challenger.predict(list(data.test["text"]))}).to_csv(
        run_dir / "holdout_predictions.csv", index=False)
    out = {"champion": champion_model, "artifact": str(artifact), "registry_version": version,
           "promoted": decision.promote,
           "decision": {"version": version, "split": "calibration", **asdict(decision)},
           "metrics": metrics, "candidates": {m: str(p) for m, p in candidates.items()}}
    _write(run_dir / "promotion.json", out)
    return out


def _prepared_summary(catalog: Catalog, ds: str) -> dict[str, Any]:
    path = catalog.run_dir(ds) / "prepare_training.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def candidate_summary(settings: Settings, cv: dict[str, Any], candidates: dict[str, str],
                      references: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per candidate: CV figures, test-split figures, calibration and threshold
    (from each candidate's scoring reference in ``references``)."""
    from hscode.scoring.reference import review_threshold

    rows = []
    for model in cv.get("candidates", list(candidates)):
        row: dict[str, Any] = {"model": model,
                               "cv_mean_fbeta": cv["cv_mean_fbeta"].get(model),
                               "cv_mean_accuracy": cv["cv_mean_accuracy"].get(model)}
        art = Path(candidates[model]) if model in candidates else None
        if art is not None and (art / "metrics.json").is_file():
            m = json.loads((art / "metrics.json").read_text())
            row.update({k: m.get(k) for k in ("hs6_accuracy", "hs4_accuracy", "hs2_accuracy",
                                              "top3_accuracy", "ece_uncalibrated", "ece",
                                              "reviewed_test_rows", "reviewed_hs6_accuracy")})
            t = review_threshold(references[model], settings.scoring.review_precision)
            row.update(threshold=t.value, test_precision=t.precision,
                       test_coverage=t.coverage)
        rows.append(row)
    return pd.DataFrame(rows)


def report(settings: Settings, ds: str) -> dict[str, Any]:
    """Stage 3: the HTML report and ``selection.json`` from the first two stages' files."""
    from hscode.scoring.reference import load_reference
    from hscode.selection.report import write_report

    catalog = Catalog.from_settings(settings)
    run_dir = catalog.selection_dir(ds)
    cv = _read(run_dir / "cv.json", "run the cross-validation stage first")
    promoted = _read(run_dir / "promotion.json", "run the promotion stage first")
    champion_model, metrics = promoted["champion"], promoted["metrics"]
    candidates = promoted.get("candidates", {champion_model: promoted["artifact"]})
    references = {m: load_reference(Path(p)) for m, p in candidates.items()}
    table = candidate_summary(settings, cv, candidates, references)
    holdout = {(f"{m} (champion)" if m == champion_model else m):
               json.loads((Path(p) / "metrics.json").read_text())
               for m, p in candidates.items() if (Path(p) / "metrics.json").is_file()}
    reliability = {m: ref["holdout"] for m, ref in references.items()}
    summary = {
        **cv, "artifact": promoted["artifact"], "registry_version": promoted["registry_version"],
        "promoted": promoted["promoted"], "holdout_hs6": metrics["hs6_accuracy"],
        "holdout_hs4": metrics["hs4_accuracy"], "holdout_hs2": metrics["hs2_accuracy"],
        "holdout_ece": metrics.get("ece"),
        # reviewers' labels in the prepared data (train / calibration / test) and the
        # champion's accuracy on the reviewed test rows
        "reviewed_rows": _prepared_summary(catalog, ds).get("reviewed_rows"),
        "reviewed_hs6": metrics.get("reviewed_hs6_accuracy"),
    }
    preds = pd.read_csv(run_dir / "holdout_predictions.csv", dtype=str)
    path = write_report(run_dir / "report.html", summary=summary,
                        folds=pd.read_csv(run_dir / "fold_metrics.csv", dtype={"code": str}),
                        fold_accuracy=pd.read_csv(run_dir / "fold_accuracy.csv"),
                        comparison=pd.read_csv(run_dir / "per_code_tests.csv",
                                               dtype={"code": str}),
                        holdout=holdout, y_true=list(preds["truth"]),
                        y_pred=list(preds["prediction"]), decision=promoted["decision"],
                        candidates=table, reliability=reliability)
    table.to_csv(run_dir / "candidates.csv", index=False)
    summary["report"] = str(path)
    summary["candidate_table"] = table.to_dict(orient="records")
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
