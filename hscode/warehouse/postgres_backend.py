"""PostgreSQL warehouse over a real connection (psycopg 3); bulk paths use COPY.

Every operation is atomic (autocommit statements, or one transaction for a replace), so
when the server goes away for a moment (restart, fail-over, a killed session) the
operation is retried on a fresh connection with exponential backoff. Concurrent writers
of the same tables (two overlapping backfills) are serialised by a table lock that
readers do not wait for.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv

from hscode.warehouse.base import Warehouse, with_retries
from hscode.warehouse.schema import Table, ident, idents
from hscode.warehouse.stream import Batches, StagedTable

T = TypeVar("T")


class PostgresWarehouse(Warehouse):
    """A PostgreSQL database reached by a libpq URL (credentials from the URL or PG* env)."""

    dialect = "postgresql"

    def __init__(self, url: str, retries: int = 3, backoff_s: float = 1.0) -> None:
        self.url = url
        self.retries, self.backoff_s = retries, backoff_s
        self._con = self._connect()

    def _connect(self) -> psycopg.Connection:
        return with_retries(
            lambda: psycopg.connect(self.url, autocommit=True, connect_timeout=10),
            self.retries, self.backoff_s, (psycopg.OperationalError,),
        )

    def _retrying(self, op: Callable[[psycopg.Connection], T]) -> T:
        """Run ``op`` on a live connection; on a lost connection reconnect and run it again."""

        def attempt() -> T:
            if self._con.closed or self._con.broken:
                self._con = self._connect()
            return op(self._con)

        return with_retries(attempt, self.retries, self.backoff_s, (psycopg.OperationalError,))

    def close(self) -> None:
        self._con.close()

    @property
    def _param(self) -> str:
        return "%s"

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        def op(con: psycopg.Connection) -> list[tuple[Any, ...]]:
            with con.cursor() as cur:
                cur.execute(sql, list(params) or None)
                return cur.fetchall() if cur.description else []

        return self._retrying(op)

    def read_arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        # For query results (counts, reports); whole tables go through read_table's COPY.
        def op(con: psycopg.Connection) -> pa.Table:
            with con.cursor() as cur:
                cur.execute(sql, list(params) or None)
                names = [d.name for d in cur.description or []]
                rows = cur.fetchall()
            return pa.table({n: pa.array([r[i] for r in rows]) for i, n in enumerate(names)})

        return self._retrying(op)

    def _copy_out(self, sql: str, sink: Callable[[], BinaryIO]) -> BinaryIO:
        """``COPY (sql) TO STDOUT`` as CSV with a header into a fresh ``sink()`` (per try)."""

        def op(con: psycopg.Connection) -> BinaryIO:
            out = sink()
            with con.cursor() as cur, cur.copy(
                    f"COPY ({sql}) TO STDOUT (FORMAT csv, HEADER true)") as copy:
                for block in copy:
                    out.write(block)
            out.seek(0)
            return out

        return self._retrying(op)

    def read_table(self, table: Table, lenient: bool = False) -> pa.Table:
        # CSV loses types; read as text and cast with the declared schema.
        self.check_columns(table)
        schema = table.arrow_schema_for(lenient)
        buf = self._copy_out(table.select_sql(), io.BytesIO)
        return pacsv.read_csv(buf, convert_options=_convert(schema),
                              parse_options=_PARSE).cast(schema)

    def _export_batches(self, table: Table, lenient: bool, spool: Path
                        ) -> Iterator[pa.RecordBatch]:
        # COPY into a spool file on disk, then parse it a block at a time.
        schema = table.arrow_schema_for(lenient)
        with self._copy_out(table.select_sql(ordered=False), lambda: spool.open("w+b")) as f:
            reader = pacsv.open_csv(f, read_options=pacsv.ReadOptions(block_size=8 << 20),
                                    convert_options=_convert(schema), parse_options=_PARSE)
            for batch in reader:
                yield batch.cast(schema)

    def _replace_many(self, steps: Sequence[tuple[Table, Batches | StagedTable, str,
                                                  Sequence[Any]]]) -> list[int]:
        # One writer at a time per table (SHARE ROW EXCLUSIVE conflicts with itself, not with
        # readers); locked in name order so two writers never wait on each other in a cycle.
        locked = ", ".join(ident(n) for n in sorted({t.name for t, _, _, _ in steps}))

        def op(con: psycopg.Connection) -> list[int]:
            counts = []
            with con.transaction(), con.cursor() as cur:
                cur.execute(f"LOCK TABLE {locked} IN SHARE ROW EXCLUSIVE MODE")
                for table, rows, where, params in steps:
                    cols, name = idents(table.column_names), ident(table.name)
                    cur.execute(f"DELETE FROM {name} WHERE {where}", list(params) or None)
                    if isinstance(rows, StagedTable):
                        counts.append(self._move_staged(partial(_run, cur), table, rows, where,
                                                        params))
                        continue
                    count = 0
                    with cur.copy(f"COPY {name} ({cols}) FROM STDIN (FORMAT csv)") as copy:
                        for batch in rows.read():  # a retry reads the rows again
                            copy.write(copy_csv(batch))
                            count += batch.num_rows
                    counts.append(count)
            return counts

        return self._retrying(op)


def _run(cur: psycopg.Cursor, sql: str, params: Sequence[Any]) -> int | None:
    """One statement: its result's first value, else the rows it touched."""
    cur.execute(sql, list(params) or None)
    if cur.description:
        row = cur.fetchone()
        return None if row is None else int(row[0])
    return cur.rowcount


_PARSE = pacsv.ParseOptions(newlines_in_values=True)


def _convert(schema: pa.Schema) -> pacsv.ConvertOptions:
    """How COPY's CSV reads back as ``schema``."""
    return pacsv.ConvertOptions(
        column_types={f.name: f.type for f in schema},
        null_values=[""],  # only COPY's unquoted empty field; "NA" is a region
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
        true_values=["t", "true"],
        false_values=["f", "false"],
    )


def copy_csv(batch: pa.RecordBatch) -> memoryview:
    """One batch as COPY's CSV: Arrow quotes every string, nulls stay unquoted-empty."""
    buf = io.BytesIO()
    pacsv.write_csv(batch, buf, write_options=pacsv.WriteOptions(include_header=False))
    return buf.getbuffer()
