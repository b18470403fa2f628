"""``hscode`` commands on the models: train, search, select, evaluate."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table as RichTable

from hscode.cli import ConfigOpt, DsOpt, app, console, settings_from_options, utc_today


@app.command()
def train(
    model: Annotated[str, typer.Option("--model", "-m",
                                       help="textcnn, lstm, dnn, svm, or all")] = "textcnn",
    ds: DsOpt = "",
    num_proc: Annotated[Optional[int], typer.Option(
        "--np", help="Horovod ranks (default: training.num_proc).")] = None,
    launcher: Annotated[str, typer.Option(help="local (horovod.run, Gloo) or spark "
                                          "(horovod.spark.run).")] = "local",
    job_file: Annotated[Optional[Path], typer.Option(
        help="Only write the training job as JSON, for `horovodrun -np N python -m "
             "hscode.training.hvd_train FILE`.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Train a model on a date's prepared data (run prepare_training first); save the artifact."""
    from hscode.catalog import Catalog, parse_ds
    from hscode.training.artifacts import new_version
    from hscode.training.train import ALL_MODELS, train_job_for
    from hscode.training.train import train as run

    settings = settings_from_options(config)
    ds = parse_ds(ds or utc_today()).isoformat()
    if job_file is not None:
        out = Catalog.from_settings(settings).models / model / new_version()
        job_file.write_text(train_job_for(settings, ds, model, out).to_json())
        console.print(f"wrote {job_file}; artifact will be {out}")
        return
    models = ALL_MODELS if model == "all" else (model,)
    if launcher == "spark":
        from hscode.spark import build_spark

        build_spark(settings, None, "hscode-train")
    results = []
    for name in models:
        console.rule(f"train {name} --ds {ds}")
        outcome = run(settings, ds, name, num_proc, launcher)
        results.append(outcome)
        console.print(f"artifact: {outcome.artifact}")
    table = RichTable(title=f"hold-out metrics, ds={ds}")
    for col in ("model", "HS6 acc", "HS4 acc", "HS2 acc", "top-3", "macro F1", "ranks"):
        table.add_column(col)
    for o in results:
        m = o.metrics
        table.add_row(o.model, *(f"{m[k]:.4f}" for k in ("hs6_accuracy", "hs4_accuracy",
                                                         "hs2_accuracy", "top3_accuracy",
                                                         "macro_f1")), str(len(o.ranks) or "-"))
    console.print(table)


@app.command()
def search(
    model: Annotated[str, typer.Option("--model", "-m", help="dnn, lstm or textcnn")] = "dnn",
    ds: DsOpt = "",
    trials: Annotated[Optional[int], typer.Option(
        help="Trial budget (default: training.search_trials).")] = None,
    max_layers: Annotated[int, typer.Option(help="Cap on layers (paper: 15).")] = 15,
    max_neurons: Annotated[int, typer.Option(
        help="Cap on the first layer's neurons (paper: 1024).")] = 1024,
    config: ConfigOpt = None,
) -> None:
    """Bayesian (TPE) hyper-parameter search; the best parameters are reused by `train`.

    The first trial is the incumbent, the parameters `train` uses now.
    """
    from dataclasses import replace

    from hscode.catalog import Catalog, parse_ds
    from hscode.training.search import run_search
    from hscode.training.train import train_job_for

    settings = settings_from_options(config)
    catalog = Catalog.from_settings(settings)
    ds = parse_ds(ds or utc_today()).isoformat()
    template = replace(train_job_for(settings, ds, model, catalog.search / "unused"),
                       epochs=settings.training.search_epochs)
    result = run_search(template, catalog.search / f"{model}.json",
                        trials or settings.training.search_trials, max_layers, max_neurons,
                        settings.training.search_min_gain)
    kept = "the incumbent" if result["kept_trial"] == 0 else f"trial {result['kept_trial']}"
    console.print(f"validation accuracy: incumbent {result['incumbent_value']:.4f}, best trial "
                  f"{result['best_trial_value']:.4f}; kept {kept} (a trial must add "
                  f"{result['min_gain']:.3f}): {result['params']}")
    console.print(f"saved: {catalog.search / f'{model}.json'}")


