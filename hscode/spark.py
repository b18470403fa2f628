"""Starting Spark the same way in every job (local[*] by default, a cluster unchanged)."""

from __future__ import annotations

import os
import re
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

    from pyspark.sql import DataFrame, SparkSession

    from hscode.config import Settings


QUICK_JIT = "-XX:TieredStopAtLevel=1"
SERIAL_GC = "-XX:+UseSerialGC"
_CHOSEN_GC = re.compile(r"-XX:[+-]Use\w*GC\b")


def quick_jvm_options(opts: str, elsewhere: str = "") -> list[str]:
    """The options a small catalog's driver JVM adds to ``opts`` (``SPARK_SUBMIT_OPTS``).

    The JIT's first tier only (:data:`QUICK_JIT`) and the serial collector
    (:data:`SERIAL_GC`): a small night is over before the JIT's second tier pays back, and
    G1's barriers and concurrent threads cost the clean job's text rules ~2 s of a 55k
    night on 2 cores (bench/results.jsonl). Each is left out when ``opts`` already set it,
    the collector too when ``elsewhere`` (other places Java options come from) chooses one:
    the JVM refuses to start with two.
    """
    out = [] if "TieredStopAtLevel" in opts else [QUICK_JIT]
    if not _CHOSEN_GC.search(f"{opts} {elsewhere}"):
        out.append(SERIAL_GC)
    return out


def driver_jvm_options(settings: Settings, catalog_rows: int | None,
                       opts: str | None = None) -> str:
    """``SPARK_SUBMIT_OPTS`` for a driver JVM about to start: ``opts`` (default: this
    process's) with Spark's class archive (:func:`hscode.spark_classes.with_archive`), and
    :func:`quick_jvm_options` when the catalog has at most ``spark.quick_jit_max_rows`` rows.
    """
    from hscode.spark_classes import with_archive

    if opts is None:
        opts = os.environ.get("SPARK_SUBMIT_OPTS", "")
    opts = with_archive({"SPARK_SUBMIT_OPTS": opts})["SPARK_SUBMIT_OPTS"]
    if catalog_rows is not None and catalog_rows <= settings.spark.quick_jit_max_rows:
        opts = " ".join([opts, *quick_jvm_options(opts, _java_options_elsewhere())]).strip()
    return opts


def _java_options_elsewhere() -> str:
    """Java options this process's driver JVM may get besides ``SPARK_SUBMIT_OPTS``: the
    JVM's own environment variables, PySpark's submit arguments and ``spark-defaults.conf``."""
    from pathlib import Path

    names = ("JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS", "_JAVA_OPTIONS", "PYSPARK_SUBMIT_ARGS")
    found = [os.environ.get(n, "") for n in names]
    conf_dir = os.environ.get("SPARK_CONF_DIR")
    if not conf_dir:  # the Spark home: SPARK_HOME, else the installed PySpark (not imported)
        import importlib.util

        spec = importlib.util.find_spec("pyspark")
        home = os.environ.get("SPARK_HOME") or (
            str(Path(spec.origin).parent) if spec and spec.origin else "")
        conf_dir = str(Path(home) / "conf") if home else ""
    defaults = Path(conf_dir) / "spark-defaults.conf"
    if conf_dir and defaults.is_file():
        found.append(defaults.read_text(encoding="utf-8", errors="replace"))
    return " ".join(found)


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
            runs with :func:`quick_jvm_options`.
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
    starts_jvm = "PYSPARK_GATEWAY_PORT" not in os.environ and SparkContext._jvm is None
    if starts_jvm:  # this process starts the driver JVM (spark-submit reads SPARK_SUBMIT_OPTS)
        from hscode.spark_classes import with_archive

        os.environ.update(with_archive())
        later = os.environ.get("SPARK_SUBMIT_OPTS", "")
        os.environ["SPARK_SUBMIT_OPTS"] = driver_jvm_options(settings, catalog_rows, later)
    try:
        session = builder.getOrCreate()
    finally:
        if starts_jvm:  # for this JVM only, not for the JVMs this process starts later
            os.environ["SPARK_SUBMIT_OPTS"] = later
    session.sparkContext.setLogLevel(settings.spark.log_level)
    if jdbc:
        # and for the driver: under spark-submit its JVM started before this conf was set,
        # and spark.jars alone leaves java.lang.ClassNotFoundException: org.postgresql.Driver
        session.sql(f"ADD JAR '{jar}'")
    return session


def codes_frame(spark: SparkSession, codes: Iterable[str], column: str = "code") -> DataFrame:
    """A one-column string DataFrame of ``codes``, handed to the JVM as Arrow.

    From a list of rows Spark would start Python worker processes to re-pickle them
    (``parallelize``): in a night that cost ~1 s of a 55k-row clean job on 2 cores, as the
    workers' start competed with the text rules that the join with the codes waited on.
    """
    import pandas as pd

    frame = pd.DataFrame({column: pd.Series(list(codes), dtype=object)})
    return spark.createDataFrame(frame, f"{column} string")
