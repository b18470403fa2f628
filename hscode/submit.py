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


def submit(job: str, ds: str, master: str = "local[*]", job_args: list[str] | None = None
           ) -> int:
    """Run the job in a child spark-submit; return its exit code (output streams through).

    ``job_args`` go to the job after ``--ds`` (e.g. ``["--model-version", "3"]``).
    """
    from hscode.spark_classes import with_archive

    env = {**with_archive(), "PYSPARK_PYTHON": sys.executable,
           "PYSPARK_DRIVER_PYTHON": sys.executable}
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
