"""Extract helpers: snapshot shape, partition discovery, row-count bounds."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from hscode.config import QualitySettings
from hscode.extract import (
    previous_partition,
    read_partition,
    row_count_bounds,
    snapshot_rows,
    to_snapshot,
)
from hscode.warehouse.schema import PRODUCT_MASTER


@pytest.mark.unit
def test_row_count_bounds() -> None:
    cfg = QualitySettings(row_count_tolerance=0.5, min_rows=1)
    assert row_count_bounds(None, cfg) == (1, 2**62)
    assert row_count_bounds(1000, cfg) == (500, 1501)
    assert row_count_bounds(1, QualitySettings(row_count_tolerance=0.5, min_rows=5))[0] == 5


@pytest.mark.unit
def test_previous_partition(tmp_path: Path) -> None:
    for d in ("2026-10-30", "2026-11-01", "2026-11-03"):
        (tmp_path / f"ds={d}").mkdir()
    assert previous_partition(tmp_path, "2026-11-03") == "2026-11-01"
    assert previous_partition(tmp_path, "2026-11-02") == "2026-11-01"
    assert previous_partition(tmp_path, "2026-10-30") is None
    assert previous_partition(tmp_path / "missing", "2026-11-01") is None


@pytest.mark.unit
def test_snapshot_rows_counts_the_date_or_the_latest_before_it_from_the_footers(
        tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    for ds, parts in (("2026-11-01", (3, 4)), ("2026-11-03", (5,))):
        (tmp_path / f"ds={ds}").mkdir()
        for i, n in enumerate(parts):
            pq.write_table(pa.table({"product_id": [str(j) for j in range(n)]}),
                           tmp_path / f"ds={ds}" / f"part-{i}.parquet")
    assert snapshot_rows(tmp_path, "2026-11-03") == 5
    assert snapshot_rows(tmp_path, "2026-11-02") == 7  # before its extract: the last night's
    assert snapshot_rows(tmp_path, "2026-10-31") is None
    (tmp_path / "ds=2026-11-03" / "part-9.parquet").write_bytes(b"not parquet")
    assert snapshot_rows(tmp_path, "2026-11-04") is None  # a damaged footer: size unknown


@pytest.mark.integration
def test_to_snapshot_orders_columns_and_adds_ds(spark) -> None:
    row = {c: None for c in reversed(PRODUCT_MASTER.column_names)} | {"product_id": "P1"}
    df = spark.createDataFrame([row], ", ".join(
        f"{c} {'int' if c == 'assurance_level' else 'timestamp' if c == 'updated_at' else 'string'}"
        for c in row))
    snap = to_snapshot(df, "2026-11-01")
    assert snap.columns == [*PRODUCT_MASTER.column_names, "ds"]
    assert snap.first()["ds"] == dt.date(2026, 11, 1)


@pytest.mark.integration
def test_missing_partition_is_a_clear_error(spark, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="run the upstream job first"):
        read_partition(spark, tmp_path, "2026-11-01")
