"""Shared fixtures: reference data, settings on a temporary home, a real PostgreSQL."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hscode.config import Settings, load_settings

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("HSCODE_SHARED_DATA", REPO.parent / "shared" / "data"))
PG_ADMIN_URL = os.environ.get("HSCODE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


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

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers: this venv
    session = (
        SparkSession.builder.master("local[2]").appName("hscode-tests")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.pyspark.python", sys.executable)
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """URL of a fresh PostgreSQL database, dropped after the session.

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
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(params=["duckdb", "postgresql"])
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each warehouse back end in turn: a DuckDB file, then a real PostgreSQL database."""
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path / 'wh.duckdb'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture(scope="session")
def textcnn(spark, tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> dict:  # noqa: ANN001
    """A real Text-CNN trained on a 3,000-product slice of the catalog (run date 2026-11-01).

    Returns the home it lives in (seeded, extracted, cleaned, prepared), its settings and the
    training outcome. Tests that publish into this home share it; others copy the artifact.
    """
    from hscode.training.train import train
    from jobs import prepare_training
    from tests.pipeline import TRAIN_DS, args, job_settings, seed_slice, upstream

    home = tmp_path_factory.mktemp("textcnn")
    settings = job_settings(home)
    seed_slice(settings)
    upstream(settings, TRAIN_DS)
    prepare_training.run(args(TRAIN_DS), settings)
    model = train(settings, TRAIN_DS, "textcnn")
    return {"home": home, "settings": settings, "model": model}
