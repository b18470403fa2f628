"""Shared fixtures: reference data, settings on a temporary home, a real PostgreSQL, and the
expensive set-ups built once per test run (one SparkSession, one seeded warehouse per size,
one seeded PostgreSQL database, one prepared training set, one trained Text-CNN).

Every test carries exactly one tier marker, ``unit`` or ``integration`` (``slow`` is added
to integration tests that ``make test`` leaves out); a ``unit`` test may not ask for a
fixture that starts a JVM, a server or a training. Collection fails otherwise.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from hscode.config import Settings, load_settings
from hscode.spark_classes import with_archive

# Every JVM the tests start (the session's SparkSession, spark-submit children, the jobs that
# Airflow tasks launch) compiles with the JIT's first tier only: on test-sized data the second
# tier costs far more CPU than it saves (clean job on 3,000 rows: 114 -> 66 CPU-s, 70 -> 54 s
# wall). Children inherit it through the environment; production JVMs are untouched.
os.environ.setdefault("SPARK_SUBMIT_OPTS", "-XX:TieredStopAtLevel=1")
# ... and maps the install step's class archive of Spark (hscode/spark_classes.py): ~5 s less
# per driver start
os.environ.update(with_archive())

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("HSCODE_SHARED_DATA", REPO.parent / "shared" / "data"))
PG_ADMIN_URL = os.environ.get("HSCODE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
TIERS = ("unit", "integration")
# fixtures that start a JVM, reach a server or train: never in a unit test
HEAVY_FIXTURES = frozenset({"spark", "pg_url", "pg_seeded_url", "warehouse_url", "textcnn",
                            "small_prepared", "browser"})


# The order `make test` hands whole files to its two xdist workers (--dist loadfile
# --no-loadscope-reorder): the longest first, so that no worker finishes alone at the end.
# xdist starts each worker with two files: the DAG worker's second is a short one.
LONGEST_FIRST = ("test_containers.py", "test_dags.py", "test_faults.py", "test_seed_warehouse.py",
                 "test_scoring_jobs.py", "test_bad_input.py", "test_training.py",
                 "test_cluster.py", "test_jobs.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the longest modules first (each module's tests together and in order); refuse
    tests without exactly one tier and unit tests that use heavy fixtures."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
    problems = []
    for item in items:
        tiers = [t for t in TIERS if item.get_closest_marker(t)]
        if len(tiers) != 1:
            problems.append(f"{item.nodeid}: needs exactly one of unit/integration, has {tiers}")
        elif tiers == ["unit"] and HEAVY_FIXTURES & set(getattr(item, "fixturenames", ())):
            heavy = sorted(HEAVY_FIXTURES & set(item.fixturenames))
            problems.append(f"{item.nodeid}: marked unit but uses {heavy}; mark it integration")
        if item.get_closest_marker("slow") and tiers != ["integration"]:
            problems.append(f"{item.nodeid}: slow tests are integration tests")
    if problems:
        raise pytest.UsageError("test tiers:\n  " + "\n  ".join(problems))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The reference data folder beside the checkout (never copied into the repo)."""
    if not (SHARED_DATA / "declarations.csv").is_file():
        pytest.fail(f"reference data not found at {SHARED_DATA} (set HSCODE_SHARED_DATA)")
    return SHARED_DATA


