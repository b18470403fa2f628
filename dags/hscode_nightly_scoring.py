"""
### hscode nightly scoring

Every night at 02:00 UTC: snapshot the product master, validate, clean, validate, score the
whole catalog with the champion model, validate the predictions, publish them to the
warehouse, and check drift.

**Run date.** The schedule is a `CronTriggerTimetable`: the run that starts at 02:00 UTC on
day D has logical date D, so `{{ ds }}` = D. It snapshots the catalog as it is that night and
replaces exactly the `ds = D` partitions (snapshot, clean sets, `hs_predictions`,
`hs_unscorable`, `hs_scoring_runs`, `hs_drift`); nothing of other dates is touched.

**Backfill** a range (each date replaces only its own partition; rerunning changes nothing):

    airflow backfill create --dag-id hscode_nightly_scoring \\
        --from-date 2026-11-01 --to-date 2026-11-03 --reprocess-behavior completed \\
        --dag-run-conf '{"model_version": 3}'

`model_version` (a registry version) pins the model; empty means the champion.

**Outputs.** Warehouse tables `hs_predictions`, `hs_unscorable`, `hs_scoring_runs`,
`hs_drift` and the view `hs_review_queue`; reports and Data Docs under `data/runs/ds=D/`.
The asset `hscode://warehouse/hs_predictions` is updated when a date is published; the asset
`hscode://signals/drift` when drift crosses its threshold, and `hscode://warehouse/hs_code_reviews`
when reviewers have decided `review.retrain_after` products since the last retrain (both
trigger `hscode_retrain`).
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, Asset, CronTriggerTimetable, Param, task

from hscode.orchestration import MACROS, RUN_DATE, default_args, gate_task, run_summary, spark_job

PREDICTIONS = Asset("hscode://warehouse/hs_predictions")
DRIFT_SIGNAL = Asset("hscode://signals/drift")
REVIEWS = Asset("hscode://warehouse/hs_code_reviews")

with DAG(
    dag_id="hscode_nightly_scoring",
    schedule=CronTriggerTimetable("0 2 * * *", timezone="UTC"),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),  # runs before it are empty: backfills too
    catchup=False,
    max_active_runs=1,  # one writer at a time on the embedded DuckDB warehouse
    default_args=default_args(),
    params={"model_version": Param(None, type=["null", "integer"], minimum=1,
                                   description="Registry version to score with; "
                                               "empty = the champion")},
    user_defined_macros=MACROS,  # spark_submit_opts for the Spark tasks
    tags=["hscode", "scoring", "nightly"],
    doc_md=__doc__,
) as dag:

    @task.short_circuit
    def drift_breached(run_date: str) -> bool:
        """Continue to the retrain signal only when a drift metric is over its threshold."""
        return bool(run_summary(run_date, "drift")["retrain_recommended"])

    @task(outlets=[DRIFT_SIGNAL])
    def signal_retrain(run_date: str) -> list:
        """Emit the drift asset; `hscode_retrain` is scheduled on it."""
        return run_summary(run_date, "drift")["breached"]

    @task.short_circuit
    def enough_reviews() -> bool:
        """Continue to the reviews signal once reviewers decided `review.retrain_after`
        products since the last retrain."""
        from hscode.config import load_settings
        from hscode.review.store import retrain_due

        due = retrain_due(load_settings())
        print(f"reviews since the last retrain: {due}")
        return due["due"]

    @task(outlets=[REVIEWS])
    def signal_reviews() -> None:
        """Emit the reviews asset; `hscode_retrain` is scheduled on it."""

    extract = spark_job("extract_products", task_id="extract")
    clean = spark_job("clean_products", task_id="clean")
    score = spark_job("score_catalog", task_id="score", args=[
        "--model-version",
        "{{ params.model_version if params.model_version is not none else '' }}"])
    publish = spark_job("publish_predictions", task_id="publish", outlets=[PREDICTIONS])
    drift = spark_job("check_drift", task_id="drift_check")

    validate_snapshot = gate_task("validate_snapshot", ["raw_products"])
    validate_clean = gate_task("validate_clean", ["clean_scoring", "clean_training"])
    validate_predictions = gate_task("validate_predictions", ["predictions"])

    (extract >> validate_snapshot >> clean >> validate_clean >> score
     >> validate_predictions >> publish >> drift >> drift_breached(RUN_DATE)
     >> signal_retrain(RUN_DATE))
    publish >> enough_reviews() >> signal_reviews()
