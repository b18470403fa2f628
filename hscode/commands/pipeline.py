"""``hscode`` commands that run the pipeline: demo, airflow, backfill, score, night."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from hscode.cli import (
    VERBOSE,
    ConfigOpt,
    DsOpt,
    app,
    console,
    seed,
    settings_from_options,
    utc_today,
)

if TYPE_CHECKING:
    from hscode.catalog import Catalog

DEMO_PROFILE = Path(__file__).with_name("demo.yaml")


def _airflow_env(config: Path | None):
    from hscode.local_airflow import airflow_env, ensure_metadata_db

    settings = settings_from_options(config)
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
    """The whole pipeline through Airflow: seed, retrain DAG, nightly scoring DAG.

    Prints where the predictions, review queue, Data Docs and report are.
    """
    import datetime as dt

    from hscode.catalog import Catalog, parse_ds
    from hscode.warehouse import warehouse_from_settings

    config = config or DEMO_PROFILE
    ds = parse_ds(ds or utc_today()).isoformat()
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
    """Run an Airflow command with the project's environment.

    SQLite metadata under data/airflow, dags/, spark_default on local[*]: e.g. `hscode
    airflow standalone`, `hscode airflow dags list`, `hscode airflow backfill create
    --dag-id ...`.
    """
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
    """Re-score a range of dates with the nightly DAG.

    With a scheduler running on this Airflow home (`hscode airflow standalone`), a real
    Airflow backfill (`airflow backfill create`; the DAG is unpaused, as Airflow requires)
    whose runs it waits for; without one, `airflow dags test` date after date. It says which
    path it took.
    """
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
    """The nightly DAG's Spark jobs by hand, for one date or a range.

    Extract, clean, score, publish, check drift; each job gates its own output.
    """
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

    first = parse_ds(ds or utc_today())
    last = parse_ds(to_date) if to_date else first
    if last < first:
        raise typer.BadParameter("--to-date is before --ds")
    extra = ["--model-version", str(model_version)] if model_version is not None else []
    if config is not None:  # the jobs (spark-submit children or not) read it from here
        import os

        os.environ["HSCODE_CONFIG"] = str(config.resolve())
    run = run_in_process if one_process else submit
    catalog = Catalog.from_settings(settings_from_options(config))
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
