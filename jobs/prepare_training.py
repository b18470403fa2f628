"""Prepare job: clean training set ``ds`` -> grouped stratified split, up-sampled train.

    spark-submit jobs/prepare_training.py --ds 2026-11-01

Writes ``training/prepared/ds=D/split=train|test`` and, under the run's reports,
``prepare_training.json`` (codes excluded for too few rows, split sizes) and
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
        grouped_stratified_split,
        upsample,
    )

    t = settings.training
    catalog = Catalog.from_settings(settings)
    spark = build_spark(settings, resolve_master(args.master, settings), "hscode-prepare")
    # extract
    training = read_partition(spark, catalog.training_set, args.ds).cache()
    # transform
    kept, excluded = filter_min_rows(training, t.min_rows_per_code)
    split = grouped_stratified_split(kept, t.test_size, t.seed).cache()
    train, test = split.where("split = 'train'"), split.where("split = 'test'")
    # SMOTE works on vectorised features at fit time (baseline); here only duplication
    threshold = t.upsample_threshold if t.upsample_method == "duplicate" else 0.0
    train_up = upsample(train, t.seed, threshold, t.upsample_target)
    rows_in, n_kept = training.count(), kept.count()
    excluded_codes = {r["hs6"]: r["rows"] for r in excluded.collect()}
    n_excluded = sum(excluded_codes.values())
    n_train, n_test = train.count(), test.count()
    if rows_in != n_kept + n_excluded or n_kept != n_train + n_test:
        raise AccountingError(f"training={rows_in} kept={n_kept} excluded={n_excluded} "
                              f"train={n_train} test={n_test}")
    leaked = train.select("text").intersect(test.select("text")).count()
    if leaked:
        raise AccountingError(f"{leaked} texts appear in both train and test")
    # load
    out = catalog.partition(catalog.prepared, args.ds)
    prepared = train_up.unionByName(test.withColumn("copy", F.lit(0)))
    (prepared.select("product_id", "text", "hs6", "assurance_level", "copy", "split")
     .repartition(1, "split").sortWithinPartitions("hs6", "product_id", "copy")
     .write.mode("overwrite").partitionBy("split").parquet(str(out)))
    counts = class_counts(train, train_up).toPandas()
    report = catalog.run_dir(args.ds)
    report.mkdir(parents=True, exist_ok=True)
    counts.to_csv(report / "class_counts.csv", index=False)
    summary = {
        "ds": args.ds, "training_rows": rows_in, "codes_kept": int(len(counts)),
        "codes_excluded": len(excluded_codes), "rows_excluded": n_excluded,
        "excluded_codes": excluded_codes,
        "train_rows": n_train, "test_rows": n_test,
        "train_rows_upsampled": int(counts["rows_after"].sum()),
        "codes_upsampled": int((counts["rows_after"] > counts["rows_before"]).sum()),
        "prepared": str(out),
    }
    write_summary(catalog, args.ds, "prepare_training", summary)
    return {k: v for k, v in summary.items() if k != "excluded_codes"}


def main(argv: list[str] | None = None) -> int:
    return run_job(run, job_parser(__doc__.splitlines()[0]), argv)


if __name__ == "__main__":
    sys.exit(main())
