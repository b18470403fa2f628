"""A class-data-sharing (AppCDS) archive of Spark's classes for every Spark driver JVM.

A Spark driver spends its first seconds loading and verifying some 10,000 classes from the
jars, in every job, every night. The JDK can map them from an archive instead: one warm-up
run dumps the classes it loaded (``-XX:ArchiveClassesAtExit``), and later JVMs start with
``-XX:SharedArchiveFile``. Measured on 2 cores (a session, a group-by, a Parquet write and
read): 15.9 s -> 10.2 s per spark-submit, 13.2 s -> 8.2 s with ``-XX:TieredStopAtLevel=1``.

The install step (``scripts/install.sh``) builds the archive for the venv's PySpark and the
machine's JDK. :func:`with_archive` names it in ``SPARK_SUBMIT_OPTS``, the environment
spark-submit reads for every driver JVM it starts: the embedded Airflow's environment (so
every task), ``hscode`` commands' spark-submit children and in-process sessions, the test
suite. A deployment sets ``SPARK_SUBMIT_OPTS=-XX:SharedArchiveFile=<archive>`` itself. An
archive is only valid for the JDK and class path it was made with: the stamp beside it
records both and :func:`current` checks them (a JVM handed a stale archive prints
``Unable to use shared archive`` and starts without it). The class path must hold no
non-empty directory (the JDK refuses those): no ``$SPARK_HOME/conf`` with files in it.

    python -m hscode.spark_classes [--force]   # build when missing or stale
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ARCHIVE_NAME = "spark-classes.jsa"
OPTION = "spark.driver.defaultJavaOptions"

_WARM_UP = r"""
import sys
import pandas as pd
from pyspark.sql import SparkSession, Window, functions as F

out = sys.argv[1]
spark = (SparkSession.builder.master("local[2]").appName("hscode-class-archive")
         .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "4")
         .config("spark.sql.execution.arrow.pyspark.enabled", "true")
         .config("spark.sql.sources.partitionOverwriteMode", "dynamic").getOrCreate())
rows = pd.DataFrame({"product_id": [f"p{i}" for i in range(400)],
                     "text": [f"Plastic plates, set of {i} / 20cm" for i in range(400)],
                     "code": [f"{392410 + i % 7}" for i in range(400)],
                     "level": [i % 4 + 1 for i in range(400)]})
df = spark.createDataFrame(rows).withColumn("ds", F.lit("2026-01-01").cast("date"))
words = F.split(F.regexp_replace(F.lower("text"), r"[^a-z0-9 ]+", " "), r"\s+")
df = (df.withColumn("tokens", F.filter(words, lambda w: F.length(w) > 1))
        .withColumn("n", F.size("tokens"))
        .withColumn("rank", F.row_number().over(Window.partitionBy("code").orderBy("product_id"))))
codes = spark.createDataFrame(pd.DataFrame({"code": [f"{392410 + i}" for i in range(5)]}))
joined = df.join(F.broadcast(codes), "code", "left_anti").unionByName(
    df.join(codes, "code", "inner"))
joined.cache().count()
joined.groupBy("code").agg(F.count("*"), F.avg("n"), F.max("text")).collect()
joined.approxQuantile("n", [0.5], 0.01)
(joined.repartition(2).sortWithinPartitions("product_id")
 .write.mode("overwrite").partitionBy("ds").parquet(out))
back = spark.read.parquet(out)
back.mapInPandas(lambda it: (b[["product_id", "n"]] for b in it),
                 "product_id string, n int").toPandas()
back.select("product_id", "code").toArrow()
spark.stop()
"""


def spark_home() -> Path:
    """The installed PySpark's Spark home (its jars and ``conf/``)."""
    import pyspark

    return Path(pyspark.__file__).parent


def archive_path() -> Path:
    """Where the venv keeps its archive."""
    return Path(sys.prefix) / "share" / "hscode" / ARCHIVE_NAME


