"""Rows moved in bounded batches, so that no edge of the pipeline holds a night in memory.

A write's rows are an Arrow table (small: a run's summary, a review decision) or an Arrow
dataset over Parquet files Spark wrote (the night's predictions). Either is read batch by
batch and conformed to the warehouse table on the way; a retried transaction reads it again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

if TYPE_CHECKING:
    from hscode.warehouse.schema import Table

#: Rows per batch when none is configured: ~10-50 MB of Arrow for the pipeline's tables.
BATCH_ROWS = 65_536



@dataclass(frozen=True)
class StagedTable:
    """Rows already written into a staging table of the warehouse (by Spark's tasks, in
    parallel); a replace moves them into the target and drops the staging table.

    Attributes:
        name: The staging table.
        rows: The rows its writers reported: the move must carry exactly these.
    """

    name: str
    rows: int


ArrowRows = pa.Table | pads.Dataset
RowSource = ArrowRows | StagedTable


@dataclass(frozen=True)
class Batches:
    """Conformed rows of one table, readable again from the start by calling ``read``."""

    schema: pa.Schema
    read: Callable[[], Iterator[pa.RecordBatch]]


def check_partition(table: Table, batch: pa.RecordBatch | pa.Table, value: Any) -> None:
    """Raise ``ValueError`` unless every row's partition column equals ``value``."""
    if table.partition_by is None:
        raise ValueError(f"{table.name} is not partitioned")
    col = batch.column(table.partition_by)
    if batch.num_rows and (col.null_count or not pc.all(pc.equal(col, value)).as_py()):
        raise ValueError(f"{table.name}: data holds rows outside partition {value!r}")


def conformed(table: Table, source: ArrowRows, partition: Any = None,
              batch_rows: int = BATCH_ROWS) -> Batches:
    """``source`` as conformed batches of at most ``batch_rows`` rows.

    An Arrow table is conformed (and its partition checked) at once, so a bad one fails
    before any transaction starts; a dataset is conformed and checked batch by batch while
    it is written, and a bad batch fails the transaction it is in.

    Args:
        table: The warehouse table the rows go to.
        source: An Arrow table or a (re-readable) Arrow dataset.
        partition: When given, every row's ``table.partition_by`` must equal it.
        batch_rows: Largest batch read from a dataset.

    Raises:
        ValueError: for missing columns or rows outside ``partition`` (tables: here).
    """
    schema = table.arrow_schema
    if isinstance(source, pa.Table):
        data = table.conform(source)
        if partition is not None:
            check_partition(table, data, partition)
        return Batches(schema, lambda: iter(data.to_batches(max_chunksize=batch_rows)))

    def read() -> Iterator[pa.RecordBatch]:
        for batch in source.to_batches(batch_size=batch_rows):
            out = table.conform(batch)
            if partition is not None:
                check_partition(table, out, partition)
            yield out

    return Batches(schema, read)


def partition_dataset(dataset: Path, ds: dt.date | str,
                      where: pc.Expression | None = None) -> pads.Dataset:
    """One ``ds=`` partition of a Spark-written Parquet dataset, ``ds`` a date column.

    Args:
        dataset: The dataset's folder (``.../predictions``), Hive-style partitions inside.
        ds: The run date.
        where: An optional row filter (e.g. ``pc.field("scope") == "catalog"``).

    Raises:
        FileNotFoundError: when the partition was never written.
    """
    day = ds if isinstance(ds, str) else ds.isoformat()
    folder = dataset / f"ds={day}"
    if not folder.is_dir():
        raise FileNotFoundError(f"no partition ds={day} in {dataset}: run the upstream job first")
    found = pads.dataset(
        folder, format="parquet", partition_base_dir=str(dataset),
        partitioning=pads.partitioning(pa.schema([("ds", pa.date32())]), flavor="hive"))
    return found if where is None else found.filter(where)