def make_settings(home: Path, warehouse_url: str = "duckdb:///warehouse.duckdb") -> Settings:
    """Settings with a temporary home, the shared reference data and the given warehouse."""
    return load_settings(
        environ={
            "HSCODE_PATHS__HOME": str(home),
            "HSCODE_PATHS__SOURCE_DIR": str(SHARED_DATA),
            "HSCODE_WAREHOUSE__URL": warehouse_url,
            "HSCODE_WAREHOUSE__CONNECT_RETRIES": "0",
        }
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings on a fresh temporary home with the embedded DuckDB warehouse."""
    return make_settings(tmp_path)


@pytest.fixture(scope="session")
def spark():
    """One local SparkSession for the whole test run (starting one costs 15-25 s)."""
    from pyspark.sql import SparkSession

    from hscode.config import WarehouseSettings

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers: this venv
    session = (
        SparkSession.builder.master("local[2]").appName("hscode-tests")
        # PostgreSQL's JDBC driver, as build_spark adds it for a PostgreSQL warehouse
        .config("spark.jars", str(WarehouseSettings().jdbc_jar))
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.pyspark.python", sys.executable)
        # the one JVM compiles every test file's plans: JDK 17's default 240 MB code cache
        # filled up once in CI ("Out of space in CodeCache for adapters")
        .config("spark.driver.extraJavaOptions", "-XX:ReservedCodeCacheSize=512m")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def browser():
    """One headless system Chromium (Playwright) for the session's page checks."""
    from tests.browser import chromium

    with chromium() as b:
        yield b


@contextmanager
def _pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database on the test server, dropped afterwards.

    Uses the server at ``HSCODE_TEST_PG_URL`` (default: local 127.0.0.1:5432, user postgres).
    Outside CI the tests that need it skip when no server answers; in CI they fail.
    """
    import psycopg

    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL required in CI but unreachable at {PG_ADMIN_URL}: {exc}")
        pytest.skip(f"no PostgreSQL server at {PG_ADMIN_URL} ({exc}); set HSCODE_TEST_PG_URL")
    name = f"hscode_test_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """URL of a fresh, empty PostgreSQL database shared by the session's tests."""
    with _pg_database() as url:
        yield url


@pytest.fixture(scope="session")
def pg_seeded_url(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Iterator[str]:
    """A second PostgreSQL database, seeded once with all the reference data.

    Tests that publish into it use their own run dates; none may change what the seed wrote.
    """
    from hscode.seed import seed_warehouse
    from hscode.warehouse import open_warehouse

    with _pg_database() as url:
        settings = make_settings(tmp_path_factory.mktemp("pg-seed"), url)
        with open_warehouse(url) as wh:
            seed_warehouse(settings, wh)
        yield url


@pytest.fixture(params=["duckdb", "postgresql"])
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each warehouse back end in turn: a DuckDB file, then a real PostgreSQL database."""
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path / 'wh.duckdb'}"
    return request.getfixturevalue("pg_url")


@contextmanager
def _built_once(tmp_path_factory: pytest.TempPathFactory, worker_id: str, name: str,
                build: Callable[[Path], dict]) -> Iterator[tuple[Path, dict]]:
    """A home that ``build(home)`` fills, built once per test run.

    Without pytest-xdist the home is built in place. Under xdist the first worker that asks
    builds it in the run's shared temporary folder (a file lock; the others wait) and every
    worker gets its own copy, so no two workers repeat a Spark or training build.
    Yields the worker's home and what ``build`` returned (JSON-serialisable).
    """
    import fcntl
    import json
    import shutil

    home = tmp_path_factory.mktemp(name)
    if worker_id == "master":
        yield home, build(home)
        return
    shared = tmp_path_factory.getbasetemp().parent / f"{name}-shared"
    with open(f"{shared}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the other workers wait for the first build
        if not (shared / "built.json").is_file():  # first, or after a failed build
            shutil.rmtree(shared, ignore_errors=True)
            shared.mkdir()
            built = build(shared)
            (shared / "built.json").write_text(json.dumps(built, default=str))
    shutil.copytree(shared, home, dirs_exist_ok=True)
    yield home, json.loads((shared / "built.json").read_text())


def _build_small_prepared(home: Path) -> dict:
    """Seed the full catalog, keep up to 150 products of each of the 8 most frequent codes,
    extract, clean and prepare them (see :func:`small_prepared`)."""
    import duckdb

    from jobs import prepare_training
    from tests.pipeline import TRAIN_DS, args, seed_full, upstream

    settings = _small_prepared_settings(home)
    seed_full(settings)
    with duckdb.connect(settings.warehouse_url.removeprefix("duckdb:///")) as con:
        con.execute("""
            DELETE FROM product_master WHERE product_id NOT IN (
              SELECT product_id FROM (
                SELECT product_id, row_number() OVER (PARTITION BY hs_code
                                                      ORDER BY product_id) AS n
                FROM product_master WHERE hs_code IN (
                  SELECT hs_code FROM product_master GROUP BY hs_code
                  ORDER BY COUNT(*) DESC, hs_code LIMIT 8))
              WHERE n <= 150)""")
    upstream(settings, TRAIN_DS)
    prepare_training.run(args(TRAIN_DS), settings)
    return {}


def _small_prepared_settings(home: Path) -> Settings:
    from tests.pipeline import job_settings

    return job_settings(home, HSCODE_TRAINING__TEST_SIZE="0.2",
                        HSCODE_TRAINING__CALIBRATION_SIZE="0.15")


@pytest.fixture(scope="session")
def small_prepared(spark, tmp_path_factory: pytest.TempPathFactory, worker_id: str,
                   shared_data: Path) -> Iterator[dict]:
    """A prepared training set made by the real jobs from the 8 most frequent codes.

    Up to 150 products per code go through extract -> clean -> prepare_training (run date
    2026-11-01, codes with >= 5 rows, 20 % test and 15 % calibration splits): an easy task
    that small networks learn in a few epochs. Built once per test run (see
    :func:`_built_once`). Returns the home, its settings and the prepared partition; tests
    copy the partition, never write into it.
    """
    from hscode.catalog import Catalog
    from tests.pipeline import TRAIN_DS

    with _built_once(tmp_path_factory, worker_id, "small-prepared",
                     _build_small_prepared) as (home, _):
        settings = _small_prepared_settings(home)
        catalog = Catalog.from_settings(settings)
        yield {"home": home, "settings": settings,
               "prepared": catalog.partition(catalog.prepared, TRAIN_DS)}


def _build_textcnn(home: Path) -> dict:
    """Seed, extract, clean and prepare a 3,000-product home, train a Text-CNN in it."""
    from hscode.training.train import train
    from jobs import prepare_training
    from tests.pipeline import TRAIN_DS, args, job_settings, seed_slice, upstream

    settings = job_settings(home)
    seed_slice(settings)
    upstream(settings, TRAIN_DS)
    prepare_training.run(args(TRAIN_DS), settings)
    # ~1,500 training rows: small batches and a dozen epochs (seconds) so the model
    # learns enough for tests that read its accuracy
    trained = job_settings(home, HSCODE_TRAINING__EPOCHS="12", HSCODE_TRAINING__BATCH_SIZE="32")
    outcome = train(trained, TRAIN_DS, "textcnn")
    return {"artifact": str(outcome.artifact.relative_to(home)), "metrics": outcome.metrics,
            "ranks": outcome.ranks}


@pytest.fixture(scope="session")
def textcnn(spark, tmp_path_factory: pytest.TempPathFactory, worker_id: str,
            shared_data: Path) -> Iterator[dict]:
    """A real Text-CNN trained on a 3,000-product slice of the catalog (run date 2026-11-01).

    Returns the home it lives in (seeded, extracted, cleaned, prepared), its settings and the
    training outcome. Tests that publish into this home share it; others copy the artifact.
    Built once per test run (see :func:`_built_once`); every worker has its own copy.
    """
    from hscode.training.train import TrainOutcome
    from tests.pipeline import job_settings

    with _built_once(tmp_path_factory, worker_id, "textcnn", _build_textcnn) as (home, built):
        model = TrainOutcome(model="textcnn", artifact=home / built["artifact"],
                             metrics=built["metrics"], ranks=built["ranks"])
        yield {"home": home, "settings": job_settings(home), "model": model}
