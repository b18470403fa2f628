"""Extract: the warehouse's ``product_master`` as a raw Parquet snapshot per run date."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from hscode.warehouse.schema import PRODUCT_MASTER

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from hscode.config import QualitySettings
    from hscode.warehouse import Warehouse


def stage_product_master(warehouse: Warehouse, staging: Path) -> tuple[Path, list[str]]:
    """Bulk-export ``product_master`` to one Parquet file Spark can read.

    Only the declared columns are exported; columns an upstream system added are returned
    so that the run reports them (they are not read). The export streams in batches of the
    warehouse's ``batch_rows`` (one row group each): its memory does not grow with the
    catalog.

    On a cluster, ``staging`` must be on storage the executors share.

    Returns:
        ``(staged file, extra columns)``.

    Raises:
        WarehouseSchemaError: when ``product_master`` is absent or lacks a declared column.
    """
    extra = warehouse.check_columns(PRODUCT_MASTER)
    # lenient: a null product id becomes a quarantine row in cleaning, not a failed read
    warehouse.export_parquet(PRODUCT_MASTER, staging, lenient=True)
    return staging, extra


def to_snapshot(df: DataFrame, ds: str) -> DataFrame:
    """The product-master columns in declared order plus the run date ``ds``."""
    from pyspark.sql import functions as F

    return df.select(*PRODUCT_MASTER.column_names, F.lit(ds).cast("date").alias("ds"))


def read_partition(spark: SparkSession, dataset: Path, ds: str) -> DataFrame:
    """One ``ds`` partition of a Parquet dataset, with its ``ds`` column.

    Raises:
        FileNotFoundError: when the partition was never written.
    """
    from pyspark.sql import functions as F

    if not (dataset / f"ds={ds}").is_dir():
        raise FileNotFoundError(f"no partition ds={ds} in {dataset}: run the upstream job first")
    spark.catalog.refreshByPath(str(dataset))  # files may have changed since this session listed
    return spark.read.parquet(str(dataset)).where(F.col("ds") == F.lit(ds).cast("date"))


def write_partition(df: DataFrame, dataset: Path, sort_by: str = "product_id") -> None:
    """Replace exactly the ``ds`` partitions present in ``df`` (dynamic overwrite)."""
    (df.repartition(1).sortWithinPartitions(sort_by).write.mode("overwrite")
     .option("partitionOverwriteMode", "dynamic").partitionBy("ds").parquet(str(dataset)))


def previous_partition(dataset: Path, ds: str) -> str | None:
    """The latest ``ds`` before this one that has a partition, if any."""
    if not dataset.is_dir():
        return None
    earlier = sorted(p.name[3:] for p in dataset.glob("ds=*") if p.is_dir() and p.name[3:] < ds)
    return earlier[-1] if earlier else None


def row_count_bounds(previous_rows: int | None, cfg: QualitySettings) -> tuple[int, int]:
    """Allowed snapshot size: within ``row_count_tolerance`` of the previous run."""
    if previous_rows is None:
        return cfg.min_rows, 2**62
    low = int(previous_rows * (1 - cfg.row_count_tolerance))
    high = int(previous_rows * (1 + cfg.row_count_tolerance)) + 1
    return max(cfg.min_rows, low), high


def snapshot_rows(dataset: Path, ds: str) -> int | None:
    """Rows of the raw snapshot of ``ds``, else of the latest one before it, from the Parquet
    footers (no Spark): what a job knows of the catalog's size before its JVM starts;
    ``None`` before the first snapshot, or when a footer cannot be read (the size only tunes
    the JVM: it must never stop the job, whose own read reports a damaged file)."""
    import logging

    import pyarrow as pa
    import pyarrow.parquet as pq

    part = dataset / f"ds={ds}"
    if not part.is_dir():
        prev = previous_partition(dataset, ds)
        if prev is None:
            return None
        part = dataset / f"ds={prev}"
    try:
        return sum(pq.read_metadata(f).num_rows for f in part.glob("*.parquet"))
    except (OSError, pa.ArrowException) as exc:
        logging.getLogger(__name__).warning("catalog size unknown (%s): %s", part, exc)
        return None
