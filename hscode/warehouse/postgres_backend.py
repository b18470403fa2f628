"""PostgreSQL warehouse over a real connection (psycopg 3); bulk paths use COPY.

Every operation is atomic (autocommit statements, or one transaction for a replace), so
when the server goes away for a moment (restart, fail-over, a killed session) the
operation is retried on a fresh connection with exponential backoff. Concurrent writers
of the same tables (two overlapping backfills) are serialised by a table lock that
readers do not wait for.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv

from hscode.warehouse.base import Warehouse, with_retries
from hscode.warehouse.schema import Table, ident, idents

_COPY_CHUNK = 1 << 20
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

    def read_table(self, table: Table, lenient: bool = False) -> pa.Table:
        # CSV loses types; read as text and cast with the declared schema.
        self.check_columns(table)
        sql = table.select_sql()

        def op(con: psycopg.Connection) -> io.BytesIO:
            buf = io.BytesIO()
            with con.cursor() as cur, cur.copy(
                f"COPY ({sql}) TO STDOUT (FORMAT csv, HEADER true)"
            ) as copy:
                for block in copy:
                    buf.write(block)
            buf.seek(0)
            return buf

        buf = self._retrying(op)
        schema = table.arrow_schema_for(lenient)
        return pacsv.read_csv(
            buf,
            convert_options=pacsv.ConvertOptions(
                column_types={f.name: f.type for f in schema},
                null_values=[""],  # only COPY's unquoted empty field; "NA" is a region
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
                true_values=["t", "true"],
                false_values=["f", "false"],
            ),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
        ).cast(schema)

    def _replace_many(self, steps: Sequence[tuple[Table, pa.Table, str, Sequence[Any]]]
                      ) -> None:
        payloads = []
        for _, data, _, _ in steps:
            buf = io.BytesIO()
            # Arrow quotes every string and leaves nulls unquoted-empty (COPY's CSV rules)
            pacsv.write_csv(data, buf, write_options=pacsv.WriteOptions(include_header=False))
            payloads.append(buf.getbuffer())
        # One writer at a time per table (SHARE ROW EXCLUSIVE conflicts with itself, not with
        # readers); locked in name order so two writers never wait on each other in a cycle.
        locked = ", ".join(ident(n) for n in sorted({t.name for t, _, _, _ in steps}))

        def op(con: psycopg.Connection) -> None:
            with con.transaction(), con.cursor() as cur:
                cur.execute(f"LOCK TABLE {locked} IN SHARE ROW EXCLUSIVE MODE")
                for (table, _, where, params), payload in zip(steps, payloads, strict=True):
                    cols, name = idents(table.column_names), ident(table.name)
                    cur.execute(f"DELETE FROM {name} WHERE {where}", list(params) or None)
                    with cur.copy(f"COPY {name} ({cols}) FROM STDIN (FORMAT csv)") as copy:
                        for start in range(0, len(payload), _COPY_CHUNK):
                            copy.write(payload[start : start + _COPY_CHUNK])

        self._retrying(op)
