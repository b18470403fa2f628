"""Prepare job: labelled catalog ``ds`` -> train / calibration / test, up-sampled train.

    spark-submit jobs/prepare_training.py --ds 2026-11-01

The calibration and test splits are drawn from every catalog row with a valid code (any
assurance level, grouped by text, stratified by code), so the figures measured on them
describe the catalog that is scored. The train split keeps only rows of the clean training
set (trusted assurance levels: all by default) of codes with ``min_rows_per_code`` rows,
up-sampled, each row weighted by its assurance level (``training.assurance_weights``).
Reviewers' decisions (``hs_code_reviews``) are the most trusted labels: a reviewed product
trains with the reviewed code, weighed ``training.reviewed_weight``
(:mod:`hscode.training.reviewed`).

Writes ``training/prepared/ds=D/split=train|calibration|test`` and, under the run's
reports, ``prepare_training.json`` (codes excluded for too few rows, split sizes) and
``class_counts.csv`` (rows per code before/after up-sampling).
"""

from __future__ import annotations

import sys
from argparse import Namespace
from typing import Any

from hscode.catalog import Catalog
from hscode.config import Settings
from hscode.jobrun import AccountingError, job_parser, resolve_master, run_job, write_summary


def run(args: Namespace, settings: Settings) -> dict[str, Any]:
    from pyspark.sql import functions as F

    from hscode.extract import read_partition
    from hscode.spark import build_spark
    from hscode.training.prepare import (
        class_counts,
        filter_min_rows,
        three_way_split,
        upsample,
        with_assurance_weight,
    )
    from hscode.training.reviewed import (
        DECISIONS_SCHEMA,
        REVIEWED_LEVEL,
        apply_decisions,
        decisions_for,
    )
    from hscode.warehouse import warehouse_from_settings
    from hscode.warehouse.reviews import read_reviews

    t = settings.training
    catalog = Catalog.from_settings(settings)
    spark = build_spark(settings, resolve_master(args.master, settings), "hscode-prepare")
    # extract: every catalog row with a valid code or a reviewer's, which of them training
    # may use (the clean training set, and every reviewed row)
    with warehouse_from_settings(settings) as wh:
        reviews = spark.createDataFrame(read_reviews(wh).to_pandas(), schema=DECISIONS_SCHEMA)
    # a decision counts for the product as it is in this date's snapshot (none: no reviews)
    decisions = decisions_for(read_partition(spark, catalog.raw_products, args.ds), reviews,
                              args.ds) if not reviews.isEmpty() else reviews.select(
        "product_id", "decision", "decided_hs6")
    labelled = apply_decisions(read_partition(spark, catalog.scoring_set, args.ds),
                               decisions).cache()
    trainable = read_partition(spark, catalog.training_set, args.ds).select("product_id") \
        .unionByName(labelled.where("reviewed").select("product_id")).distinct()
    # transform: held-out splits drawn like the catalog; train narrowed to trusted rows of
    # codes with enough of them
    split = three_way_split(labelled, t.test_size, t.calibration_size, t.seed).cache()
    pool = split.where("split = 'train'")
    trusted = pool.join(trainable, "product_id", "left_semi")
    train, excluded = filter_min_rows(trusted, t.min_rows_per_code)
    train = train.cache()  # counted, up-sampled and compared: computed once
    held_out = split.where("split != 'train'")
    # SMOTE works on vectorised features at fit time (baseline); here duplication or weights
    threshold = t.upsample_threshold if t.upsample_method != "smote" else 0.0
    by = "weight" if t.upsample_method == "weight" else "duplicate"
    train_up = with_assurance_weight(
        upsample(train.drop("split"), t.seed, threshold, t.upsample_target, by=by),
        {**t.assurance_weights, REVIEWED_LEVEL: t.reviewed_weight})
    rows_in, n_pool = labelled.count(), pool.count()
    n_trusted, n_train = trusted.count(), train.count()
    sizes = {r["split"]: r["count"] for r in held_out.groupBy("split").count().collect()}
    excluded_codes = {r["hs6"]: r["rows"] for r in excluded.collect()}
    n_rare = sum(excluded_codes.values())
    if (rows_in != n_pool + sum(sizes.values()) or n_trusted != n_train + n_rare):
        raise AccountingError(f"labelled={rows_in} pool={n_pool} held_out={sizes} "
                              f"trusted={n_trusted} train={n_train} rare={n_rare}")
    leaked = pool.select("text").intersect(held_out.select("text")).count()
    if leaked:
        raise AccountingError(f"{leaked} texts appear in the train pool and a held-out split")
    # load
    out = catalog.partition(catalog.prepared, args.ds)
    prepared = train_up.withColumn("split", F.lit("train")).unionByName(
        held_out.withColumn("copy", F.lit(0)).withColumn("weight", F.lit(1.0)))
    (prepared.select("product_id", "text", "hs6", "assurance_level", "conflicting_code",
                     "reviewed", "weight", "copy", "split")
     .repartition(1, "split").sortWithinPartitions("hs6", "product_id", "copy")
     .write.mode("overwrite").partitionBy("split").parquet(str(out)))
    # the reports from the written files, not from the lineage again
    spark.catalog.refreshByPath(str(out))
    written = spark.read.parquet(str(out))
    counts = class_counts(train, written.where("split = 'train'")).toPandas()
    reviewed = {r["split"]: r["count"] for r in written.where("reviewed AND copy = 0")
                .groupBy("split").count().collect()}
    report = catalog.run_dir(args.ds)
    report.mkdir(parents=True, exist_ok=True)
    counts.to_csv(report / "class_counts.csv", index=False)
    summary = {
        "ds": args.ds, "labelled_rows": rows_in, "train_pool_rows": n_pool,
        "untrusted_rows": n_pool - n_trusted, "codes_kept": int(len(counts)),
        "codes_excluded": len(excluded_codes), "rows_excluded": n_rare,
        "excluded_codes": excluded_codes, "train_rows": n_train,
        "calibration_rows": sizes.get("calibration", 0), "test_rows": sizes.get("test", 0),
        "train_rows_upsampled": int(counts["rows_after"].sum()),
        "codes_upsampled": int((counts["rows_after"] > counts["rows_before"]).sum()),
        "prepared": str(out),
        # reviewers' labels used, per split (each product once)
        "reviewed_rows": {k: int(reviewed.get(k, 0)) for k in ("train", "calibration", "test")},
    }
    write_summary(catalog, args.ds, "prepare_training", summary)
    return {k: v for k, v in summary.items() if k != "excluded_codes"}


def main(argv: list[str] | None = None) -> int:
    return run_job(run, job_parser(__doc__.splitlines()[0]), argv)


if __name__ == "__main__":
    sys.exit(main())
