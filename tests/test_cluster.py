"""The cluster path without Docker: a real Spark standalone master + two workers on loopback,
started from the installed pyspark; the jobs and ``horovod.spark.run`` run against it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, SHARED_DATA

pytestmark = pytest.mark.integration
DS = "2026-11-01"
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """``spark://127.0.0.1:<port>`` with two workers (1 core each), stopped after the module."""
    work = tmp_path_factory.mktemp("spark-cluster")
    port, ui = _free_port(), _free_port()
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_WORKER_DIR": str(work),
           "PYSPARK_PYTHON": sys.executable, "SPARK_NO_DAEMONIZE": "1"}
    spark_class = str(BIN / "spark-class")
    logs = [open(work / n, "w") for n in ("master.log", "worker1.log", "worker2.log")]
    master = subprocess.Popen(
        [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
         "--port", str(port), "--webui-port", str(ui)], env=env, stdout=logs[0],
        stderr=subprocess.STDOUT)
    url = f"spark://127.0.0.1:{port}"
    workers = [subprocess.Popen(
        [spark_class, "org.apache.spark.deploy.worker.Worker", "--cores", "1",
         "--memory", "1536m", "--webui-port", str(_free_port()), url],
        env={**env, "SPARK_WORKER_DIR": str(work / f"w{i}")}, stdout=log,
        stderr=subprocess.STDOUT) for i, log in enumerate(logs[1:])]
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{ui}/json/", timeout=2) as r:
                    state = json.load(r)
                if state.get("aliveworkers", 0) >= 2:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                pytest.fail("standalone cluster did not come up:\n"
                            + (work / "master.log").read_text()[-2000:]
                            + (work / "worker1.log").read_text()[-2000:])
            time.sleep(1)
        yield {"url": url, "ui": f"http://127.0.0.1:{ui}/json/"}
    finally:
        for proc in (*workers, master):
            proc.terminate()
            proc.wait(timeout=30)
        for f in logs:
            f.close()


def test_clean_job_runs_on_the_standalone_cluster(spark, cluster: dict, tmp_path: Path,
                                                 shared_data: Path) -> None:
    from hscode.catalog import Catalog
    from hscode.config import load_settings
    from jobs import extract_products
    from tests.pipeline import args
    from tests.pipeline import seed_slice as _seed_slice

    env = {**os.environ, "HSCODE_PATHS__HOME": str(tmp_path),
           "HSCODE_PATHS__SOURCE_DIR": str(SHARED_DATA), "PYSPARK_PYTHON": sys.executable,
           "PYSPARK_DRIVER_PYTHON": sys.executable, "HSCODE_QUALITY__DATA_DOCS": "false"}
    settings = load_settings(environ=env)
    _seed_slice(settings)
    extract_products.run(args(DS), settings)  # staged here; the Spark work goes to the cluster
    proc = subprocess.run(
        [str(BIN / "spark-submit"), "--master", cluster["url"], "--driver-memory", "1g",
         "--executor-memory", "1g", str(REPO / "jobs" / "clean_products.py"), "--ds", DS],
        env=env, capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    with urllib.request.urlopen(cluster["ui"], timeout=5) as r:
        apps = {a["name"] for a in json.load(r)["completedapps"]}
    # it ran on the cluster, not in a local JVM
    assert any("clean" in a for a in apps), apps
    summary = json.loads((Catalog.from_settings(settings).run_dir(DS)
                          / "clean_products.json").read_text())
    assert summary["raw"] == 3002 and summary["scoring"] + 2 == summary["raw"]


def _submit(cluster: dict, job: str, env: dict, cwd: Path) -> None:
    proc = subprocess.run(
        [str(BIN / "spark-submit"), "--master", cluster["url"], "--driver-memory", "1g",
         "--executor-memory", "1g", str(REPO / "jobs" / f"{job}.py"), "--ds", DS],
        env=env, capture_output=True, text=True, timeout=600, check=False, cwd=cwd)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]


