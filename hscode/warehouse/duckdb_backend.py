"""DuckDB warehouse: the embedded default, one file under the project's data directory."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from hscode.warehouse.base import Warehouse, with_retries
from hscode.warehouse.schema import Table, ident, idents
from hscode.warehouse.stream import Batches, StagedTable

_views = itertools.count()


class DuckDBWarehouse(Warehouse):
    """A DuckDB database file (or ``:memory:``)."""

    dialect = "duckdb"

    def __init__(self, path: str, retries: int = 3, backoff_s: float = 1.0) -> None:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # A file locked by another writer raises IOException: wait and retry.
        self._con = with_retries(
            lambda: duckdb.connect(path), retries, backoff_s, (duckdb.IOException,)
        )

    def close(self) -> None:
        self._con.close()

    @property
    def _param(self) -> str:
        return "?"

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cur = self._con.execute(sql, list(params))
        try:
            return cur.fetchall()
        except duckdb.InvalidInputException:  # statement without a result set
            return []

    def read_arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        return self._con.sql(sql, params=list(params) or None).to_arrow_table()

    def _export_batches(self, table: Table, lenient: bool, spool: Path
                        ) -> Iterator[pa.RecordBatch]:
        reader = self._con.sql(table.select_sql(ordered=False)).to_arrow_reader(self.batch_rows)
        schema = table.arrow_schema_for(lenient)
        for batch in reader:
            yield batch.cast(schema)

    def _run(self, sql: str, params: Sequence[Any]) -> int | None:
        rows = self.execute(sql, params)  # DuckDB reports an INSERT's count as its result
        return int(rows[0][0]) if rows else None

    def _replace_many(self, steps: Sequence[tuple[Table, Batches | StagedTable, str,
                                                  Sequence[Any]]]) -> list[int]:
        view = f"_hscode_src_{next(_views)}"
        counts = []
        self._con.execute("BEGIN TRANSACTION")
        try:
            for table, rows, where, params in steps:
                cols, name = idents(table.column_names), ident(table.name)
                self._con.execute(f"DELETE FROM {name} WHERE {where}", list(params))
                if isinstance(rows, StagedTable):
                    counts.append(self._move_staged(self._run, table, rows, where, params))
                    continue
                count = 0
                for batch in rows.read():  # one bounded batch registered at a time
                    self._con.register(view, batch)
                    try:
                        self._con.execute(f"INSERT INTO {name} ({cols}) SELECT {cols} FROM {view}")
                    finally:
                        self._con.unregister(view)
                    count += batch.num_rows
                counts.append(count)
            self._con.execute("COMMIT")
        except BaseException:
            self._con.execute("ROLLBACK")
            raise
        return counts