@app.command()
def select(
    ds: DsOpt = "",
    folds: Annotated[Optional[int], typer.Option(
        help="k of the k-fold CV (default: selection.folds = 37).")] = None,
    models: Annotated[Optional[str], typer.Option(
        help="Comma-separated single models (default: selection.models).")] = None,
    runner: Annotated[Optional[str], typer.Option(
        help="local or spark (folds as Spark tasks).")] = None,
    stage: Annotated[str, typer.Option(
        help="all, or one stage: cv (folds + per-code tests), promote (hold-out gate + "
             "registry), report (HTML).")] = "all",
    config: ConfigOpt = None,
) -> None:
    """Cross-validate the candidates, test per code, promote the champion, write the report.

    Candidates: the networks, the SVM and the ensembles; the champion is promoted through
    the non-inferiority gate.
    """
    from hscode.catalog import parse_ds
    from hscode.selection import select as stages

    settings = settings_from_options(config)
    ds = parse_ds(ds or utc_today()).isoformat()
    if stage not in ("all", "cv", "promote", "report"):
        raise typer.BadParameter(f"unknown stage {stage!r}", param_hint="--stage")
    if stage in ("all", "cv") and (runner or settings.selection.runner) == "spark":
        from hscode.spark import build_spark

        build_spark(settings, None, "hscode-select")
    with console.status("selecting") as status:
        def progress(message: str) -> None:  # the spinner here, a log line under Airflow
            status.update(f"select: {message}")
            logging.getLogger("hscode.select").info("%s", message)

        model_list = models.split(",") if models else None
        if stage == "cv":
            summary = stages.cross_validate(settings, ds, folds, model_list, runner, progress)
        elif stage == "promote":
            summary = stages.promote(settings, ds, progress)
        elif stage == "report":
            summary = stages.report(settings, ds)
        else:
            summary = stages.select_models(settings, ds, folds, model_list, runner, progress)
    if stage != "all":
        typer.echo(json.dumps({k: v for k, v in summary.items() if k != "metrics"}, indent=2,
                              default=str))
        return
    for key in ("champion", "champion_reason", "promoted", "registry_version", "cv_mean_fbeta",
                "cv_wall_seconds",
                "codes_significant", "holdout_hs6", "holdout_hs4", "holdout_hs2", "report"):
        console.print(f"{key:>18}: {summary[key]}")


@app.command()
def evaluate(
    csv: Annotated[Path, typer.Option("--csv", exists=True, dir_okay=False,
                                      help="Labelled CSV in the declarations format.")],
    model_version: Annotated[Optional[int], typer.Option(
        help="Registry version to evaluate (default: the champion).")] = None,
    all_candidates: Annotated[bool, typer.Option(
        "--all-candidates", help="Every candidate of the newest selection run (single "
                                 "models and ensembles).")] = False,
    ds: Annotated[Optional[str], typer.Option(
        help="With --all-candidates: that date's selection run instead of the newest.")] = None,
    out: Annotated[Optional[Path], typer.Option(
        help="Folder for evaluation.json / .md (default: data/evaluations/<csv name>).")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Accuracy, review-threshold precision and coverage, and calibration on a labelled CSV."""
    from hscode.evaluate import (
        clean_labelled_csv,
        compare_with_reference,
        evaluate_model,
        markdown_table,
        models_to_evaluate,
        write_evaluation,
    )

    settings = settings_from_options(config)
    if model_version is not None and all_candidates:
        raise typer.BadParameter("give --model-version or --all-candidates, not both")
    models = models_to_evaluate(settings, model_version, all_candidates, ds)
    with console.status("cleaning the CSV"):
        frame, counts = clean_labelled_csv(settings, csv)
    rows, correct = [], []
    for name, version, artifact in models:
        with console.status(f"evaluating {name}"):
            figures, right = evaluate_model(artifact, frame, settings.scoring.review_precision,
                                            settings.scoring.review_threshold)
        rows.append({"model": name, "version": version, **figures})
        correct.append(right)
    compare_with_reference(rows, correct)
    target = out or settings.data_dir / "evaluations" / csv.stem
    path = write_evaluation(target, csv, counts, rows, settings.scoring.review_precision)
    typer.echo(markdown_table(rows))
    console.print(f"rows: {counts}; written to {path} and {path.with_suffix('.md')}")
