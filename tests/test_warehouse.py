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


def _ids(wh, ds: dt.date) -> list[str]:
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


def test_ensure_schema_adds_nullable_columns_a_later_release_declared(warehouse_url: str
                                                                       ) -> None:
    old = Table(name="test_grown", columns=(Column("ds", "date", nullable=False),
                                            Column("n", "bigint")),
                primary_key=("ds",), partition_by="ds")
    grown = Table(name="test_grown", columns=(*old.columns, Column("note", "text")),
                  primary_key=("ds",), partition_by="ds")
    with open_warehouse(warehouse_url) as wh:
        wh.execute('DROP TABLE IF EXISTS "test_grown"')
        wh.ensure_schema([old])
        wh.replace_partition(old, D1, pa.table({"ds": pa.array([D1], pa.date32()), "n": [7]}))
        wh.ensure_schema([grown])  # an existing warehouse meets the new release
        wh.ensure_schema([grown])  # and again: nothing to add
        got = wh.read_table(grown)
    assert got.column("n").to_pylist() == [7] and got.column("note").to_pylist() == [None]
    strict = Table(name="test_grown", columns=(*old.columns, Column("must", "text",
                                                                     nullable=False)))
    with pytest.raises(ValueError, match="NOT NULL"):
        strict.add_column_ddl("must", "duckdb")


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


EVENTS_LOG = Table(
    name="test_events_log",
    columns=(Column("ds", "date", nullable=False), Column("note", "text", nullable=False)),
    primary_key=("ds",),
    partition_by="ds",
)


def test_several_tables_replace_one_date_together_or_not_at_all(warehouse_url: str) -> None:
    log1 = pa.table({"ds": pa.array([D1], pa.date32()), "note": ["first"]})
    with open_warehouse(warehouse_url) as wh:
        wh.ensure_schema([EVENTS, EVENTS_LOG])
        assert wh.replace_partitions(D1, {EVENTS: _rows(D1, ["a", "b"]), EVENTS_LOG: log1}) == \
            {"test_events": 2, "test_events_log": 1}
        bad_log = pa.table({"ds": pa.array([D1, D1], pa.date32()), "note": ["x", "y"]})  # dup key
        with pytest.raises(Exception):  # noqa: B017 - driver-specific integrity error
            wh.replace_partitions(D1, {EVENTS: _rows(D1, ["new"]), EVENTS_LOG: bad_log})
        assert _ids(wh, D1) == ["a", "b"]  # the first table's step was rolled back too
        assert wh.execute('SELECT note FROM "test_events_log"') == [("first",)]


_KILL_BETWEEN_DELETE_AND_INSERT = """
import datetime as dt, os, sys
import pyarrow as pa
from hscode.warehouse import open_warehouse
from tests.dying import die_after
from tests.test_warehouse import EVENTS, _rows

wh = open_warehouse(sys.argv[1])
die_after(wh, "DELETE", "deleted, now dying")
wh.replace_partition(EVENTS, dt.date(2026, 11, 1), _rows(dt.date(2026, 11, 1), ["new1", "new2"]))
print("not reached")
"""


def test_publish_killed_between_delete_and_insert_keeps_the_previous_rows(
    warehouse_url: str,
) -> None:
    import subprocess
    import sys

    from tests.conftest import REPO

    with open_warehouse(warehouse_url) as wh:
        wh.ensure_schema([EVENTS])
        wh.replace_partition(EVENTS, D1, _rows(D1, ["a", "b"]))
    proc = subprocess.run([sys.executable, "-c", _KILL_BETWEEN_DELETE_AND_INSERT, warehouse_url],
                          capture_output=True, text=True, cwd=REPO, timeout=120, check=False)
    assert proc.returncode == 9, proc.stderr[-2000:]
    assert "deleted, now dying" in proc.stdout and "not reached" not in proc.stdout
    with open_warehouse(warehouse_url) as wh:
        assert _ids(wh, D1) == ["a", "b"]
        wh.replace_partition(EVENTS, D1, _rows(D1, ["new1"]))  # a rerun repairs the date
        assert _ids(wh, D1) == ["new1"]


def _stage_events(root, ds: dt.date, ids: list[str]) -> None:
    """Rows as Spark stages them: a ``ds=`` folder, no ds column in the file."""
    import pyarrow.parquet as pq

    folder = root / f"ds={ds.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(_rows(ds, ids).drop(["ds"]), folder / f"part-{len(list(folder.iterdir()))}.parquet")


