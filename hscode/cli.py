"""The ``hscode`` command line for people: ``hscode --help`` lists the commands."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table as RichTable

if TYPE_CHECKING:
    from hscode.catalog import Catalog

app = typer.Typer(
    help="hscode: assign HS customs codes to a product catalog (batch pipeline).",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=True)

ConfigOpt = Annotated[
    Optional[Path],
    typer.Option("--config", "-c", help="YAML file layered over the defaults.",
                 exists=True, dir_okay=False),
]
WarehouseOpt = Annotated[
    Optional[str],
    typer.Option("--warehouse-url", help="Override warehouse.url (duckdb:/// or postgresql://)."),
]


def _settings(config: Path | None, warehouse_url: str | None = None):
    from hscode.config import load_settings, refuse_password

    settings = load_settings(config)
    if warehouse_url:
        refuse_password(warehouse_url, "--warehouse-url")
        settings = settings.model_copy(
            update={"warehouse": settings.warehouse.model_copy(update={"url": warehouse_url})}
        )
    return settings


VERBOSE = {"on": False}  # `hscode --verbose`: DAG runs stream their whole output


@app.callback()
def _main(verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", help="Debug logging; DAG runs stream every task's log.")] = False
          ) -> None:
    VERBOSE["on"] = verbose
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@app.command()
def config(config: ConfigOpt = None, warehouse_url: WarehouseOpt = None) -> None:
    """Print the resolved configuration (defaults + file + environment) as JSON."""
    settings = _settings(config, warehouse_url)
    from hscode.config import redact_url

    out = json.loads(settings.model_dump_json())
    out["warehouse"]["url"] = redact_url(out["warehouse"]["url"])
    out["resolved"] = {"home": str(settings.home), "data_dir": str(settings.data_dir),
                       "warehouse_url": settings.warehouse_display}
    typer.echo(json.dumps(out, indent=2))


@app.command()
def seed(
    config: ConfigOpt = None,
    warehouse_url: WarehouseOpt = None,
    declarations: Annotated[
        Optional[Path],
        typer.Option(help="Source CSV (default: sources.declarations_csv).",
                     exists=True, dir_okay=False),
    ] = None,
) -> None:
    """Load the demo declarations and the HS nomenclature into the warehouse (idempotent)."""
    from hscode.seed import seed_warehouse
    from hscode.warehouse import warehouse_from_settings

    settings = _settings(config, warehouse_url)
    with console.status("seeding") as status, warehouse_from_settings(settings) as wh:
        report = seed_warehouse(settings, wh, declarations,
                                step=lambda msg: status.update(f"seed: {msg}"))
    table = RichTable(title=f"seed -> {settings.warehouse_display}")
    table.add_column("what")
    table.add_column("rows", justify="right")
    table.add_row("source rows read", str(report.rows_read))
    table.add_row("product_master", str(report.loaded))
    for reason, n in sorted(report.rejected.items()):
        table.add_row(f"rejected: {reason}", str(n))
    table.add_row("hs_nomenclature", str(report.nomenclature_rows))
    table.add_row("hs_sections", str(report.section_rows))
    console.print(table)


@app.command()
def tables(config: ConfigOpt = None, warehouse_url: WarehouseOpt = None) -> None:
    """Show the warehouse's tables and their row counts."""
    from hscode.warehouse import ALL_TABLES, warehouse_from_settings

    settings = _settings(config, warehouse_url)
    out = RichTable(title=settings.warehouse_display)
    out.add_column("table")
    out.add_column("rows", justify="right")
    out.add_column("description")
    with warehouse_from_settings(settings) as wh:
        wh.ensure_schema()
        for t in ALL_TABLES:
            out.add_row(t.name, str(wh.count(t)), t.description)
    console.print(out)


DsOpt = Annotated[str, typer.Option("--ds", help="Run date YYYY-MM-DD (default: today, UTC).")]


def _today() -> str:
    import datetime as dt

    return dt.datetime.now(dt.UTC).date().isoformat()


@app.command()
def submit(
    job: Annotated[str, typer.Argument(help="A job in jobs/: extract_products, clean_products, "
                                            "prepare_training, score_catalog, "
                                            "publish_predictions, check_drift")],
    ds: DsOpt = "",
    master: Annotated[str, typer.Option(help="Spark master.")] = "local[*]",
    config: ConfigOpt = None,
) -> None:
    """Run one Spark job for a date through spark-submit."""
    from hscode.catalog import parse_ds
    from hscode.submit import submit as run

    job_args = ["--config", str(config.resolve())] if config else []
    code = run(job, parse_ds(ds or _today()).isoformat(), master, job_args)
    if code:
        raise typer.Exit(code)


