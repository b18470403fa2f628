"""The warehouse interface shared by the DuckDB and PostgreSQL back ends.

Every write is bulk (Arrow / COPY) and atomic: a full-table replace or a partition replace
happens inside one transaction, so readers see either the old rows or the new ones.
"""

from __future__ import annotations

import abc
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa

from hscode.warehouse.schema import (
    ALL_TABLES,
    ALL_VIEWS,
    Table,
    View,
    check_identifier,
    ident,
    idents,
)
from hscode.warehouse.stream import (
    BATCH_ROWS,
    ArrowRows,
    Batches,
    RowSource,
    StagedTable,
    conformed,
)

log = logging.getLogger(__name__)
T = TypeVar("T")


def with_retries(
    fn: Callable[[], T], retries: int, backoff_s: float, errors: tuple[type[BaseException], ...]
) -> T:
    """Call ``fn``; on one of ``errors`` retry up to ``retries`` times, doubling the wait."""
    attempt = 0
    while True:
        try:
            return fn()
        except errors as exc:
            if attempt >= retries:
                raise
            wait = backoff_s * (2**attempt)
            log.warning("warehouse unavailable (%s); retry %d/%d in %.1fs", exc, attempt + 1,
                        retries, wait)
            time.sleep(wait)
            attempt += 1


class WarehouseSchemaError(ValueError):
    """A table the pipeline reads is absent or lacks declared columns."""


