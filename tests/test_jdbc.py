"""The parallel extract's connection settings: a libpq URL as Spark's JDBC source wants it."""

from __future__ import annotations

import pytest

from hscode.config import WarehouseSettings

pytestmark = pytest.mark.unit


def test_jdbc_url_from_a_libpq_url() -> None:
    from hscode.warehouse.jdbc import jdbc_url

    assert jdbc_url("postgresql://etl@db.example:6543/wh?sslmode=require", {}) == (
        "jdbc:postgresql://db.example:6543/wh?sslmode=require", {"user": "etl"})
    assert jdbc_url("postgres://u:p%40ss@h/d", {"PGPASSWORD": "ignored"})[1] == {
        "user": "u", "password": "p@ss"}
    assert jdbc_url("postgresql:///d", {"PGHOST": "h2", "PGUSER": "x", "PGPASSWORD": "s"}) == (
        "jdbc:postgresql://h2:5432/d", {"user": "x", "password": "s"})
    with pytest.raises(ValueError, match="postgresql://"):
        jdbc_url("duckdb:///w.duckdb", {})


def test_auto_extract_is_jdbc_for_postgresql_and_export_for_duckdb() -> None:
    auto = WarehouseSettings()
    assert auto.extract_method("postgresql://u@h/d") == "jdbc"
    assert auto.extract_method("duckdb:///w.duckdb") == "export"
    assert WarehouseSettings(extract_with="export").extract_method("postgresql://u@h/d") == \
        "export"
    with pytest.raises(ValueError, match="needs a PostgreSQL warehouse"):
        WarehouseSettings(extract_with="jdbc").extract_method("duckdb:///w.duckdb")


def test_a_missing_jdbc_driver_is_a_clear_error_before_spark_is_asked(tmp_path) -> None:
    from hscode.warehouse.jdbc import read_table
    from hscode.warehouse.schema import PRODUCT_MASTER

    cfg = WarehouseSettings(jdbc_jar=tmp_path / "absent.jar")
    with pytest.raises(FileNotFoundError, match="libpostgresql-jdbc-java"):
        read_table(None, PRODUCT_MASTER, "postgresql://u@h/d", cfg)
