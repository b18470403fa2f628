"""The containers, built and run here: the three images, `hscode doctor` inside the jobs
image and the CUDA jobs image (on the CPU: no GPU is needed to build or check it), and the
compose stack retraining and publishing a night through the Airflow API.

Needs a Docker engine and Compose (``scripts/install-docker.sh`` installs and starts Debian's
where it runs as root); where Docker Hub cannot be reached the images build on a Debian base
made here (``docker/build-local-base.sh``). Minutes, not seconds: ``make test-containers``
(and ``make test-all``); ``make test`` leaves it out.
"""

from __future__ import annotations

import csv
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, SHARED_DATA

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(5400)]

DS = "2026-11-01"
ROWS = 1500  # declarations in the stack's reference folder (a seeded sample of the real ones)
COMPOSE = REPO / "docker" / "compose.yaml"
# the stack's own settings, made small the way tests/test_dags.py makes its runs small
TINY = {"HSCODE_TRAINING__EPOCHS": "1", "HSCODE_TRAINING__MIN_ROWS_PER_CODE": "5",
        "HSCODE_TRAINING__NUM_PROC": "1", "HSCODE_TRAINING__HASH_BUCKETS": "32768",
        "HSCODE_SELECTION__FOLDS": "2", "HSCODE_SELECTION__EPOCHS": "1",
        "HSCODE_QUALITY__DATA_DOCS": "false", "HSCODE_SPARK__LOG_LEVEL": "ERROR",
        "HSCODE_RETRY_DELAY_S": "5"}
SERVICES = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "spark-master",
            "spark-worker-1", "spark-worker-2")


