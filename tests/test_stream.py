"""Rows streamed in bounded batches: staged Parquet partitions read as conformed batches."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from hscode.warehouse import Column, Table
from hscode.warehouse.stream import conformed, partition_dataset

pytestmark = pytest.mark.unit

ROWS = Table(
    name="t_rows",
    columns=(Column("ds", "date", nullable=False), Column("product_id", "text", nullable=False),
             Column("score", "double")),
    partition_by="ds",
)
D1, D2 = dt.date(2026, 11, 1), dt.date(2026, 11, 2)


def _stage(root: Path, ds: dt.date, ids: list[str], files: int = 2) -> None:
    """A Spark-style partition: ``ds=`` folder, no ds column in the files, extra columns,
    ints where the table wants doubles, a _SUCCESS marker."""
    folder = root / f"ds={ds.isoformat()}"
    folder.mkdir(parents=True)
    (folder / "_SUCCESS").write_text("")
    for k in range(files):
        part = ids[k::files]
        pq.write_table(pa.table({"score": list(range(len(part))), "product_id": part,
                                 "scope": ["catalog", "training"] * (len(part) // 2)
                                 + ["catalog"] * (len(part) % 2)}),
                       folder / f"part-{k:05d}.parquet")


def test_a_staged_partition_streams_as_conformed_batches_no_larger_than_asked(tmp_path: Path
                                                                              ) -> None:
    ids = [f"p{i:03d}" for i in range(50)]
    _stage(tmp_path, D1, ids)
    _stage(tmp_path, D2, ["other"])
    rows = conformed(ROWS, partition_dataset(tmp_path, D1), partition=D1, batch_rows=7)
    batches = list(rows.read())
    assert max(b.num_rows for b in batches) == 7
    got = pa.Table.from_batches(batches)
    assert got.schema == ROWS.arrow_schema
    assert sorted(got.column("product_id").to_pylist()) == ids
    assert set(got.column("ds").to_pylist()) == {D1}
    assert got.column("score").type == pa.float64()
    assert pa.Table.from_batches(list(rows.read())).num_rows == 50  # read again: a retry


def test_a_filter_keeps_only_the_rows_it_names(tmp_path: Path) -> None:
    _stage(tmp_path, D1, [f"p{i}" for i in range(9)], files=1)
    rows = conformed(ROWS, partition_dataset(tmp_path, D1, pc.field("scope") == "catalog"), D1)
    assert pa.Table.from_batches(list(rows.read())).column("product_id").to_pylist() == \
        ["p0", "p2", "p4", "p6", "p8"]


def test_rows_outside_the_partition_or_missing_columns_are_refused(tmp_path: Path) -> None:
    _stage(tmp_path, D1, ["a", "b"])
    with pytest.raises(ValueError, match="outside partition"):
        list(conformed(ROWS, partition_dataset(tmp_path, D1), partition=D2).read())
    table = pa.table({"ds": pa.array([D1, D2], pa.date32()), "product_id": ["a", "b"],
                      "score": [1.0, 2.0]})
    with pytest.raises(ValueError, match="outside partition"):  # refused before any write
        conformed(ROWS, table, partition=D1)
    with pytest.raises(ValueError, match="lacks columns"):
        list(conformed(Table(name="t", columns=(Column("nope", "text"),)),
                       partition_dataset(tmp_path, D1)).read())


def test_a_partition_never_written_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="ds=2026-11-01"):
        partition_dataset(tmp_path, D1)
