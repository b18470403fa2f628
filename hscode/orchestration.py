"""Airflow wiring shared by the DAGs in ``dags/``: Spark tasks, gate checks, callbacks.

Imported by DAG files at parse time, so it only imports Airflow's SDK lazily inside the
functions and never Spark, TensorFlow or Great Expectations. Work happens when a task runs.

Run date: every task receives ``RUN_DATE``, the run's logical date as ``YYYY-MM-DD``. With
Airflow 3's ``CronTriggerTimetable`` the nightly run that starts at 02:00 UTC on day D has
logical date D, so it snapshots the catalog of that night and owns the ``ds=D`` partitions.
Runs without a logical date (asset-triggered, some manual ones) use the day they ran.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from typing import Any

from hscode.submit import spark_submit_opts

log = logging.getLogger(__name__)

RUN_DATE_EXPR = "(dag_run.logical_date or dag_run.run_after).strftime('%Y-%m-%d')"
RUN_DATE = "{{ " + RUN_DATE_EXPR + " }}"
SPARK_CONN_ID = "spark_default"  # master in the connection's host: local[*], spark://h:7077


def default_args(**overrides: Any) -> dict[str, Any]:
    """Retries, timeouts and the failure callback every hscode task shares.

    ``HSCODE_RETRY_DELAY_S`` (environment, default 300) sets the first retry delay; tests
    and demos lower it so that a failing task fails fast.
    """
    return {
        "owner": "hscode",
        "retries": 2,
        "retry_delay": dt.timedelta(seconds=float(os.environ.get("HSCODE_RETRY_DELAY_S", 300))),
        "retry_exponential_backoff": True,
        "execution_timeout": dt.timedelta(hours=2),
        "on_failure_callback": notify_failure,
        **overrides,
    }


# user_defined_macros of every DAG with Spark tasks: ``spark_submit_opts(run_date)``, the
# SPARK_SUBMIT_OPTS of a task's spark-submit, rendered when the task runs
MACROS = {"spark_submit_opts": spark_submit_opts}


def spark_job(job: str, task_id: str | None = None, args: list[str] | None = None,
              **kwargs: Any) -> Any:
    """A ``jobs/<job>.py`` entry point through spark-submit on connection ``spark_default``
    (its DAG needs :data:`MACROS`)."""
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

    from hscode.submit import job_file

    return SparkSubmitOperator(
        task_id=task_id or job, application=job_file(job), conn_id=SPARK_CONN_ID,
        name=f"hscode-{job}", application_args=["--ds", RUN_DATE, *(args or [])],
        env_vars={"SPARK_SUBMIT_OPTS": "{{ spark_submit_opts(" + RUN_DATE_EXPR + ") }}"},
        driver_memory="4g", **kwargs)


def gate_report(ds: str, suites: list[str]) -> dict[str, Any]:
    """The kept Great Expectations results of a run's gates; raise unless all passed.

    The suites run inside the Spark jobs (on the data where it is); this check makes each
    hand-over a visible task with its Data Docs link, and fails when a result is missing.

    Raises:
        RuntimeError: a result is missing or failed.
    """
    from hscode.catalog import Catalog
    from hscode.config import load_settings
    from hscode.quality import validation_file

    run_dir = Catalog.from_settings(load_settings()).run_dir(ds)
    out = {}
    for suite in suites:
        path = validation_file(run_dir, suite)
        if not path.is_file():
            raise RuntimeError(f"no validation result for suite {suite!r} at {path}")
        result = json.loads(path.read_text(encoding="utf-8"))
        if not result["success"]:
            raise RuntimeError(f"suite {suite!r} failed: {result['failures']}")
        out[suite] = {"evaluated": result["evaluated"], "data_docs": result["data_docs"]}
        log.info("GX suite %s passed (%s expectations); Data Docs: %s", suite,
                 result["evaluated"], result["data_docs"])
    return out


def gate_task(task_id: str, suites: list[str]) -> Any:
    """A task that runs :func:`gate_report` for ``suites`` on the run date."""
    from airflow.sdk import task

    def check(run_date: str) -> dict[str, Any]:
        return gate_report(run_date, suites)

    check.__doc__ = f"The run's GX results for {', '.join(suites)} passed."
    return task(task_id=task_id)(check)(RUN_DATE)


def run_summary(ds: str, name: str) -> dict[str, Any]:
    """A job's JSON summary for the run date (``runs/ds=D/<name>.json``)."""
    from hscode.catalog import Catalog
    from hscode.config import load_settings
    from hscode.jobrun import read_summary

    return read_summary(Catalog.from_settings(load_settings()), ds, name)


def notify_failure(context: Any) -> None:
    """Log the failed task loudly and keep a record under the run's report folder."""
    ti = context.get("task_instance")
    dag_run = context.get("dag_run")
    record = {
        "dag_id": getattr(ti, "dag_id", None), "task_id": getattr(ti, "task_id", None),
        "run_id": getattr(dag_run, "run_id", None), "try_number": getattr(ti, "try_number", None),
        "error": str(context.get("exception")),
        "at": dt.datetime.now(dt.UTC).isoformat(),
    }
    log.error("hscode task failed: %s", json.dumps(record))
    try:
        from hscode.catalog import Catalog
        from hscode.config import load_settings

        when = getattr(dag_run, "logical_date", None) or getattr(dag_run, "run_after", None)
        if when is not None:
            run_dir = Catalog.from_settings(load_settings()).run_dir(when.strftime("%Y-%m-%d"))
            run_dir.mkdir(parents=True, exist_ok=True)
            with (run_dir / "failures.jsonl").open("a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
    except Exception:
        log.exception("could not record the failure")