class Warehouse(abc.ABC):
    """A connection to the warehouse. Use as a context manager."""

    dialect: str
    #: Rows per Arrow batch a write streams or an export reads (``warehouse.batch_rows``).
    batch_rows: int = BATCH_ROWS

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abc.abstractmethod
    def close(self) -> None:
        """Release the connection."""

    @abc.abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement built from trusted identifiers, values bound as parameters."""

    @abc.abstractmethod
    def read_arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        """Run a query and return its result as an Arrow table (bulk path)."""

    @abc.abstractmethod
    def _export_batches(self, table: Table, lenient: bool, spool: Path
                        ) -> Iterator[pa.RecordBatch]:
        """All rows of ``table`` (checked to exist) in batches cast to its schema; ``spool``
        is a file the back end may use as a buffer on disk."""

    def export_parquet(self, table: Table, path: Path, lenient: bool = False) -> int:
        """Write every row of ``table`` to one Parquet file at ``path``, in bounded batches.

        The file appears whole or not at all (written beside, then renamed); a row group per
        batch, so Spark reads it in parallel. Memory stays within a few batches of
        :attr:`batch_rows` whatever the table's size. Returns the rows written.

        Raises:
            WarehouseSchemaError: when the table is absent or lacks a declared column.
        """
        import pyarrow.parquet as pq

        from hscode.files import temporary_beside

        self.check_columns(table)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp, spool = temporary_beside(path), temporary_beside(path.with_suffix(".spool"))
        rows = 0
        try:
            with pq.ParquetWriter(tmp, table.arrow_schema_for(lenient)) as writer:
                for batch in self._export_batches(table, lenient, spool):
                    writer.write_batch(batch, row_group_size=self.batch_rows)
                    rows += batch.num_rows
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)
            spool.unlink(missing_ok=True)
        return rows

    @abc.abstractmethod
    def _replace_many(self, steps: Sequence[tuple[Table, Batches | StagedTable, str,
                                                  Sequence[Any]]]) -> list[int]:
        """For each ``(table, rows, where, params)``: delete ``where`` and bulk-insert the
        rows batch by batch (or move a staging table's, see :meth:`_move_staged`); all steps
        in one transaction (all or nothing). Returns the rows inserted per step."""

    @staticmethod
    def _move_staged(run: Callable[[str, Sequence[Any]], int | None], table: Table,
                     staged: StagedTable, where: str, params: Sequence[Any]) -> int:
        """Inside the caller's transaction: check and move a staging table's rows into
        ``table``, then drop it (a rollback keeps it for a rerun). ``run`` executes one
        statement and returns its result's first value, else the rows it touched.

        Raises:
            ValueError: when a staged row lies outside ``where`` or the staging table does
                not hold exactly the rows its writers reported.
        """
        cols, stage = idents(table.column_names), ident(staged.name)
        outside = run(f"SELECT COUNT(*) FROM {stage} WHERE NOT ({where})", params)
        if outside:
            raise ValueError(f"{table.name}: staging table {staged.name} holds {outside} "
                             "row(s) outside the partition")
        count = run(f"INSERT INTO {ident(table.name)} ({cols}) SELECT {cols} FROM {stage}", ())
        if count != staged.rows:
            raise ValueError(f"{table.name}: staging table {staged.name} holds {count} rows, "
                             f"its writers reported {staged.rows}")
        run(f"DROP TABLE {stage}", ())
        return count

    def ensure_schema(self, tables: Iterable[Table] = ALL_TABLES,
                      views: Iterable[View] | None = None) -> None:
        """Create the tables that do not exist yet, add nullable columns a later release
        declared to tables that do, then (re)create the views.

        ``views`` defaults to every view when ``tables`` is every table, else none.
        """
        for table in tables:
            self.execute(table.ddl(self.dialect))
            present = self.columns_of(table.name)
            for column in table.columns:  # nullable columns added in a later release
                if column.nullable and column.name not in present:
                    self.execute(table.add_column_ddl(column.name, self.dialect))
        for view in (ALL_VIEWS if tables is ALL_TABLES else ()) if views is None else views:
            self.execute(view.ddl())

    def replace_table(self, table: Table, data: ArrowRows) -> int:
        """Replace all rows of ``table`` with ``data`` atomically; return the row count."""
        return self._replace_many([(table, conformed(table, data, None, self.batch_rows),
                                    "TRUE", ())])[0]

    def replace_partition(self, table: Table, value: Any, data: RowSource) -> int:
        """Replace the rows of one partition (``table.partition_by = value``) atomically.

        Raises:
            ValueError: when the table is not partitioned or ``data`` holds other partitions.
        """
        return self.replace_partitions(value, {table: data})[table.name]

    def replace_partitions(self, value: Any, data: dict[Table, RowSource]
                           ) -> dict[str, int]:
        """Replace partition ``value`` of several tables in ONE transaction.

        Readers see either every table's old rows for that partition or every table's new
        rows; a failure anywhere (a bad row, a lost connection, a killed process) leaves all
        of them as they were. A dataset's rows are streamed in batches of
        :attr:`batch_rows`: the memory a replace takes does not grow with the partition.

        Raises:
            ValueError: when a table is not partitioned or its data holds other partitions.
        """
        steps: list[tuple[Table, Batches | StagedTable, str, Sequence[Any]]] = []
        for table, rows in data.items():
            if table.partition_by is None:
                raise ValueError(f"{table.name} is not partitioned")
            source = rows if isinstance(rows, StagedTable) else conformed(
                table, rows, value, self.batch_rows)
            steps.append((table, source, f"{ident(table.partition_by)} = {self._param}",
                          (value,)))
        counts = self._replace_many(steps)
        return {t.name: n for (t, _, _, _), n in zip(steps, counts, strict=True)}

    def delete_and_insert(self, steps: Sequence[tuple[Table, ArrowRows, str, Sequence[Any]]]
                          ) -> dict[str, int]:
        """For each ``(table, rows, where, params)``: delete the rows ``where`` selects
        (``FALSE``: none, i.e. an append) and insert ``rows``; all in ONE transaction.

        ``where`` is SQL built from trusted identifiers (values bound through ``params``,
        written with :attr:`param`); returns the rows inserted per table.
        """
        batches = [(t, conformed(t, d, None, self.batch_rows), w, p) for t, d, w, p in steps]
        counts = self._replace_many(batches)
        return {t.name: n for (t, _, _, _), n in zip(batches, counts, strict=True)}

    @property
    def param(self) -> str:
        """The placeholder for one bound parameter (``?`` or ``%s``)."""
        return self._param

    def read_table(self, table: Table, lenient: bool = False) -> pa.Table:
        """All rows of ``table``, ordered by its primary key when it has one.

        ``lenient``: nulls in NOT NULL columns are kept (see :meth:`Table.conform`).

        Raises:
            WarehouseSchemaError: when the table is absent or lacks a declared column.
        """
        self.check_columns(table)
        return table.conform(self.read_arrow(table.select_sql()), lenient)

    def columns_of(self, name: str) -> list[str]:
        """The columns of table ``name`` in the current schema, in order (none if absent)."""
        rows = self.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = "
            f"{self._param} AND table_schema = current_schema() ORDER BY ordinal_position",
            (check_identifier(name),))
        return [r[0] for r in rows]

    def check_columns(self, table: Table) -> list[str]:
        """Check that ``table`` exists with every declared column; return its extra ones.

        Extra columns (an upstream system added one) are not read; the caller reports them.

        Raises:
            WarehouseSchemaError: when the table is absent or lacks a declared column.
        """
        present = self.columns_of(table.name)
        if not present:
            raise WarehouseSchemaError(
                f"warehouse table {table.name} does not exist (run `hscode seed`, or create "
                f"it with columns {table.column_names})")
        missing = [c for c in table.column_names if c not in present]
        if missing:
            raise WarehouseSchemaError(
                f"warehouse table {table.name} lacks column(s) {missing}: expected "
                f"{table.column_names}, found {present}")
        return [c for c in present if c not in table.column_names]

    def count(self, table: Table) -> int:
        """Number of rows in ``table``."""
        return int(self.execute(f"SELECT COUNT(*) FROM {ident(table.name)}")[0][0])

    @property
    @abc.abstractmethod
    def _param(self) -> str:
        """The placeholder for one bound parameter in this dialect."""