DEMO_PROFILE = Path(__file__).with_name("demo.yaml")


def _airflow_env(config: Path | None):
    from hscode.local_airflow import airflow_env, ensure_metadata_db

    settings = _settings(config)
    env = airflow_env(settings, config)
    ensure_metadata_db(env)
    return settings, env


@app.command()
def demo(
    ds: DsOpt = "",
    config: Annotated[Optional[Path], typer.Option(
        "--config", "-c", exists=True, dir_okay=False,
        help="YAML layered over the defaults (default: the demo profile hscode/demo.yaml: "
             "3 epochs, 3 folds).")] = None,
    backfill_days: Annotated[int, typer.Option(
        help="Also re-score this many dates before --ds, as a backfill would.")] = 0,
) -> None:
    """The whole pipeline through Airflow: seed, retrain DAG, nightly scoring DAG; print
    where the predictions, review queue, Data Docs and report are."""
    import datetime as dt

    from hscode.catalog import Catalog, parse_ds
    from hscode.warehouse import warehouse_from_settings

    config = config or DEMO_PROFILE
    ds = parse_ds(ds or _today()).isoformat()
    started = time.monotonic()
    seed(config=config)
    settings, env = _airflow_env(config)
    catalog = Catalog.from_settings(settings)
    _dag_run(catalog, "hscode_retrain", ds, env,
             expect=catalog.selection_dir(ds) / "selection.json")
    day = dt.date.fromisoformat(ds)
    dates = [(day - dt.timedelta(days=i)).isoformat() for i in range(backfill_days, -1, -1)]
    for d in dates:
        _dag_run(catalog, "hscode_nightly_scoring", d, env,
                 expect=catalog.run_dir(d) / "publish_predictions.json")
    console.rule(f"outputs (demo took {_elapsed(started)})")
    with warehouse_from_settings(settings) as wh:
        per_day = wh.execute("SELECT CAST(ds AS VARCHAR), COUNT(*) FROM hs_predictions "
                             "GROUP BY ds ORDER BY ds")
        queue = dict(wh.execute("SELECT CAST(ds AS VARCHAR), COUNT(*) FROM hs_review_queue "
                                "GROUP BY ds")).get(ds, 0)
    selection = catalog.selection_dir(ds)
    rows = [
        ("warehouse", settings.warehouse_display),
        ("hs_predictions", ", ".join(f"{d}: {n} rows" for d, n in per_day)),
        ("hs_review_queue", f"{queue} rows for {ds} (view)"),
        ("other tables", "hs_unscorable, hs_scoring_runs, hs_drift"),
        ("Data Docs", str(catalog.run_dir(ds) / "gx/uncommitted/data_docs/local_site/index.html")),
        ("selection report", str(selection / "report.html")),
        ("registry", str(catalog.registry)),
        ("Airflow", f"AIRFLOW_HOME={env['AIRFLOW_HOME']}; UI: `hscode airflow standalone` then "
                    "http://localhost:8080 (password in AIRFLOW_HOME/"
                    "simple_auth_manager_passwords.json.generated)"),
    ]
    for name, where in rows:
        console.print(f"{name:>16}: {where}")


def _dag_run(catalog: Catalog, dag_id: str, ds: str, env: dict[str, str], *,
             expect: Path, conf: dict | None = None) -> None:
    """One ``airflow dags test`` run: a heading with its log file, a line per task."""
    from hscode.local_airflow import dags_test

    log_file = catalog.dag_log(dag_id, ds)
    console.rule(f"{dag_id} {ds}")
    console.print(f"  log: {log_file}", markup=False, highlight=False, soft_wrap=True)
    started = time.monotonic()
    dags_test(dag_id, ds, env, conf, expect=expect, log_file=log_file, verbose=VERBOSE["on"])
    console.print(f"  {dag_id} {ds} done in {_elapsed(started)}", markup=False,
                  highlight=False, soft_wrap=True)


def _elapsed(started: float) -> str:
    from hscode.progress import duration

    return duration(time.monotonic() - started)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True,
                               "help_option_names": []})  # --help is Airflow's