def test_postgresql_extract_and_publish_run_in_parallel_on_the_cluster(
        spark, cluster: dict, tmp_path: Path, pg_url: str, textcnn: dict) -> None:
    """The JDBC extract and the staged parallel publish as spark-submit runs them on two
    workers; clean and score in this process (the clean job's cluster run is tested above)."""
    import datetime as dt
    import shutil

    from hscode.catalog import Catalog
    from hscode.warehouse import open_warehouse, warehouse_from_settings
    from hscode.warehouse.schema import HS_NOMENCLATURE, HS_SECTIONS, PRODUCT_MASTER
    from jobs import clean_products, score_catalog
    from tests.pipeline import args, job_env, job_settings, seed_slice

    local = job_settings(tmp_path / "slice")  # the slice as a DuckDB file, copied to PostgreSQL
    seed_slice(local, 600)
    settings = job_settings(tmp_path, pg_url)
    with warehouse_from_settings(local) as src, open_warehouse(pg_url) as wh:
        wh.ensure_schema()
        for table in (PRODUCT_MASTER, HS_NOMENCLATURE, HS_SECTIONS):
            wh.replace_table(table, src.read_table(table, lenient=True))
    artifact = textcnn["model"].artifact
    shutil.copytree(artifact, Catalog.from_settings(settings).models / "textcnn" / artifact.name)
    env = {**os.environ, **job_env(settings), "PYSPARK_PYTHON": sys.executable,
           "PYSPARK_DRIVER_PYTHON": sys.executable, "PYTHONPATH": str(REPO)}
    _submit(cluster, "extract_products", env, tmp_path)
    clean_products.run(args(DS), settings)
    scored = score_catalog.run(args(DS, model_version=None), settings)
    _submit(cluster, "publish_predictions", env, tmp_path)
    with urllib.request.urlopen(cluster["ui"], timeout=5) as r:
        apps = {a["name"] for a in json.load(r)["completedapps"]}
    assert {"hscode-extract", "hscode-publish"} <= apps, apps  # on the cluster, not locally
    run_dir = Catalog.from_settings(settings).run_dir(DS)
    extracted = json.loads((run_dir / "extract_products.json").read_text())
    published = json.loads((run_dir / "publish_predictions.json").read_text())
    assert extracted["extracted_with"] == "jdbc" and extracted["rows"] == 602
    assert published["published_with"] == "spark"
    assert published["written"]["hs_predictions"] == scored["scoring_rows"] == 600
    with open_warehouse(pg_url) as wh:
        assert wh.execute("SELECT COUNT(*), COUNT(DISTINCT product_id) FROM hs_predictions "
                          "WHERE ds = %s", [dt.date.fromisoformat(DS)])[0] == (600, 600)
        assert wh.execute("SELECT COUNT(*) FROM hs_unscorable WHERE ds = %s",
                          [dt.date.fromisoformat(DS)])[0][0] == 2


_HOROVOD_ON_CLUSTER = """
import json, sys
from pyspark.sql import SparkSession
from hscode.training.hvd_train import TrainJob, launch
if __name__ == "__main__":
    spark = (SparkSession.builder.master(sys.argv[1]).appName("hvd-cluster-test")
             .config("spark.executor.memory", "1g").config("spark.task.cpus", "1").getOrCreate())
    ranks = launch(TrainJob.from_json(sys.argv[2]), num_proc=2, launcher="spark")
    print("RESULT=" + json.dumps([{k: r[k] for k in ("rank", "size", "weights_sha256",
                                                     "shard_rows")} for r in ranks]))
    spark.stop()
"""


def test_horovod_spark_run_trains_across_the_cluster(cluster: dict, tmp_path: Path,
                                                    small_prepared: dict) -> None:
    from tests.test_training import _job

    job = _job(small_prepared["prepared"], tmp_path / "model", epochs=1)
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    proc = subprocess.run([sys.executable, "-c", _HOROVOD_ON_CLUSTER, cluster["url"],
                           job.to_json()],
                          env=env, capture_output=True, text=True, timeout=900, check=False)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT=")), None)
    assert line, proc.stderr[-4000:]
    ranks = sorted(json.loads(line[7:]), key=lambda r: r["rank"])
    assert [r["rank"] for r in ranks] == [0, 1] and ranks[0]["size"] == 2
    assert ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"]  # averaged, not diverged
    assert all(r["shard_rows"] > 0 for r in ranks)
