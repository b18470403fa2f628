"""Spark's class archive (hscode/spark_classes.py): the install step makes it, every driver
JVM the project starts maps it, and a stale one is never handed to a JVM."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hscode import doctor
from hscode.spark_classes import archive_path, current, spark_home, with_archive


@pytest.mark.unit
@pytest.mark.parametrize("opts", ["-XX:SharedArchiveFile=/elsewhere.jsa",
                                  "-Xlog:cds -XX:ArchiveClassesAtExit=/dumping.jsa"])
def test_options_that_name_an_archive_already_are_left_as_they_are(opts: str) -> None:
    env = {"SPARK_SUBMIT_OPTS": opts, "OTHER": "kept"}
    assert with_archive(env) == env


def _submit_version(env: dict[str, str]) -> str:
    bin_dir = Path(sys.executable).parent  # the venv's spark-submit finds Spark with its python
    proc = subprocess.run([str(bin_dir / "spark-submit"), "--version"],
                          env={**env, "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"}, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout + proc.stderr


@pytest.mark.integration
def test_the_installed_archive_is_current_and_every_driver_maps_it(tmp_path: Path) -> None:
    from hscode.config import load_settings
    from hscode.local_airflow import airflow_env

    assert current(), f"no current archive at {archive_path()}: scripts/install.sh makes it"
    base = {k: v for k, v in os.environ.items() if k != "SPARK_SUBMIT_OPTS"}
    env = with_archive({**base, "SPARK_SUBMIT_OPTS": "-Xlog:cds=info"})
    assert env["SPARK_SUBMIT_OPTS"] == f"-Xlog:cds=info -XX:SharedArchiveFile={archive_path()}"
    shown = _submit_version(env)
    assert f"Opened archive {archive_path()}" in shown
    assert "Unable to use shared archive" not in shown and "Mapped dynamic region" in shown
    # the embedded Airflow hands it to every task's spark-submit
    settings = load_settings(environ={"HSCODE_PATHS__HOME": str(tmp_path)})
    tasks = airflow_env(settings, base=base)
    assert tasks["SPARK_SUBMIT_OPTS"] == f"-XX:SharedArchiveFile={archive_path()}"
    assert doctor.check_spark_classes().detail == f"archive current: {archive_path()}"


@pytest.mark.integration
def test_an_archive_made_for_another_jdk_or_class_path_is_not_current(tmp_path: Path) -> None:
    archive = tmp_path / "spark-classes.jsa"
    shutil.copy(archive_path().with_suffix(".json"), archive.with_suffix(".json"))
    archive.symlink_to(archive_path())
    assert current(archive)
    stamp = json.loads(archive.with_suffix(".json").read_text())
    for key, other in (("java", "/usr/lib/jvm/another-jdk 1 2"), ("jars", "0" * 64),
                       ("conf", str(not (spark_home() / "conf").is_dir()))):
        stale = tmp_path / key / archive.name
        stale.parent.mkdir()
        stale.symlink_to(archive_path())
        stale.with_suffix(".json").write_text(json.dumps({**stamp, key: other}))
        assert not current(stale), key
    missing = tmp_path / "missing" / archive.name
    assert not current(missing)


DRIVER = """
import os
from argparse import Namespace
from hscode.config import load_settings
from hscode.jobrun import nightly_spark

