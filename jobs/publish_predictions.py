"""Publish job: check the staged predictions of ``ds`` and replace that date in the warehouse.

    spark-submit jobs/publish_predictions.py --ds 2026-11-01 [--validate-only]

``hs_predictions``, ``hs_unscorable`` and ``hs_scoring_runs`` get their ``ds`` partition
replaced in ONE transaction (DuckDB or PostgreSQL): a rerun leaves exactly one set of rows,
readers never see half a date, a failure leaves the previous rows. Before that, the
``predictions`` suite must have passed on exactly these files (the score job's gate, whose
result records their fingerprint; otherwise - files rewritten since, no result kept, or
``--validate-only`` - the suite runs here) and every catalog row must be a prediction or
unscorable.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from argparse import Namespace
from typing import Any

from hscode.catalog import Catalog, parse_ds
from hscode.config import Settings
from hscode.jobrun import (
    AccountingError,
    job_parser,
    nightly_spark,
    read_summary,
    run_job,
    write_summary,
)

log = logging.getLogger("hscode.publish")


def run(args: Namespace, settings: Settings) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.compute as pc
    from pyspark.sql import functions as F

    from hscode.extract import read_partition
    from hscode.files import fingerprint
    from hscode.quality import gate_engine, gate_predictions, recorded_pass
    from hscode.warehouse import hs6_codes, warehouse_from_settings
    from hscode.warehouse.parallel import stage_in_parallel
    from hscode.warehouse.schema import HS_PREDICTIONS, HS_SCORING_RUNS, HS_UNSCORABLE
    from hscode.warehouse.stream import partition_dataset

    catalog = Catalog.from_settings(settings)
    scored = read_summary(catalog, args.ds, "score_catalog")
    staged = fingerprint(catalog.partition(catalog.predictions, args.ds))
    spark = nightly_spark(args, settings, "hscode-publish")
    # extract
    predictions = read_partition(spark, catalog.predictions, args.ds)
    unscorable = read_partition(spark, catalog.quarantine, args.ds).where(
        F.col("scope") == "catalog").select("ds", "product_id", "reason", "raw_text")
    catalog_rows = read_partition(spark, catalog.raw_products, args.ds).count()
    with warehouse_from_settings(settings) as wh:
        hs6 = hs6_codes(wh)
    # validate
    n_pred, n_unscorable = predictions.count(), unscorable.count()
    if catalog_rows != n_pred + n_unscorable:
        raise AccountingError(f"catalog {catalog_rows} != predictions {n_pred} + unscorable "
                              f"{n_unscorable} for ds={args.ds}")
    passed = None if args.validate_only else recorded_pass(catalog.run_dir(args.ds),
                                                           "predictions", staged)
    if passed is None:
        docs = gate_predictions(predictions, hs6, catalog.suite_file("predictions"),
                                catalog.run_dir(args.ds), scored["scoring_rows"],
                                settings.quality.data_docs, staged,
                                gate_engine(settings.quality, n_pred)).docs_link
    else:
        log.info("predictions suite passed on these files in score_catalog: not run again")
        docs = passed["data_docs"]
    counts = predictions.agg(
        F.sum(F.col("needs_review").cast("int")).alias("review"),
        F.sum((F.col("needs_review") | (F.col("agrees_with_assigned") == F.lit(False)))
              .cast("int")).alias("queue"),
        F.sum((F.col("agrees_with_assigned") == F.lit(False)).cast("int")).alias("disagree"),
    ).first()
    summary: dict[str, Any] = {
        "ds": args.ds, "catalog_rows": catalog_rows, "predicted_rows": n_pred,
        "unscorable_rows": n_unscorable, "needs_review": int(counts["review"] or 0),
        "disagrees_with_assigned": int(counts["disagree"] or 0),
        "review_queue_rows": int(counts["queue"] or 0),
        "model": scored["model"], "review_threshold": scored["review_threshold"],
        "data_docs": docs, "gate": "recorded" if passed else "validated", "published": False,
    }
    if args.validate_only:
        return summary
    # load: one transaction for the three tables
    threshold = scored["review_threshold"]
    run_row = pa.Table.from_pylist([{
        "ds": parse_ds(args.ds), "model_name": scored["model"]["name"],
        "model_version": scored["model"]["version"], "catalog_rows": catalog_rows,
        "predicted_rows": n_pred, "unscorable_rows": n_unscorable,
        "review_rows": summary["needs_review"],
        "disagreeing_rows": summary["disagrees_with_assigned"],
        "review_threshold": threshold["value"], "holdout_precision": threshold["precision"],
        "holdout_coverage": threshold["coverage"],
        "holdout_precision_low": threshold.get("precision_low"),
        "holdout_precision_high": threshold.get("precision_high"),
        "holdout_rows": threshold.get("support"), "threshold_chosen_on": threshold.get("chosen_on"),
        "published_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
    }], schema=HS_SCORING_RUNS.arrow_schema)
    # nothing gathers the catalog in the driver: Spark tasks COPY the predictions into a
    # staging table in parallel (PostgreSQL), or the driver streams the staged files in
    # bounded batches; then ONE transaction swaps the date in
    day = parse_ds(args.ds)
    method = settings.warehouse.publish_method(settings.warehouse_url)
    with warehouse_from_settings(settings) as wh:
        wh.ensure_schema()
        rows = (stage_in_parallel(predictions, HS_PREDICTIONS, day, wh, settings.warehouse_url,
                                  settings.warehouse.jdbc_partitions) if method == "spark"
                else partition_dataset(catalog.predictions, day))
        written = wh.replace_partitions(day, {
            HS_PREDICTIONS: rows,
            HS_UNSCORABLE: partition_dataset(catalog.quarantine, day,
                                             pc.field("scope") == "catalog"),
            HS_SCORING_RUNS: run_row,
        })
    summary.update(published=True, written=written, published_with=method)
    write_summary(catalog, args.ds, "publish_predictions", summary)
    return summary


def parser() -> Any:
    p = job_parser(__doc__.splitlines()[0])
    p.add_argument("--validate-only", action="store_true",
                   help="run the gate and the accounting, publish nothing")
    return p


def main(argv: list[str] | None = None) -> int:
    return run_job(run, parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
