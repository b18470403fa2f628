"""Helpers that drive the real jobs in-process on a temporary home (integration tests).

The jobs' ``run(args, settings)`` is what ``spark-submit jobs/<job>.py`` calls after parsing
its CLI; ``main(argv)`` adds the exit-code mapping and the run-date lock.
"""

from __future__ import annotations

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
    """Settings for small real runs: a 3-epoch single-rank training, quiet Spark."""
    environ = {
        "HSCODE_PATHS__HOME": str(home), "HSCODE_PATHS__SOURCE_DIR": str(SHARED_DATA),
        "HSCODE_WAREHOUSE__URL": url, "HSCODE_WAREHOUSE__CONNECT_RETRIES": "0",
        "HSCODE_TRAINING__MIN_ROWS_PER_CODE": "5", "HSCODE_TRAINING__EPOCHS": "3",
        "HSCODE_TRAINING__NUM_PROC": "1", "HSCODE_SPARK__LOG_LEVEL": "ERROR",
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
            "HSCODE_SPARK__LOG_LEVEL": "ERROR"}


def args(ds: str, **extra: object) -> Namespace:
    """The parsed CLI of a job for run date ``ds``."""
    return Namespace(ds=ds, master=None, config=None, **extra)


def seed_slice(settings: Settings, rows: int = SLICE_ROWS) -> None:
    """The real reference data, with product_master cut to ``rows`` products + 2 without text."""
    from hscode.seed import seed_warehouse

    with warehouse_from_settings(settings) as wh:
        seed_warehouse(settings, wh)
        pm = wh.read_table(PRODUCT_MASTER).slice(0, rows)
        blank = pa.table({c: pa.nulls(2, pm.schema.field(c).type) for c in pm.column_names})
        blank = blank.set_column(0, "product_id", pa.array(["ZZ-EMPTY-1", "ZZ-EMPTY-2"]))
        wh.replace_table(PRODUCT_MASTER, pa.concat_tables([pm, blank.cast(pm.schema)]))


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
