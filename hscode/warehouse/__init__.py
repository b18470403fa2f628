"""Warehouse access: ``open_warehouse(url)`` picks DuckDB or PostgreSQL by URL scheme."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hscode.warehouse.base import Warehouse, WarehouseSchemaError
from hscode.warehouse.schema import ALL_TABLES, TABLES, Column, Table

if TYPE_CHECKING:
    from hscode.config import Settings

__all__ = ["ALL_TABLES", "TABLES", "Column", "Table", "Warehouse", "WarehouseSchemaError", "hs6_codes",
           "open_warehouse", "warehouse_from_settings"]


def open_warehouse(url: str, retries: int = 3, backoff_s: float = 1.0) -> Warehouse:
    """Connect to the warehouse named by ``url``.

    Args:
        url: ``duckdb:///path/file.duckdb`` (or ``duckdb:///:memory:``) or
            ``postgresql://user@host:port/db``.
        retries: Connection attempts after the first, with exponential backoff.
        backoff_s: First wait between attempts.

    Raises:
        ValueError: for an unsupported scheme.
    """
    if url.startswith("duckdb:///"):
        from hscode.warehouse.duckdb_backend import DuckDBWarehouse

        return DuckDBWarehouse(url[len("duckdb:///") :], retries, backoff_s)
    if url.startswith(("postgresql://", "postgres://")):
        from hscode.warehouse.postgres_backend import PostgresWarehouse

        return PostgresWarehouse(url, retries, backoff_s)
    raise ValueError(f"unsupported warehouse URL (want duckdb:/// or postgresql://): {url!r}")


def hs6_codes(warehouse: Warehouse) -> list[str]:
    """The HS6 subheadings of ``hs_nomenclature``, sorted.

    Raises:
        ValueError: when there are none (the warehouse was never seeded).
    """
    from hscode.warehouse.schema import HS_NOMENCLATURE

    nomenclature = warehouse.read_table(HS_NOMENCLATURE).to_pandas()
    codes = sorted(nomenclature.loc[nomenclature["level"] == 6, "code"])
    if not codes:
        raise ValueError("hs_nomenclature has no HS6 codes: run `hscode seed` first")
    return codes


def warehouse_from_settings(settings: Settings) -> Warehouse:
    """Open the warehouse configured in ``settings``."""
    w = settings.warehouse
    wh = open_warehouse(settings.warehouse_url, w.connect_retries, w.retry_backoff_s)
    wh.batch_rows = w.batch_rows
    return wh
