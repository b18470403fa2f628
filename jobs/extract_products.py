"""Extract job: warehouse ``product_master`` -> raw Parquet snapshot partition ``ds``.

    spark-submit jobs/extract_products.py --ds 2026-11-01 [--master local[*]] [--config F]

The snapshot is gated by the ``raw_products`` suite before it is written; every later
stage of that date reads it, so a rerun of the date sees the same input.
"""

from __future__ import annotations

import logging
import sys
from argparse import Namespace
from typing import Any

from hscode.catalog import Catalog
from hscode.config import Settings
from hscode.jobrun import job_parser, nightly_spark, run_job, write_summary

log = logging.getLogger("hscode.extract")


def run(args: Namespace, settings: Settings) -> dict[str, Any]:
    from hscode.extract import (
        previous_partition,
        read_partition,
        row_count_bounds,
        stage_product_master,
        to_snapshot,
        write_partition,
    )
    from hscode.quality import gate, gate_engine, import_gx_in_background
    from hscode.warehouse import jdbc, warehouse_from_settings
    from hscode.warehouse.schema import PRODUCT_MASTER

    catalog = Catalog.from_settings(settings)
    spark = nightly_spark(args, settings, "hscode-extract")
    import_gx_in_background()  # overlaps the Spark work before the gate
    method = settings.warehouse.extract_method(settings.warehouse_url)
    staged = settings.data_dir / "staging" / f"pm_{args.ds}.parquet"
    # extract: Spark tasks read the table's shares over JDBC, or one bounded export to Parquet
    with warehouse_from_settings(settings) as wh:
        if method == "jdbc":
            ignored = wh.check_columns(PRODUCT_MASTER)
        else:
            staged, ignored = stage_product_master(wh, staged)
    if ignored:
        log.warning("product_master has columns the pipeline does not read: %s", ignored)
    if method == "jdbc":
        raw = jdbc.read_table(spark, PRODUCT_MASTER, settings.warehouse_url, settings.warehouse)
    else:
        spark.catalog.refreshByPath(str(staged))  # a long-lived session may cache an older file
        raw = spark.read.parquet(str(staged))
    snapshot = to_snapshot(raw, args.ds).cache()
    rows = snapshot.count()
    prev = previous_partition(catalog.raw_products, args.ds)
    prev_rows = read_partition(spark, catalog.raw_products, prev).count() if prev else None
    low, high = row_count_bounds(prev_rows, settings.quality)
    # validate
    result = gate(snapshot, catalog.suite_file("raw_products"), catalog.run_dir(args.ds),
                  {"min_rows": low, "max_rows": high}, settings.quality.data_docs,
                  engine=gate_engine(settings.quality, rows))
    # load
    write_partition(snapshot, catalog.raw_products)
    staged.unlink(missing_ok=True)
    summary = {"ds": args.ds, "rows": rows, "extracted_with": method,
               "previous_ds": prev, "previous_rows": prev_rows,
               "ignored_columns": ignored,
               "snapshot": str(catalog.partition(catalog.raw_products, args.ds)),
               "data_docs": result.docs_link}
    write_summary(catalog, args.ds, "extract_products", summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    return run_job(run, job_parser(__doc__.splitlines()[0]), argv)


if __name__ == "__main__":
    sys.exit(main())