def java_home() -> Path | None:
    """The JDK spark-submit runs: ``$JAVA_HOME``, else the one of the ``java`` on ``PATH``."""
    if os.environ.get("JAVA_HOME"):
        return Path(os.environ["JAVA_HOME"])
    java = shutil.which("java")
    return Path(java).resolve().parents[1] if java else None


def fingerprint() -> dict[str, str]:
    """What an archive is only valid for, read off the files (no JVM started): the JDK (its
    class image ``lib/modules``: path, size, time) and Spark's class path (the jars in
    directory order, as the launcher lists them, and whether ``conf/`` exists).

    Raises:
        FileNotFoundError: no JDK found.
    """
    home = java_home()
    if home is None:
        raise FileNotFoundError("no java on PATH and no JAVA_HOME")
    modules = (home / "lib" / "modules").stat()
    spark = spark_home()
    jars = [name for name in os.listdir(spark / "jars") if name.endswith(".jar")]
    return {"java": f"{home} {modules.st_size} {modules.st_mtime_ns}",
            "spark_home": str(spark), "conf": str((spark / "conf").is_dir()),
            "jars": hashlib.sha256("\n".join(jars).encode()).hexdigest()}


def _stamp(archive: Path) -> Path:
    return archive.with_suffix(".json")


@functools.cache
def current(archive: Path | None = None) -> bool:
    """Whether ``archive`` exists and was made by this JDK for this Spark's jars (asked once
    per process)."""
    archive = archive or archive_path()
    try:
        made_for = json.loads(_stamp(archive).read_text(encoding="utf-8"))
        return archive.is_file() and made_for == fingerprint()
    except (OSError, ValueError):
        return False


def build(archive: Path | None = None, timeout_s: float = 600) -> Path:
    """Run the warm-up workload in a fresh driver JVM that dumps its classes on exit.

    Raises:
        RuntimeError: the warm-up failed or left no archive.
    """
    import tempfile

    archive = archive or archive_path()
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_name(f".{archive.name}.{os.getpid()}")
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable,
           "SPARK_SUBMIT_OPTS": f"-XX:ArchiveClassesAtExit={partial}"}
    with tempfile.TemporaryDirectory(prefix="hscode-cds-") as work:
        script = Path(work) / "warm_up.py"
        script.write_text(_WARM_UP, encoding="utf-8")
        # through spark-submit: the JVM is the process waited for, and it dumps on its exit
        proc = subprocess.run([str(spark_home() / "bin" / "spark-submit"), str(script),
                               str(Path(work) / "out")], env=env, capture_output=True,
                              text=True, timeout=timeout_s, check=False)
    if proc.returncode != 0 or not partial.is_file():
        partial.unlink(missing_ok=True)
        raise RuntimeError(f"class archive warm-up failed ({proc.returncode}): "
                           f"{proc.stderr[-2000:]}")
    os.replace(partial, archive)
    from hscode.files import atomic_write_text

    atomic_write_text(_stamp(archive), json.dumps(fingerprint(), indent=2))
    return archive


def with_archive(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's) with the archive in ``SPARK_SUBMIT_OPTS``, which
    spark-submit gives every driver JVM it starts (an in-process session's too); unchanged
    when the options name an archive already or no current one exists."""
    out = dict(os.environ if env is None else env)
    opts = out.get("SPARK_SUBMIT_OPTS", "")
    if "SharedArchiveFile" in opts or "ArchiveClassesAtExit" in opts or not current():
        return out
    out["SPARK_SUBMIT_OPTS"] = f"{opts} -XX:SharedArchiveFile={archive_path()}".strip()
    return out


def main(argv: list[str] | None = None) -> int:
    """Build the archive when missing or stale (or ``--force``) and configure Spark."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--force", action="store_true", help="rebuild even when current")
    a = p.parse_args(argv)
    archive = archive_path()
    if not a.force and current(archive):
        print(f"spark classes: {archive} is current")
        return 0
    try:
        build(archive)
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        print(f"spark classes: no archive ({exc}); Spark starts without one", file=sys.stderr)
        return 1
    current.cache_clear()
    print(f"spark classes: archive built at {archive}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
