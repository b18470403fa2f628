"""Starting Spark the same way in every job (local[*] by default, a cluster unchanged)."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from hscode.config import Settings


QUICK_JIT = "-XX:TieredStopAtLevel=1"


def build_spark(settings: Settings, master: str | None = None, app_name: str | None = None,
                catalog_rows: int | None = None) -> SparkSession:
    """Get or create the job's SparkSession.

    Args:
        settings: Run settings (``spark`` section).
        master: Overrides ``spark.master`` (e.g. ``spark://host:7077``); under spark-submit,
            the master spark-submit was given wins when this is ``None``.
        app_name: Overrides ``spark.app_name``.
        catalog_rows: The catalog's size as far as known (:func:`hscode.extract.snapshot_rows`):
            a driver JVM this process starts for at most ``spark.quick_jit_max_rows`` rows
            runs the JIT's first tier only (:data:`QUICK_JIT`).
    """
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.appName(app_name or settings.spark.app_name)
        .config("spark.sql.shuffle.partitions", str(settings.spark.shuffle_partitions))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.sources.partitionOverwriteMode", "dynamic")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .config("spark.ui.showConsoleProgress", "false")
        # from the context's start (setLogLevel below comes after ~80 INFO lines of it)
        .config("spark.log.level", settings.spark.log_level)
    )
    jar = settings.warehouse.jdbc_jar
    # PostgreSQL's JDBC driver for the executors; when it is missing only the JDBC read
    # itself fails (with how to install it), not every job on a PostgreSQL warehouse
    jdbc = (settings.warehouse.extract_method(settings.warehouse_url) == "jdbc"
            and jar.is_file())
    if jdbc:
        builder = builder.config("spark.jars", str(jar))
    if master:
        builder = builder.master(master)
    if (master or "local").startswith("local") and "PYSPARK_PYTHON" not in os.environ:
        # local workers must run this interpreter (the venv with hscode, TF and Horovod);
        # an in-process SparkContext reads it from the environment, spark-submit from conf
        os.environ["PYSPARK_PYTHON"] = sys.executable
        builder = builder.config("spark.pyspark.python", sys.executable)
    if not SparkSession.getActiveSession():
        builder = builder.config("spark.driver.memory", settings.spark.driver_memory)
    quick = False
    if "PYSPARK_GATEWAY_PORT" not in os.environ and SparkContext._jvm is None:
        # this process starts the driver JVM (spark-submit reads SPARK_SUBMIT_OPTS then)
        from hscode.spark_classes import with_archive

        os.environ.update(with_archive())
        opts = os.environ.get("SPARK_SUBMIT_OPTS", "")
        quick = (catalog_rows is not None and catalog_rows <= settings.spark.quick_jit_max_rows
                 and "TieredStopAtLevel" not in opts)
        if quick:
            os.environ["SPARK_SUBMIT_OPTS"] = f"{opts} {QUICK_JIT}".strip()
    try:
        session = builder.getOrCreate()
    finally:
        if quick:  # for this JVM only, not for the JVMs this process starts later
            os.environ["SPARK_SUBMIT_OPTS"] = opts
    session.sparkContext.setLogLevel(settings.spark.log_level)
    if jdbc:
        # and for the driver: under spark-submit its JVM started before this conf was set,
        # and spark.jars alone leaves java.lang.ClassNotFoundException: org.postgresql.Driver
        session.sql(f"ADD JAR '{jar}'")
    return session
