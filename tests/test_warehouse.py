"""Warehouse back ends against real DuckDB files and a real PostgreSQL database."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from hscode.warehouse import Column, Table, open_warehouse

pytestmark = pytest.mark.integration

EVENTS = Table(
    name="test_events",
    columns=(
        Column("ds", "date", nullable=False),
        Column("product_id", "text", nullable=False),
        Column("text", "text"),
        Column("score", "double"),
        Column("flag", "bool"),
        Column("at", "timestamp"),
    ),
    primary_key=("ds", "product_id"),
    partition_by="ds",
)
D1, D2 = dt.date(2026, 11, 1), dt.date(2026, 11, 2)


def _rows(ds: dt.date, ids: list[str], text: list[str | None] | None = None) -> pa.Table:
    n = len(ids)
    return pa.table(
        {
            "ds": pa.array([ds] * n, pa.date32()),
            "product_id": ids,
            "text": text if text is not None else [f"t-{i}" for i in ids],
            "score": [0.5] * n,
            "flag": [True] * n,
            "at": pa.array([dt.datetime(2026, 11, 1, 12, 30)] * n, pa.timestamp("us")),
        }
    )


def _ids(wh, ds: dt.date) -> list[str]:  # noqa: ANN001
    return [r[0] for r in wh.execute(
        'SELECT product_id FROM "test_events" WHERE ds = ' + wh._param + " ORDER BY 1", [ds])]


def test_round_trip_keeps_nulls_empty_strings_quotes_and_line_breaks(warehouse_url: str):
    tricky = [None, "", 'say "hi", ok', "line\nbreak", "'; DROP TABLE test_events; --", "naïve ü"]
    with open_warehouse(warehouse_url) as wh:
        wh.ensure_schema([EVENTS])
        wh.replace_table(EVENTS, _rows(D1, [f"p{i}" for i in range(6)], tricky))
        got = wh.read_table(EVENTS)
    assert got.schema == EVENTS.arrow_schema
    assert got.column("text").to_pylist() == tricky
    assert got.column("at").to_pylist()[0] == dt.datetime(2026, 11, 1, 12, 30)
    assert got.column("flag").to_pylist() == [True] * 6


def test_replace_partition_touches_only_its_date_and_is_idempotent(warehouse_url: str) -> None:
    with open_warehouse(warehouse_url) as wh:
        wh.ensure_schema([EVENTS])
        wh.replace_partition(EVENTS, D1, _rows(D1, ["a", "b"]))
        wh.replace_partition(EVENTS, D2, _rows(D2, ["c"]))
        wh.replace_partition(EVENTS, D1, _rows(D1, ["x"]))
        wh.replace_partition(EVENTS, D1, _rows(D1, ["x"]))
        assert _ids(wh, D1) == ["x"]
        assert _ids(wh, D2) == ["c"]
        assert wh.count(EVENTS) == 2


def test_failed_write_leaves_previous_rows_intact(warehouse_url: str) -> None:
    with open_warehouse(warehouse_url) as wh:
        wh.ensure_schema([EVENTS])
        wh.replace_partition(EVENTS, D1, _rows(D1, ["a", "b"]))
        with pytest.raises(Exception):  # noqa: B017 - duplicate key: driver-specific error
            wh.replace_partition(EVENTS, D1, _rows(D1, ["n", "n"]))
        assert _ids(wh, D1) == ["a", "b"]
        with pytest.raises(ValueError, match="outside partition"):
            wh.replace_partition(EVENTS, D1, _rows(D2, ["z"]))
        assert _ids(wh, D1) == ["a", "b"]


def test_unsupported_url_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unsupported warehouse URL"):
        open_warehouse("mysql://x/y")


def test_unreachable_postgres_retries_then_raises() -> None:
    import psycopg

    with pytest.raises(psycopg.OperationalError):
        open_warehouse("postgresql://nobody@127.0.0.1:1/none", retries=1, backoff_s=0.01)


def test_strings_that_look_like_null_markers_survive(warehouse_url: str) -> None:
    words = ["NA", "N/A", "NULL", "null", "NaN", "None", "-"]
    with open_warehouse(warehouse_url) as wh:
        wh.ensure_schema([EVENTS])
        wh.replace_table(EVENTS, _rows(D1, [f"p{i}" for i in range(len(words))], words))
        assert wh.read_table(EVENTS).column("text").to_pylist() == words
