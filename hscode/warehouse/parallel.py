"""Spark tasks COPY a DataFrame into a PostgreSQL staging table, in parallel.

The publish's parallel path: nothing gathers the night in the driver. Each task opens its
own connection and, in ONE transaction, deletes what an earlier attempt of the same task
left and COPYs its share, so a retried task never doubles rows. The driver then moves the
staging table into the target inside the warehouse transaction that replaces the date
(:class:`~hscode.warehouse.stream.StagedTable`): a kill at any moment leaves the previous
rows of the date intact.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import TYPE_CHECKING

from hscode.warehouse.schema import Table, check_identifier, ident, idents
from hscode.warehouse.stream import StagedTable

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame

    from hscode.warehouse.base import Warehouse

PART = "_hscode_part"  # the staging table's extra column: which task wrote the row


def stage_name(table: Table, day: dt.date) -> str:
    """The staging table of ``table`` for run date ``day`` (one per date: reruns reuse it)."""
    return check_identifier(f"_hscode_stage_{table.name}_{day:%Y%m%d}")


def stage_in_parallel(df: DataFrame, table: Table, day: dt.date, warehouse: Warehouse,
                      url: str, tasks: int) -> StagedTable:
    """Write ``df``'s rows into a fresh staging table shaped like ``table``, ``tasks`` Spark
    tasks at a time, each COPYing its share over its own connection.

    Args:
        df: The rows (``table``'s columns; more are ignored).
        table: The warehouse table they are bound for.
        day: The run date (names the staging table).
        warehouse: The PostgreSQL warehouse (creates the staging table).
        url: Its libpq URL, which every task connects to (credentials as for the driver:
            the URL, ``PGPASSWORD`` or ``~/.pgpass`` on the executors).
        tasks: Parallel writers (``df`` is repartitioned to this many shares).

    Returns:
        The staging table and the rows the tasks wrote, for the replace to move.
    """
    name = stage_name(table, day)
    stage, target = ident(name), ident(table.name)
    warehouse.execute(f"DROP TABLE IF EXISTS {stage}")
    # UNLOGGED: no WAL for rows that live minutes; LIKE: the target's types and NOT NULLs
    warehouse.execute(f"CREATE UNLOGGED TABLE {stage} (LIKE {target})")
    warehouse.execute(f"ALTER TABLE {stage} ADD COLUMN {ident(PART)} integer")
    writer = _PartitionWriter(table, name, url)
    counts = df.select(*table.column_names).repartition(tasks).mapInArrow(
        writer, "rows long").collect()
    return StagedTable(name, sum(int(r["rows"]) for r in counts))


class _PartitionWriter:
    """The function each Spark task runs on its share (picklable: plain attributes)."""

    def __init__(self, table: Table, stage: str, url: str) -> None:
        self.table, self.stage, self.url = table, stage, url

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import psycopg
        import pyarrow as pa
        from pyspark import TaskContext

        from hscode.warehouse.postgres_backend import copy_csv

        ctx = TaskContext.get()
        part = ctx.partitionId() if ctx else 0
        stage, cols = ident(self.stage), idents([*self.table.column_names, PART])
        rows = 0
        with psycopg.connect(self.url, connect_timeout=10) as con, con.cursor() as cur:
            # one transaction: an earlier attempt's rows out, this attempt's in
            cur.execute(f"DELETE FROM {stage} WHERE {ident(PART)} = %s", [part])
            with cur.copy(f"COPY {stage} ({cols}) FROM STDIN (FORMAT csv)") as copy:
                for batch in batches:
                    out = self.table.conform(batch)
                    out = out.append_column(PART, pa.array([part] * out.num_rows, pa.int32()))
                    copy.write(copy_csv(out))
                    rows += out.num_rows
        yield pa.RecordBatch.from_pydict({"rows": [rows]})
