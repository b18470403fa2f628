"""Table declarations: identifiers are validated, DDL is generated, data is conformed."""

from __future__ import annotations

import pyarrow as pa
import pytest

from hscode.warehouse.schema import PRODUCT_MASTER, Column, Table, check_identifier

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("bad", ["x; DROP TABLE product_master", 'a"b', "Upper", "1abc", ""])
def test_unsafe_identifiers_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="identifier"):
        check_identifier(bad)
    with pytest.raises(ValueError):
        Table(bad, (Column("a", "text"),))


def test_key_columns_must_exist() -> None:
    with pytest.raises(ValueError, match="key column"):
        Table("t", (Column("a", "text"),), partition_by="ds")


def test_ddl_per_dialect() -> None:
    pg = PRODUCT_MASTER.ddl("postgresql")
    assert pg.startswith('CREATE TABLE IF NOT EXISTS "product_master"')
    assert '"product_id" TEXT NOT NULL' in pg and 'PRIMARY KEY ("product_id")' in pg
    assert '"short_description" VARCHAR' in PRODUCT_MASTER.ddl("duckdb")


def test_conform_selects_casts_and_reports_missing_columns() -> None:
    t = Table("t", (Column("a", "text"), Column("n", "int")))
    out = t.conform(pa.table({"n": pa.array([1], pa.int64()), "extra": [0], "a": ["x"]}))
    assert out.schema == t.arrow_schema and out.column_names == ["a", "n"]
    with pytest.raises(ValueError, match=r"lacks columns \['n'\]"):
        t.conform(pa.table({"a": ["x"]}))