def airflow(ctx: typer.Context, config: ConfigOpt = None) -> None:
    """Run an Airflow command with the project's environment (SQLite metadata under
    data/airflow, dags/, spark_default on local[*]): e.g. `hscode airflow standalone`,
    `hscode airflow dags list`, `hscode airflow backfill create --dag-id ...`."""
    from hscode.local_airflow import run_airflow

    _, env = _airflow_env(config)
    raise typer.Exit(run_airflow(ctx.args, env, check=False).returncode)


@app.command()
def backfill(
    from_date: Annotated[str, typer.Option(help="First date YYYY-MM-DD (inclusive).")],
    to_date: Annotated[str, typer.Option(help="Last date YYYY-MM-DD (inclusive).")],
    model_version: Annotated[Optional[int], typer.Option(
        help="Registry version to score with (default: the champion).")] = None,
    config: ConfigOpt = None,
) -> None:
    """Re-score a range of dates with the nightly DAG. With a scheduler running on this
    Airflow home (`hscode airflow standalone`), a real Airflow backfill (`airflow backfill
    create`; the DAG is unpaused, as Airflow requires) whose runs it waits for; without one,
    `airflow dags test` date after date. It says which path it took."""
    import datetime as dt

    from hscode.catalog import Catalog, parse_ds
    from hscode.local_airflow import scheduler_backfill, scheduler_running

    first, last = parse_ds(from_date), parse_ds(to_date)
    if last < first:
        raise typer.BadParameter("--to-date is before --from-date")
    settings, env = _airflow_env(config)
    catalog = Catalog.from_settings(settings)
    conf = {"model_version": model_version} if model_version is not None else None
    if scheduler_running(env):
        console.print(f"backfill {first}..{last}: through the running scheduler "
                      "(airflow backfill create)", markup=False, highlight=False)
        started = time.monotonic()
        states = scheduler_backfill("hscode_nightly_scoring", first.isoformat(),
                                    last.isoformat(), env, conf,
                                    echo=lambda m: console.print(m, markup=False))
        console.print(f"backfill done in {_elapsed(started)}", markup=False)
        failed = [d for d, s in states.items() if s != "success"]
        if failed:
            console.print(f"failed dates: {', '.join(failed)} (see the Airflow UI's task logs)",
                          markup=False)
            raise typer.Exit(1)
        return
    console.print(f"backfill {first}..{last}: no scheduler running, so airflow dags test "
                  "date after date", markup=False, highlight=False)
    day = first
    while day <= last:
        _dag_run(catalog, "hscode_nightly_scoring", day.isoformat(), env, conf=conf,
                 expect=catalog.run_dir(day.isoformat()) / "publish_predictions.json")
        day += dt.timedelta(days=1)


OneProcessOpt = Annotated[bool, typer.Option(
    "--one-process/--spark-submit",
    help="Run the jobs in this process, sharing one JVM and SparkSession (a small catalog's "
         "night is mostly JVM starts), or each through spark-submit as Airflow does.")]
ModelVersionOpt = Annotated[Optional[int], typer.Option(
    help="Registry version to score with (default: the champion).")]


@app.command()
def score(
    ds: DsOpt = "",
    model_version: ModelVersionOpt = None,
    config: ConfigOpt = None,
    master: Annotated[str, typer.Option(help="Spark master.")] = "local[*]",
    one_process: OneProcessOpt = False,
) -> None:
    """Score a date's cleaned catalog, publish it to the warehouse, check drift."""
    _night_jobs(("score_catalog", "publish_predictions", "check_drift"), ds, "",
                model_version, config, master, one_process)


@app.command()
def night(
    ds: DsOpt = "",
    to_date: Annotated[str, typer.Option(
        help="Last date YYYY-MM-DD: every date from --ds to it, in order (a backfill "
             "without Airflow; with --one-process the later dates reuse the warm JVM).")] = "",
    model_version: ModelVersionOpt = None,
    config: ConfigOpt = None,
    master: Annotated[str, typer.Option(help="Spark master.")] = "local[*]",
    one_process: OneProcessOpt = False,
) -> None:
    """The nightly DAG's Spark jobs by hand: extract, clean, score, publish, check drift
    (each job gates its own output), for one date or a range."""
    from hscode.submit import NIGHT

    _night_jobs(NIGHT, ds, to_date, model_version, config, master, one_process)


