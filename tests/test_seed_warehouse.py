"""Seeding the real declarations into DuckDB and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from hscode.seed import SEED_TABLES, seed_warehouse
from hscode.warehouse import open_warehouse, warehouse_from_settings
from hscode.warehouse.schema import PRODUCT_MASTER, SEED_REJECTS
from tests.conftest import make_settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def seeded_duckdb(tmp_path_factory: pytest.TempPathFactory, shared_data: Path):
    settings = make_settings(tmp_path_factory.mktemp("seed"))
    with warehouse_from_settings(settings) as wh:
        report = seed_warehouse(settings, wh)
        tables = {t.name: wh.read_table(t) for t in SEED_TABLES}
    return settings, report, tables


def test_seed_loads_every_declaration(seeded_duckdb) -> None:
    _, report, tables = seeded_duckdb
    assert report.rows_read == 55371 and report.balanced
    assert tables["product_master"].num_rows + tables["seed_rejects"].num_rows == 55371
    assert tables["hs_nomenclature"].num_rows == 6940
    assert tables["hs_sections"].num_rows == 21
    codes = tables["product_master"].column("hs_code").to_pylist()
    assert all(len(c) == 6 and c.isdigit() for c in codes)
    assert "010121" in tables["hs_nomenclature"].column("code").to_pylist()


def test_reseed_gives_identical_tables(seeded_duckdb) -> None:
    settings, _, first = seeded_duckdb
    with warehouse_from_settings(settings) as wh:
        seed_warehouse(settings, wh)
        for table in SEED_TABLES:
            assert wh.read_table(table).equals(first[table.name]), table.name


def test_postgres_seed_matches_duckdb(seeded_duckdb, pg_url: str, tmp_path: Path) -> None:
    _, report, duck = seeded_duckdb
    settings = make_settings(tmp_path, pg_url)
    with open_warehouse(pg_url) as wh:
        pg_report = seed_warehouse(settings, wh)
        seed_warehouse(settings, wh)  # idempotent on PostgreSQL too
        for table in SEED_TABLES:
            assert wh.count(table) == duck[table.name].num_rows, table.name
        assert wh.read_table(PRODUCT_MASTER).equals(duck["product_master"])
    assert pg_report.loaded == report.loaded


def test_bad_csv_rows_are_reported_not_dropped(warehouse_url: str, tmp_path: Path) -> None:
    src = tmp_path / "bad.csv"
    src.write_text(
        "hs10,goods_description,assurance_level\n"
        "3924100000,PLASTIC PLATES,4\n"
        "3924100000,,4\n"
        "39241,CUPS,3\n"
        "8517130000,PHONE,7\n"
        "8517130000,PHONE,\n"
        '8517130000,"TWO\nLINES",3,extra\n',
        encoding="utf-8",
    )
    settings = make_settings(tmp_path, warehouse_url)
    with open_warehouse(warehouse_url) as wh:
        report = seed_warehouse(settings, wh, src)
        rejects = wh.read_table(SEED_REJECTS).to_pylist()
        assert wh.count(PRODUCT_MASTER) == 1
    assert report.rows_read == 6 and report.loaded == 1 and report.balanced
    by_row = {r["source_row"]: r["reason"] for r in rejects}
    assert by_row == {2: "empty_description", 3: "malformed_code", 4: "unknown_assurance_level",
                      5: "unknown_assurance_level", 6: "malformed_row"}
    assert {r["source_file"] for r in rejects} == {"bad.csv"}
