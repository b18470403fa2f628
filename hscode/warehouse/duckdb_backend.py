"""DuckDB warehouse: the embedded default, one file under the project's data directory."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from hscode.warehouse.base import Warehouse, with_retries
from hscode.warehouse.schema import Table, ident, idents

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

    def _replace_many(self, steps: Sequence[tuple[Table, pa.Table, str, Sequence[Any]]]
                      ) -> None:
        views = [f"_hscode_src_{next(_views)}" for _ in steps]
        for view, (_, data, _, _) in zip(views, steps, strict=True):
            self._con.register(view, data)
        try:
            self._con.execute("BEGIN TRANSACTION")
            try:
                for view, (table, _, where, params) in zip(views, steps, strict=True):
                    cols, name = idents(table.column_names), ident(table.name)
                    self._con.execute(f"DELETE FROM {name} WHERE {where}", list(params))
                    self._con.execute(f"INSERT INTO {name} ({cols}) SELECT {cols} FROM {view}")
                self._con.execute("COMMIT")
            except BaseException:
                self._con.execute("ROLLBACK")
                raise
        finally:
            for view in views:
                self._con.unregister(view)