def sh(cmd: list[str], timeout: float, **kwargs) -> subprocess.CompletedProcess:
    """Run ``cmd``; fail the test with its output when it exits non-zero."""
    started = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False,
                          **kwargs)
    print(f"[{time.monotonic() - started:6.1f} s] {' '.join(cmd)[:160]}")
    if done.returncode:
        pytest.fail(f"{' '.join(cmd)} exited {done.returncode}\n{done.stdout[-4000:]}\n"
                    f"{done.stderr[-4000:]}")
    return done


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The engine (installed and started where it can be, and stopped again afterwards if
    this started it), then the three images built (``--cuda``: the GPU jobs image too)."""
    pidfile = tmp_path_factory.mktemp("engine") / "dockerd.pid"
    engine = subprocess.run(["bash", "scripts/install-docker.sh"], cwd=REPO, capture_output=True,
                            text=True, check=False,
                            env={**os.environ, "HSCODE_DOCKERD_PIDFILE": str(pidfile)})
    if engine.returncode:
        pytest.skip(f"no Docker engine: {engine.stderr.strip()}")
    try:
        built = sh(["bash", "docker/build-images.sh", "--cuda"], timeout=3600, cwd=REPO)
        print(built.stdout)
        yield {"local_base": "local Debian base" in built.stdout}
    finally:
        if pidfile.exists():  # started here: leave the machine as it was
            os.kill(int(pidfile.read_text()), signal.SIGTERM)


def _inspect(image: str, fmt: str) -> str:
    return sh(["docker", "image", "inspect", "-f", fmt, image], timeout=60).stdout.strip()


def test_images_run_as_hscode_without_build_tools_and_carry_their_revision(images: dict) -> None:
    revision = sh(["git", "rev-parse", "--short", "HEAD"], timeout=30, cwd=REPO).stdout.strip()
    for image in ("hscode-jobs:latest", "hscode-airflow:latest", "hscode-jobs-cuda:latest"):
        probe = sh(["docker", "run", "--rm", "--entrypoint", "sh", image, "-c",
                    "id -un; for t in g++ cc cmake make git uv nvcc; do command -v $t; done; "
                    "python -c 'import horovod.tensorflow, pyspark, hscode; print(\"imports ok\")'"],
                   timeout=300).stdout.split()
        assert probe[0] == "hscode", f"{image} runs as {probe[0]}"
        assert probe[1:] == ["imports", "ok"], f"{image} carries build tools: {probe[1:-2]}"
        assert _inspect(image, '{{index .Config.Labels "org.opencontainers.image.revision"}}') \
            == revision


def _doctor(image: str) -> list[str]:
    """``hscode doctor`` in ``image``: its check lines, every one ok, the 2-rank Horovod
    training among them (identical weights)."""
    done = sh(["docker", "run", "--rm", "-e", "COLUMNS=200", image, "hscode", "doctor"],
              timeout=600)
    out = done.stdout + done.stderr
    checks = [line for line in out.splitlines() if line.startswith(("ok ", "FAIL "))]
    assert checks and all(line.startswith("ok ") for line in checks), out[-3000:]
    assert any(line.startswith("ok  horovod: ranks=[0, 1] identical_weights=True")
               for line in checks), checks
    return checks


def test_doctor_passes_in_the_jobs_image_with_two_horovod_ranks(images: dict) -> None:
    checks = _doctor("hscode-jobs:latest")
    assert any(line.startswith("ok  spark classes: archive current") for line in checks), checks


def test_the_cuda_image_has_horovod_with_nccl_and_trains_on_two_cpu_ranks(images: dict
                                                                           ) -> None:
    checks = _doctor("hscode-jobs-cuda:latest")
    assert any("tensorflow=2.15.1" in line for line in checks), checks  # the CUDA build of TF
    # no GPU here: TensorFlow's CUDA build on the CPU, Horovod built with NCCL (and Gloo)
    assert "ok  accelerators: tensorflow CUDA build, 0 GPU(s) visible, horovod NCCL yes" \
        in checks, checks


def test_spark_drivers_in_the_images_map_the_class_archive(images: dict) -> None:
    for image in ("hscode-jobs:latest", "hscode-airflow:latest"):
        done = sh(["docker", "run", "--rm", "--entrypoint", "sh", image, "-c",
                   'SPARK_SUBMIT_OPTS="$SPARK_SUBMIT_OPTS -Xlog:cds" spark-submit --version'],
                  timeout=300)
        log = done.stdout + done.stderr
        assert "Opened archive /opt/hscode/venv/share/hscode/spark-classes.jsa" in log, log[-3000:]
        assert "Mapped dynamic region" in log and "Unable to use shared archive" not in log, \
            log[-3000:]


# --- the compose stack -----------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _reference_sample(folder: Path) -> int:
    """The real nomenclature and a seeded sample of ROWS real declarations."""
    folder.mkdir()
    for name in ("hs_nomenclature.csv", "hs_sections.csv"):
        shutil.copyfile(SHARED_DATA / name, folder / name)
    with (SHARED_DATA / "declarations.csv").open(newline="") as f:
        reader = csv.reader(f)
        header, rows = next(reader), list(reader)
    sample = random.Random(7).sample(rows, ROWS)
    with (folder / "declarations.csv").open("w", newline="") as f:
        csv.writer(f, quoting=csv.QUOTE_ALL).writerows([header, *sample])
    return len(sample)


class Stack:
    """One compose project: its CLI, its API and its warehouse."""

    rows = 0  # declarations offered to the seed
    up_seconds = 0.0  # `up` until every service is healthy

    def __init__(self, project: str, env_file: Path, override: Path, port: int) -> None:
        self.base = ["docker-compose", "-p", project, "--env-file", str(env_file),
                     "-f", str(COMPOSE), "-f", str(override)]
        self.api = f"http://127.0.0.1:{port}"
        self.token = ""

    def compose(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return sh([*self.base, *args], timeout=timeout)

    def psql(self, sql: str) -> str:
        return self.compose("exec", "-T", "warehouse", "psql", "-U", "hscode", "-d", "warehouse",
                            "-Atc", sql, timeout=120).stdout.strip()

    def wait_healthy(self, timeout: float = 900) -> None:
        deadline = time.monotonic() + timeout
        while True:
            ids = self.compose("ps", "-q", *SERVICES).stdout.split()
            states = dict(line.split(" ", 1) for line in sh(
                ["docker", "inspect", "-f", "{{.Name}} {{.State.Status}}/{{.State.Health.Status}}",
                 *ids], timeout=60).stdout.splitlines())
            if len(ids) == len(SERVICES) and all(s == "running/healthy" for s in states.values()):
                return
            exited = [name for name, s in states.items() if s.startswith("exited")]
            if exited or time.monotonic() > deadline:
                pytest.fail(f"stack not healthy: {states}")
            time.sleep(10)

    def login(self) -> None:
        passwords = json.loads(self.compose(
            "exec", "-T", "airflow-apiserver", "cat",
            "/opt/airflow/simple_auth_manager_passwords.json.generated").stdout)
        r = httpx.post(f"{self.api}/auth/token", timeout=30,
                       json={"username": "admin", "password": passwords["admin"]})
        r.raise_for_status()
        self.token = r.json()["access_token"]

    def call(self, method: str, path: str, **kwargs) -> dict:
        r = httpx.request(method, f"{self.api}/api/v2{path}", timeout=60,
                          headers={"Authorization": f"Bearer {self.token}"}, **kwargs)
        assert r.is_success, f"{method} {path}: {r.status_code} {r.text[:2000]}"
        return r.json()

    def run_dag(self, dag_id: str, timeout: float) -> list[dict]:
        """Trigger ``dag_id`` for DS through the API, unpause it, and wait until none of its
        runs is queued or running; every run must have succeeded. Unpausing a scheduled DAG
        also starts its latest scheduled interval (as on any fresh deployment)."""
        self.call("POST", f"/dags/{dag_id}/dagRuns",
                  json={"logical_date": f"{DS}T00:00:00Z", "conf": {}})
        self.call("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
        started = time.monotonic()
        while True:
            runs = self.call("GET", f"/dags/{dag_id}/dagRuns")["dag_runs"]
            if all(r["state"] in ("success", "failed") for r in runs):
                break
            assert time.monotonic() - started < timeout, [(r["run_id"], r["state"]) for r in runs]
            time.sleep(15)
        for run in runs:
            print(f"{dag_id} {run['dag_run_id']} ({run['run_type']}) {run['state']}: "
                  f"{run['start_date']} -> {run['end_date']}")
            if run["state"] != "success":
                tis = self.call("GET", f"/dags/{dag_id}/dagRuns/{run['dag_run_id']}/"
                                       "taskInstances")["task_instances"]
                pytest.fail(f"{dag_id} {run['dag_run_id']} failed: " + ", ".join(
                    f"{t['task_id']}={t['state']}" for t in tis))
        return runs


@pytest.fixture(scope="module")
def stack(images: dict, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The compose stack up and healthy on free ports, with its own secrets; logs kept and
    everything (containers, volumes, network) removed afterwards."""
    work = tmp_path_factory.mktemp("stack")
    rows = _reference_sample(work / "reference")
    port = _free_port()
    env = {"COMPOSE_PROJECT_NAME": "unused", "WAREHOUSE_PASSWORD": secrets.token_hex(12),
           "AIRFLOW_DB_PASSWORD": secrets.token_hex(12),
           "AIRFLOW_JWT_SECRET": secrets.token_hex(32),
           "HSCODE_REFERENCE_DIR": str(work / "reference"), "AIRFLOW_PORT": str(port),
           "WAREHOUSE_PORT": str(_free_port()), "SPARK_UI_PORT": str(_free_port())}
    if images["local_base"]:
        env["POSTGRES_IMAGE"] = "hscode-local/postgres:15-bookworm"
    env_file = work / "stack.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    override = work / "compose.test.yaml"
    override.write_text(json.dumps({"version": "3.8", "services": {
        name: {"environment": TINY} for name in SERVICES}}))
    s = Stack(f"hscodetest{secrets.token_hex(3)}", env_file, override, port)
    s.rows = rows
    try:
        started = time.monotonic()
        s.compose("up", "-d", timeout=900)
        s.wait_healthy()
        s.up_seconds = time.monotonic() - started
        print(f"stack healthy in {s.up_seconds:.0f} s")
        yield s
    finally:
        logs = subprocess.run([*s.base, "logs", "--no-color"], capture_output=True, text=True,
                              timeout=300, check=False)
        (work / "compose.log").write_text(logs.stdout + logs.stderr)
        print(f"compose logs: {work / 'compose.log'}")
        subprocess.run([*s.base, "down", "-v", "--remove-orphans"], capture_output=True,
                       timeout=600, check=False)


