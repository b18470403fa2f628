"""
### hscode retraining

Snapshot -> validate -> clean -> validate -> prepare the train / calibration / test splits
(Spark) -> train the candidates (a task group: DNN, LSTM, Text-CNN with Horovod, and the SVM;
each calibrated on the calibration split) -> k-fold cross-validation of every candidate,
soft-vote and per-code routed ensembles included, with a one-way ANOVA per code -> promotion
through the non-inferiority gate -> HTML report.

**When.** On demand (trigger it in the UI or `airflow dags trigger hscode_retrain`), when
new labelled data lands (asset `hscode://warehouse/product_master`: post an asset event
after a load), when a nightly run marks drift (asset `hscode://signals/drift`) and when
reviewers have decided enough products since the last retrain (asset
`hscode://warehouse/hs_code_reviews`): their decisions are its most trusted labels.

**Run date.** The logical date when there is one, else the day the run starts; its
snapshot and prepared data are `ds = D` partitions, the report is
`data/selection/ds=D/report.html`, the models land under `data/models/` and the registry
(`data/registry/`) moves its `champion` alias only when the gate says promote.
"""

from __future__ import annotations

import datetime as dt

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, Asset, TaskGroup

from hscode.orchestration import MACROS, RUN_DATE, default_args, gate_task, spark_job

LABELLED = Asset("hscode://warehouse/product_master")
DRIFT_SIGNAL = Asset("hscode://signals/drift")
REVIEWS = Asset("hscode://warehouse/hs_code_reviews")
NETWORKS = ("dnn", "lstm", "textcnn")


def hscode(cmd: str, task_id: str, **kwargs: object) -> BashOperator:
    """A step of the `hscode` CLI (it launches Horovod ranks itself)."""
    return BashOperator(task_id=task_id, bash_command=f"hscode {cmd} --ds {RUN_DATE}",
                        **kwargs)


with DAG(
    dag_id="hscode_retrain",
    schedule=(LABELLED | DRIFT_SIGNAL | REVIEWS),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),  # runs before it are empty: backfills too
    catchup=False,
    max_active_runs=1,
    default_args=default_args(execution_timeout=dt.timedelta(hours=6)),
    user_defined_macros=MACROS,  # spark_submit_opts for the Spark tasks
    tags=["hscode", "training", "horovod"],
    doc_md=__doc__,
) as dag:

    snapshot = spark_job("extract_products", task_id="snapshot")
    clean = spark_job("clean_products", task_id="clean")
    prepare = spark_job("prepare_training", task_id="prepare_training")
    with TaskGroup("train", tooltip="Horovod data-parallel training, one task per model") as train:
        for model in NETWORKS:
            hscode(f"train --model {model}", task_id=f"train_{model}")
        hscode("train --model svm", task_id="train_svm")
    cross_validate = hscode("select --stage cv", task_id="cross_validate")
    promote = hscode("select --stage promote", task_id="promote")
    report = hscode("select --stage report", task_id="report")

    validate_snapshot = gate_task("validate_snapshot", ["raw_products"])
    validate_clean = gate_task("validate_clean", ["clean_scoring", "clean_training"])

    (snapshot >> validate_snapshot >> clean >> validate_clean >> prepare
     >> train >> cross_validate >> promote >> report)
