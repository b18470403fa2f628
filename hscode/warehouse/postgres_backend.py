"""PostgreSQL warehouse over a real connection (psycopg 3); bulk paths use COPY."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv

from hscode.warehouse.base import Warehouse, with_retries
from hscode.warehouse.schema import Table, ident, idents

_COPY_CHUNK = 1 << 20


class PostgresWarehouse(Warehouse):
    """A PostgreSQL database reached by a libpq URL (credentials from the URL or PG* env)."""

    dialect = "postgresql"

    def __init__(self, url: str, retries: int = 3, backoff_s: float = 1.0) -> None:
        self.url = url
        self._con = with_retries(
            lambda: psycopg.connect(url, autocommit=True, connect_timeout=10),
            retries, backoff_s, (psycopg.OperationalError,),
        )

    def close(self) -> None:
        self._con.close()

    @property
    def _param(self) -> str:
        return "%s"

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._con.cursor() as cur:
            cur.execute(sql, list(params) or None)
            return cur.fetchall() if cur.description else []

    def read_arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        # For query results (counts, reports); whole tables go through read_table's COPY.
        with self._con.cursor() as cur:
            cur.execute(sql, list(params) or None)
            names = [d.name for d in cur.description or []]
            rows = cur.fetchall()
        return pa.table({n: pa.array([r[i] for r in rows]) for i, n in enumerate(names)})

    def read_table(self, table: Table) -> pa.Table:
        # CSV loses types; read as text and cast with the declared schema.
        sql = table.select_sql()
        buf = io.BytesIO()
        with self._con.cursor() as cur, cur.copy(
            f"COPY ({sql}) TO STDOUT (FORMAT csv, HEADER true)"
        ) as copy:
            for block in copy:
                buf.write(block)
        buf.seek(0)
        schema = table.arrow_schema
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
        with self._con.transaction(), self._con.cursor() as cur:
            for table, data, where, params in steps:
                buf = io.BytesIO()
                # Arrow quotes every string and leaves nulls unquoted-empty (COPY's CSV rules)
                pacsv.write_csv(data, buf, write_options=pacsv.WriteOptions(include_header=False))
                payload = buf.getbuffer()
                cols, name = idents(table.column_names), ident(table.name)
                cur.execute(f"DELETE FROM {name} WHERE {where}", list(params) or None)
                with cur.copy(f"COPY {name} ({cols}) FROM STDIN (FORMAT csv)") as copy:
                    for start in range(0, len(payload), _COPY_CHUNK):
                        copy.write(payload[start : start + _COPY_CHUNK])