def test_the_stack_retrains_and_publishes_a_night_through_the_airflow_api(stack: Stack) -> None:
    stack.compose("exec", "-T", "airflow-scheduler", "hscode", "seed", timeout=600)
    products = int(stack.psql("select count(*) from product_master"))
    assert 0.95 * stack.rows <= products <= stack.rows  # the seed's rejects are the rest

    stack.login()
    dags = {d["dag_id"]: d for d in stack.call("GET", "/dags")["dags"]}
    assert {"hscode_nightly_scoring", "hscode_retrain"} <= set(dags)
    assert all(d["is_paused"] for d in dags.values())  # paused at creation, as documented

    started = time.monotonic()
    (retrain,) = stack.run_dag("hscode_retrain", timeout=2400)  # no schedule: only ours
    retrain_s = time.monotonic() - started
    nights = stack.run_dag("hscode_nightly_scoring", timeout=2400)
    print(f"stack up {stack.up_seconds:.0f} s, retrain {retrain_s:.0f} s, "
          f"{len(nights)} nights {time.monotonic() - started - retrain_s:.0f} s")
    triggered = [r for r in nights if r["run_type"] == "manual"]
    assert [r["logical_date"][:10] for r in triggered] == [DS]

    # every night published: each product one prediction or one reason, once
    dates = {r["logical_date"][:10] for r in nights}
    for ds in dates:
        predicted = int(stack.psql(f"select count(*) from hs_predictions where ds = '{ds}'"))
        distinct = int(stack.psql(
            f"select count(distinct product_id) from hs_predictions where ds = '{ds}'"))
        unscorable = int(stack.psql(f"select count(*) from hs_unscorable where ds = '{ds}'"))
        assert predicted > 0.9 * products and distinct == predicted, ds
        assert predicted + unscorable == products, ds
    published = stack.psql("select string_agg(ds::text, ',' order by ds) from hs_scoring_runs")
    assert published == ",".join(sorted(dates))
    version = stack.psql("select distinct model_version from hs_scoring_runs")
    assert version == "registry:1", version  # the champion the retrain promoted
