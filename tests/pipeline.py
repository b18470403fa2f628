"""Helpers that drive the real jobs in-process on a temporary home (integration tests).

The jobs' ``run(args, settings)`` is what ``spark-submit jobs/<job>.py`` calls after parsing
its CLI; ``main(argv)`` adds the exit-code mapping and the run-date lock.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from argparse import Namespace
from pathlib import Path

import pyarrow as pa

from hscode.config import Settings, load_settings
from hscode.warehouse import Table, warehouse_from_settings
from hscode.warehouse.schema import PRODUCT_MASTER
from tests.conftest import SHARED_DATA

TRAIN_DS = "2026-11-01"
SLICE_ROWS = 3000


def job_settings(home: Path, url: str = "duckdb:///warehouse.duckdb", **env: str) -> Settings:
    """Settings for small real runs: a 3-epoch single-rank training with a small hash table,
    quiet Spark, and no Data Docs (the gates still validate; tests that look at the docs build them)."""
    environ = {
        "HSCODE_PATHS__HOME": str(home), "HSCODE_PATHS__SOURCE_DIR": str(SHARED_DATA),
        "HSCODE_WAREHOUSE__URL": url, "HSCODE_WAREHOUSE__CONNECT_RETRIES": "0",
        "HSCODE_TRAINING__MIN_ROWS_PER_CODE": "5", "HSCODE_TRAINING__EPOCHS": "3",
        "HSCODE_TRAINING__NUM_PROC": "1", "HSCODE_SPARK__LOG_LEVEL": "ERROR",
        # a 3,000-row slice needs no 2**18-row embedding table (26M weights per model)
        "HSCODE_TRAINING__HASH_BUCKETS": "32768",
        "HSCODE_QUALITY__DATA_DOCS": "false",
    }
    return load_settings(environ={**environ, **env})


def job_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a job subprocess (or ``main(argv)``) these settings."""
    return {"HSCODE_PATHS__HOME": str(settings.home),
            "HSCODE_PATHS__SOURCE_DIR": str(SHARED_DATA),
            "HSCODE_WAREHOUSE__URL": settings.warehouse.url,
            "HSCODE_WAREHOUSE__CONNECT_RETRIES": str(settings.warehouse.connect_retries),
            "HSCODE_WAREHOUSE__RETRY_BACKOFF_S": str(settings.warehouse.retry_backoff_s),
            "HSCODE_JOBS__DATE_LOCK_TIMEOUT_S": str(settings.jobs.date_lock_timeout_s),
            "HSCODE_QUALITY__DATA_DOCS": str(settings.quality.data_docs).lower(),
            "HSCODE_SPARK__LOG_LEVEL": "ERROR"}


def args(ds: str, **extra: object) -> Namespace:
    """The parsed CLI of a job for run date ``ds``."""
    return Namespace(ds=ds, master=None, config=None, **extra)


# Seeded DuckDB files, made once per test run and copied into each test's home: a seed of
# the 55k declarations takes seconds, a file copy milliseconds. Keyed by slice size (None:
# everything); the files live in one temporary folder removed when the run ends.
_SEEDED: dict[int | None, Path] = {}
_SEED_DIR: list[Path] = []


def _seed_dir() -> Path:
    if not _SEED_DIR:
        _SEED_DIR.append(Path(tempfile.mkdtemp(prefix="hscode-seeded-")))
        atexit.register(shutil.rmtree, _SEED_DIR[0], True)
    return _SEED_DIR[0]


def _seeded_file(rows: int | None) -> Path:
    """The seeded DuckDB file for ``rows`` (see :func:`seed_slice`), built on first use."""
    if rows not in _SEEDED:
        from hscode.seed import seed_warehouse

        path = _seed_dir() / f"seeded-{rows or 'all'}.duckdb"
        settings = job_settings(_seed_dir(), f"duckdb:///{path}")
        if rows is None:
            with warehouse_from_settings(settings) as wh:
                seed_warehouse(settings, wh)
        else:
            shutil.copyfile(_seeded_file(None), path)
            with warehouse_from_settings(settings) as wh:
                pm = wh.read_table(PRODUCT_MASTER).slice(0, rows)
                blank = pa.table({c: pa.nulls(2, pm.schema.field(c).type)
                                  for c in pm.column_names})
                blank = blank.set_column(0, "product_id", pa.array(["ZZ-EMPTY-1", "ZZ-EMPTY-2"]))
                wh.replace_table(PRODUCT_MASTER, pa.concat_tables([pm, blank.cast(pm.schema)]))
        _SEEDED[rows] = path
    return _SEEDED[rows]


def _install_seeded(settings: Settings, rows: int | None) -> None:
    url = settings.warehouse_url
    if not url.startswith("duckdb:///"):
        raise ValueError(f"seeded copies are DuckDB files; {settings.warehouse_display} is not")
    target = Path(url.removeprefix("duckdb:///"))
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_seeded_file(rows), target)


def seed_full(settings: Settings) -> None:
    """The settings' DuckDB warehouse seeded with all the reference data (55,371 rows read)."""
    _install_seeded(settings, None)


def seed_slice(settings: Settings, rows: int = SLICE_ROWS) -> None:
    """The real reference data, with product_master cut to ``rows`` products + 2 without text."""
    _install_seeded(settings, rows)


def upstream(settings: Settings, ds: str) -> None:
    """Extract and clean run date ``ds``."""
    from jobs import clean_products, extract_products

    extract_products.run(args(ds), settings)
    clean_products.run(args(ds), settings)


def score_and_publish(settings: Settings, ds: str, version: int | None = None) -> dict:
    """Score, publish and check drift for ``ds``; the three job summaries."""
    from jobs import check_drift, publish_predictions, score_catalog

    scored = score_catalog.run(args(ds, model_version=version), settings)
    published = publish_predictions.run(args(ds, validate_only=False), settings)
    drift = check_drift.run(args(ds), settings)
    return {"score": scored, "publish": published, "drift": drift}


def table(settings: Settings, t: Table) -> pa.Table:
    """All rows of a warehouse table."""
    with warehouse_from_settings(settings) as wh:
        return wh.read_table(t)
