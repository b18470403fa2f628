"""The PostgreSQL publish's parallel path: Spark tasks COPY into a staging table, one
transaction moves it in; kills and retries leave exactly one set of rows."""

from __future__ import annotations

import subprocess
import sys

import psycopg
import pytest

from hscode.warehouse import open_warehouse
from hscode.warehouse.parallel import _PartitionWriter, stage_in_parallel, stage_name
from hscode.warehouse.stream import StagedTable
from tests.conftest import REPO
from tests.test_warehouse import D1, D2, EVENTS, _ids, _rows

pytestmark = pytest.mark.integration


def _stage_exists(url: str, name: str) -> bool:
    with psycopg.connect(url) as con:
        return con.execute("SELECT to_regclass(%s) IS NOT NULL", [name]).fetchone()[0]


def _staged(spark, pg_url: str, ids: list[str], day=D1, tasks: int = 3) -> StagedTable:
    df = spark.createDataFrame(_rows(day, ids).to_pandas())
    with open_warehouse(pg_url) as wh:
        wh.ensure_schema([EVENTS])
        return stage_in_parallel(df, EVENTS, D1, wh, pg_url, tasks)


def test_tasks_stage_in_parallel_and_one_transaction_moves_the_date(spark, pg_url: str
                                                                    ) -> None:
    ids = [f"p{i:03d}" for i in range(300)]
    staged = _staged(spark, pg_url, ids, tasks=3)
    assert staged == StagedTable(stage_name(EVENTS, D1), 300)
    with psycopg.connect(pg_url) as con:  # three writers, each its own share
        shares = con.execute(f'SELECT COUNT(DISTINCT "_hscode_part") FROM "{staged.name}"'
                             ).fetchone()[0]
    assert shares == 3
    with open_warehouse(pg_url) as wh:
        wh.replace_partition(EVENTS, D2, _rows(D2, ["other-date"]))
        d2 = _ids(wh, D2)
        assert wh.replace_partition(EVENTS, D1, staged) == 300
        assert _ids(wh, D1) == ids and _ids(wh, D2) == d2
        got = wh.read_table(EVENTS)
    assert set(got.column("text").to_pylist()) >= {f"t-{i}" for i in ids}
    assert not _stage_exists(pg_url, staged.name)  # dropped with the move


def test_a_retried_task_replaces_its_own_rows(spark, pg_url: str) -> None:
    staged = _staged(spark, pg_url, ["a", "b"], tasks=1)
    writer = _PartitionWriter(EVENTS, staged.name, pg_url)
    batch = _rows(D1, ["a", "b"]).to_batches()[0]
    for _ in range(2):  # the same task (partition 0) runs again after a lost executor
        assert next(writer(iter([batch]))).column("rows").to_pylist() == [2]
    with open_warehouse(pg_url) as wh:
        assert wh.replace_partition(EVENTS, D1, staged) == 2


def test_a_staging_table_that_disagrees_with_its_writers_is_refused(spark, pg_url: str
                                                                    ) -> None:
    with open_warehouse(pg_url) as wh:
        wh.ensure_schema([EVENTS])
        wh.replace_partition(EVENTS, D1, _rows(D1, ["keep"]))
    staged = _staged(spark, pg_url, ["x", "y"])
    with open_warehouse(pg_url) as wh:
        with pytest.raises(ValueError, match="writers reported 3"):
            wh.replace_partition(EVENTS, D1, StagedTable(staged.name, 3))
        with pytest.raises(ValueError, match="outside the partition"):
            wh.replace_partition(EVENTS, D2, staged)
        assert _ids(wh, D1) == ["keep"]
    assert _stage_exists(pg_url, staged.name)  # kept for a rerun


_KILL_DURING_THE_MOVE = """
import datetime as dt, os, sys
from hscode.warehouse import open_warehouse
from hscode.warehouse.stream import StagedTable
from tests.dying import die_after
from tests.test_warehouse import EVENTS

wh = open_warehouse(sys.argv[1])
die_after(wh, "INSERT", "moved, now dying")
wh.replace_partition(EVENTS, dt.date(2026, 11, 1), StagedTable(sys.argv[2], int(sys.argv[3])))
print("not reached")
"""


def test_publish_killed_after_the_move_before_commit_keeps_the_previous_rows(
        spark, pg_url: str) -> None:
    with open_warehouse(pg_url) as wh:
        wh.ensure_schema([EVENTS])
        wh.replace_partition(EVENTS, D1, _rows(D1, ["a", "b"]))
    staged = _staged(spark, pg_url, ["new1", "new2", "new3"])
    proc = subprocess.run(
        [sys.executable, "-c", _KILL_DURING_THE_MOVE, pg_url, staged.name, str(staged.rows)],
        capture_output=True, text=True, cwd=REPO, timeout=120, check=False)
    assert proc.returncode == 9, proc.stderr[-2000:]
    assert "moved, now dying" in proc.stdout and "not reached" not in proc.stdout
    with open_warehouse(pg_url) as wh:
        assert _ids(wh, D1) == ["a", "b"]
        assert wh.replace_partition(EVENTS, D1, staged) == 3  # a rerun completes the move
        assert _ids(wh, D1) == ["new1", "new2", "new3"]