# as a nightly job starts Spark for the date after the snapshot's
spark = nightly_spark(Namespace(ds="2026-11-02", master="local[1]"), load_settings(), "jit")
jvm = spark.sparkContext._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()
print("JVM", jvm.getInputArguments().toString())
print("LATER", os.environ.get("SPARK_SUBMIT_OPTS", ""))
"""


@pytest.mark.integration
@pytest.mark.parametrize("max_rows, opts, expected", [
    (250_000, "", {"-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"}),
    # a collector chosen by the deployment stays (the JVM refuses two)
    (250_000, "-XX:+UseParallelGC", {"-XX:TieredStopAtLevel=1", "-XX:+UseParallelGC"}),
    (2, "", set())])
def test_a_driver_started_for_a_small_catalog_runs_the_quick_jvm_options(
        tmp_path: Path, max_rows: int, opts: str, expected: set[str]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from hscode.catalog import Catalog
    from hscode.config import load_settings

    # the night before left a 3-row snapshot: all the next night's jobs know of the catalog
    raw = Catalog.from_settings(load_settings(
        environ={"HSCODE_PATHS__HOME": str(tmp_path)})).raw_products
    (raw / "ds=2026-11-01").mkdir(parents=True)
    pq.write_table(pa.table({"product_id": ["a", "b", "c"]}),
                   raw / "ds=2026-11-01" / "part-0.parquet")
    env = {k: v for k, v in os.environ.items() if k != "SPARK_SUBMIT_OPTS"}
    proc = subprocess.run([sys.executable, "-c", DRIVER], capture_output=True, text=True,
                          timeout=180, check=False,
                          env={**env, "HSCODE_PATHS__HOME": str(tmp_path),
                               "HSCODE_SPARK__QUICK_JIT_MAX_ROWS": str(max_rows),
                               "SPARK_SUBMIT_OPTS": opts})
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines()
                 if line.startswith(("JVM ", "LATER ")))
    chosen = {a for a in lines["JVM"].strip("[]").split(", ")
              if "TieredStopAtLevel" in a or a.endswith("GC")}
    assert chosen == expected
    assert "SharedArchiveFile" in lines["JVM"]  # the class archive either way
    # not handed to later JVMs
    assert "TieredStopAtLevel" not in lines["LATER"] and "SerialGC" not in lines["LATER"]


@pytest.mark.unit
@pytest.mark.parametrize("opts, elsewhere, expected", [
    ("", "", ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]),
    ("-XX:TieredStopAtLevel=4", "", ["-XX:+UseSerialGC"]),
    ("-Xmx2g", "spark.driver.extraJavaOptions -XX:+UseG1GC", ["-XX:TieredStopAtLevel=1"]),
    ("-XX:-UseGCOverheadLimit", "", ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"])])
def test_quick_jvm_options_never_add_a_second_collector(opts: str, elsewhere: str,
                                                         expected: list[str]) -> None:
    from hscode.spark import quick_jvm_options

    assert quick_jvm_options(opts, elsewhere) == expected


@pytest.mark.unit
@pytest.mark.parametrize("snapshot_rows, max_rows, quick", [
    (3, 100_000, True), (3, 2, False), (None, 100_000, False)])
def test_a_spark_submit_gets_the_quick_jvm_options_for_a_small_catalog(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, snapshot_rows: int | None,
        max_rows: int, quick: bool) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from hscode.submit import spark_submit_opts

    if snapshot_rows is not None:  # the night before's snapshot tells the catalog's size
        part = tmp_path / "data" / "snapshots" / "product_master" / "ds=2026-11-01"
        part.mkdir(parents=True)
        pq.write_table(pa.table({"product_id": [f"p{i}" for i in range(snapshot_rows)]}),
                       part / "part-0.parquet")
    monkeypatch.setenv("HSCODE_PATHS__HOME", str(tmp_path))
    monkeypatch.setenv("HSCODE_SPARK__QUICK_JIT_MAX_ROWS", str(max_rows))
    monkeypatch.setenv("SPARK_SUBMIT_OPTS", "-Dkept=1")
    opts = spark_submit_opts("2026-11-02").split()
    assert opts[0] == "-Dkept=1"  # this process's own options come first
    assert ("-XX:TieredStopAtLevel=1" in opts) is quick
    assert ("-XX:+UseSerialGC" in opts) is quick


@pytest.mark.unit
def test_a_collector_in_spark_defaults_is_never_doubled(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from hscode.config import load_settings
    from hscode.spark import driver_jvm_options

    (tmp_path / "spark-defaults.conf").write_text(
        "spark.driver.extraJavaOptions  -XX:+UseG1GC -Dx=1\n")
    monkeypatch.setenv("SPARK_CONF_DIR", str(tmp_path))
    opts = driver_jvm_options(load_settings(), catalog_rows=3, opts="").split()
    assert "-XX:TieredStopAtLevel=1" in opts and "-XX:+UseSerialGC" not in opts
    monkeypatch.setenv("SPARK_CONF_DIR", str(tmp_path / "elsewhere"))  # no defaults file
    assert "-XX:+UseSerialGC" in driver_jvm_options(load_settings(), 3, "").split()