def test_a_staged_partition_is_published_in_bounded_batches(warehouse_url: str, tmp_path
                                                            ) -> None:
    from hscode.warehouse.stream import partition_dataset

    ids = [f"p{i:02d}" for i in range(25)]
    _stage_events(tmp_path, D1, ids)
    with open_warehouse(warehouse_url) as wh:
        wh.batch_rows = 4  # 7 batches, one transaction
        wh.ensure_schema([EVENTS])
        wh.replace_partition(EVENTS, D1, _rows(D1, ["old"]))
        wh.replace_partition(EVENTS, D2, _rows(D2, ["kept"]))
        assert wh.replace_partition(EVENTS, D1, partition_dataset(tmp_path, D1)) == 25
        assert _ids(wh, D1) == ids and _ids(wh, D2) == ["kept"]
        got = wh.read_table(EVENTS).filter(pa.compute.equal(pa.compute.field("ds"), D1))
        assert got.column("at").to_pylist()[0] == dt.datetime(2026, 11, 1, 12, 30)


def test_a_bad_batch_late_in_the_stream_rolls_the_whole_date_back(warehouse_url: str,
                                                                   tmp_path) -> None:
    from hscode.warehouse.stream import partition_dataset

    _stage_events(tmp_path, D1, [f"p{i}" for i in range(6)])
    _stage_events(tmp_path, D1, ["p0"])  # a duplicate key in the second file
    with open_warehouse(warehouse_url) as wh:
        wh.batch_rows = 2
        wh.ensure_schema([EVENTS])
        wh.replace_partition(EVENTS, D1, _rows(D1, ["a", "b"]))
        with pytest.raises(Exception):  # noqa: B017 - duplicate key: driver-specific error
            wh.replace_partition(EVENTS, D1, partition_dataset(tmp_path, D1))
        assert _ids(wh, D1) == ["a", "b"]
        d2 = _ids(wh, D2)
        with pytest.raises(ValueError, match="outside partition"):  # D1's files for D2
            wh.replace_partition(EVENTS, D2, partition_dataset(tmp_path, D1))
        assert _ids(wh, D1) == ["a", "b"] and _ids(wh, D2) == d2


def test_export_writes_every_row_in_row_groups_of_the_batch_size(warehouse_url: str,
                                                                 tmp_path) -> None:
    import pyarrow.parquet as pq

    ids = [f"p{i:02d}" for i in range(10)]
    with open_warehouse(warehouse_url) as wh:
        wh.ensure_schema([EVENTS])
        wh.replace_table(EVENTS, _rows(D1, ids, ["x", None, 'q"uote', "line\nbreak", "NA",
                                                 "", "ü", "a,b", "-", "z"]))
        wh.batch_rows = 3
        out = tmp_path / "staging" / "out.parquet"
        assert wh.export_parquet(EVENTS, out) == 10
        expected = wh.read_table(EVENTS)
    got = pq.read_table(out)
    assert pq.ParquetFile(out).metadata.num_row_groups == 4
    assert got.schema == EVENTS.arrow_schema
    assert got.sort_by("product_id").equals(expected)
    assert [p.name for p in out.parent.iterdir()] == ["out.parquet"]  # no spool or temp left


_KILL_MID_STREAM = """
import datetime as dt, os, sys
from pathlib import Path
import hscode.warehouse.stream as stream
from hscode.warehouse import open_warehouse
from hscode.warehouse.schema import Table
from tests.test_warehouse import EVENTS

calls = []
conform = Table.conform
def dying(*a, **k):
    calls.append(1)
    if len(calls) == 3:  # two batches are in the transaction already
        print("streaming, now dying", flush=True); os._exit(9)
    return conform(*a, **k)
Table.conform = dying
wh = open_warehouse(sys.argv[1])
wh.batch_rows = 2
wh.replace_partition(EVENTS, dt.date(2026, 11, 1),
                     stream.partition_dataset(Path(sys.argv[2]), dt.date(2026, 11, 1)))
print("not reached")
"""


def test_publish_killed_mid_stream_keeps_the_previous_rows(warehouse_url: str, tmp_path) -> None:
    import subprocess
    import sys

    from tests.conftest import REPO

    _stage_events(tmp_path, D1, [f"new{i}" for i in range(9)])
    with open_warehouse(warehouse_url) as wh:
        wh.ensure_schema([EVENTS])
        wh.replace_partition(EVENTS, D1, _rows(D1, ["a", "b"]))
    proc = subprocess.run([sys.executable, "-c", _KILL_MID_STREAM, warehouse_url, str(tmp_path)],
                          capture_output=True, text=True, cwd=REPO, timeout=120, check=False)
    assert proc.returncode == 9, proc.stderr[-2000:]
    assert "streaming, now dying" in proc.stdout and "not reached" not in proc.stdout
    with open_warehouse(warehouse_url) as wh:
        assert _ids(wh, D1) == ["a", "b"]