def _night_jobs(jobs: tuple[str, ...], ds: str, to_date: str, model_version: int | None,
                config: Path | None, master: str, one_process: bool) -> None:
    """Run ``jobs`` in order for each date from ``ds`` to ``to_date``; stop at the first
    failure with its exit code; print what each date published."""
    import datetime as dt

    from hscode.catalog import Catalog, parse_ds
    from hscode.jobrun import read_summary
    from hscode.submit import run_in_process, submit

    first = parse_ds(ds or _today())
    last = parse_ds(to_date) if to_date else first
    if last < first:
        raise typer.BadParameter("--to-date is before --ds")
    extra = ["--model-version", str(model_version)] if model_version is not None else []
    if config is not None:  # the jobs (spark-submit children or not) read it from here
        import os

        os.environ["HSCODE_CONFIG"] = str(config.resolve())
    run = run_in_process if one_process else submit
    catalog = Catalog.from_settings(_settings(config))
    how = "in one process" if one_process else "through spark-submit"
    day = first
    while day <= last:
        started = time.monotonic()
        for job in jobs:
            console.rule(f"{job} --ds {day}")
            code = run(job, day.isoformat(), master, extra if job == "score_catalog" else [])
            if code:
                console.print(f"[red]{job} --ds {day} failed with exit code {code}[/]")
                raise typer.Exit(code)
        published = read_summary(catalog, day.isoformat(), "publish_predictions")
        drift = read_summary(catalog, day.isoformat(), "drift")
        t = published["review_threshold"]
        console.print(f"{day}: published {published['predicted_rows']} predictions + "
                      f"{published['unscorable_rows']} unscorable = "
                      f"{published['catalog_rows']} catalog rows; review threshold "
                      f"{t['value']:.3f} (chosen on the {t.get('chosen_on', 'holdout')} "
                      f"split; on the test split: precision {t['precision']}, coverage "
                      f"{t['coverage']:.1%}); review queue {published['review_queue_rows']} "
                      f"rows; drift breached: {drift['breached'] or 'none'}; {len(jobs)} jobs "
                      f"{how} in {_elapsed(started)}", soft_wrap=True)
        day += dt.timedelta(days=1)


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

    settings = _settings(config)
    ds = parse_ds(ds or _today()).isoformat()
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
    config: ConfigOpt = None,
) -> None:
    """Bayesian (TPE) hyper-parameter search; the best parameters are reused by `train`."""
    from dataclasses import replace

    from hscode.catalog import Catalog, parse_ds
    from hscode.training.search import run_search
    from hscode.training.train import train_job_for

    settings = _settings(config)
    catalog = Catalog.from_settings(settings)
    ds = parse_ds(ds or _today()).isoformat()
    template = replace(train_job_for(settings, ds, model, catalog.search / "unused"),
                       epochs=settings.training.search_epochs)
    result = run_search(template, catalog.search / f"{model}.json",
                        trials or settings.training.search_trials, max_layers)
    console.print(f"best validation accuracy {result['value']:.4f}: {result['params']}")
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
    """Cross-validate every candidate (networks, SVM, ensembles), test per code, promote the
    champion through the non-inferiority gate, write the report."""
    from hscode.catalog import parse_ds
    from hscode.selection import select as stages

    settings = _settings(config)
    ds = parse_ds(ds or _today()).isoformat()
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

    settings = _settings(config)
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


@app.command()
def doctor(
    horovod: Annotated[bool, typer.Option(help="Also train on 2 Horovod ranks (~20 s).")] = True,
) -> None:
    """Check the installed stack: versions, Java, silent-exit imports, Horovod averaging."""
    from hscode.doctor import run_all

    with console.status("checking the stack"):
        checks = run_all(horovod=horovod)
    for c in checks:
        console.print(f"[{'green' if c.ok else 'red'}]{'ok ' if c.ok else 'FAIL'}[/] {c.name}: "
                      f"{c.detail}")
    if not all(c.ok for c in checks):
        raise typer.Exit(1)


def _subcommands() -> None:
    from hscode.review.cli import review_app

    app.add_typer(review_app, name="review")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    # ``python -m hscode.cli`` runs this file as ``__main__``, a second copy of the module; the
    # review commands import ``hscode.cli``, so run that module's app (as ``python -m hscode``
    # and the console script do), not this copy's
    from hscode.cli import main as package_main

    package_main()
else:
    _subcommands()
