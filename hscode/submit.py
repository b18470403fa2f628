"""Launch a ``jobs/`` entry point: through spark-submit, as Airflow's SparkSubmitOperator
does, or in this process, where jobs run one after another share one driver."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

JOBS = ("extract_products", "clean_products", "prepare_training", "score_catalog",
        "publish_predictions", "check_drift")
JOBS_DIR = Path(__file__).resolve().parents[1] / "jobs"
# the nightly DAG's Spark jobs, in its order
NIGHT = ("extract_products", "clean_products", "score_catalog", "publish_predictions",
         "check_drift")


def job_file(job: str) -> str:
    """Path of a ``jobs/`` entry point.

    Raises:
        ValueError: for an unknown job name.
    """
    if job not in JOBS:
        raise ValueError(f"unknown job {job!r}; choose from {', '.join(JOBS)}")
    return str(JOBS_DIR / f"{job}.py")


def spark_submit_command(job: str, ds: str, master: str, extra: list[str] | None = None
                         ) -> list[str]:
    """The spark-submit command line for ``job`` on run date ``ds``.

    Raises:
        ValueError: for an unknown job name.
    """
    spark_submit = Path(sys.executable).parent / "spark-submit"
    return [str(spark_submit), "--master", master, *(extra or []), job_file(job), "--ds", ds]


def spark_submit_opts(ds: str) -> str:
    """``SPARK_SUBMIT_OPTS`` for a job's spark-submit on run date ``ds``: this process's
    options with Spark's class archive, and the small-catalog JVM options when the date's
    snapshot (else the last one) is small (:func:`hscode.spark.driver_jvm_options`).

    A spark-submit starts its driver JVM before the job's Python runs, so the job cannot
    choose them itself (a job's own process does, in :func:`hscode.spark.build_spark`).
    """
    from hscode.catalog import Catalog
    from hscode.config import load_settings
    from hscode.extract import snapshot_rows
    from hscode.spark import driver_jvm_options

    settings = load_settings()
    rows = snapshot_rows(Catalog.from_settings(settings).raw_products, ds)
    return driver_jvm_options(settings, rows)


def submit(job: str, ds: str, master: str = "local[*]", job_args: list[str] | None = None
           ) -> int:
    """Run the job in a child spark-submit; return its exit code (output streams through).

    ``job_args`` go to the job after ``--ds`` (e.g. ``["--model-version", "3"]``).
    """
    import os

    env = {**os.environ, "SPARK_SUBMIT_OPTS": spark_submit_opts(ds),
           "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    cmd = spark_submit_command(job, ds, master) + list(job_args or [])
    return subprocess.run(cmd, env=env, check=False).returncode


def run_in_process(job: str, ds: str, master: str | None = None,
                   job_args: list[str] | None = None) -> int:
    """Run the job's ``main`` in this process; return its exit code.

    The same entry point and exit codes as under spark-submit, but jobs run one after another
    this way share one driver JVM, one SparkSession (``build_spark`` gets the running one),
    its Python workers (the score job's model stays loaded) and the imports: a small
    catalog's night is mostly those fixed costs, paid once instead of once per job.

    Exit codes are the job's own (:mod:`hscode.jobrun`); an exception it does not map is
    logged with its trace and returns 1, as a spark-submit child dies of it.

    Raises:
        ValueError: for an unknown job name.
    """
    import importlib.util

    path = job_file(job)
    spec = importlib.util.spec_from_file_location(f"hscode_job_{job}", path)
    if spec is None or spec.loader is None:
        raise ValueError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    argv = ["--ds", ds, *(["--master", master] if master else []), *(job_args or [])]
    try:
        return int(module.main(argv))
    except SystemExit as exc:  # argparse: bad arguments
        return exc.code if isinstance(exc.code, int) else 2
    except Exception:  # what a spark-submit child would die of: exit code 1, with its trace
        logging.getLogger("hscode.job").exception("%s --ds %s failed", job, ds)
        return 1
