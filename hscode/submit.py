"""Launch a ``jobs/`` entry point through spark-submit, as Airflow's SparkSubmitOperator does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

JOBS = ("extract_products", "clean_products", "prepare_training", "score_catalog",
        "publish_predictions", "check_drift")
JOBS_DIR = Path(__file__).resolve().parents[1] / "jobs"


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
