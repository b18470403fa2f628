"""Drift job: predicted codes and confidence of ``ds`` vs. the model's training data.

    spark-submit jobs/check_drift.py --ds 2026-11-01

Writes the ``hs_drift`` partition of the date and ``runs/ds=D/drift.json``; when a metric
is above its threshold the run is marked ``retrain_recommended`` (the retraining DAG reads
it). A breach does not fail the job: the predictions are still valid, only aging.
"""

from __future__ import annotations

import sys
from argparse import Namespace
from pathlib import Path
from typing import Any

from hscode.catalog import Catalog, parse_ds
from hscode.config import Settings
from hscode.jobrun import job_parser, nightly_spark, read_summary, run_job, write_summary


def run(args: Namespace, settings: Settings) -> dict[str, Any]:
    import pyarrow as pa
    from pyspark.sql import functions as F

    from hscode.extract import read_partition
    from hscode.scoring.drift import drift_metrics
    from hscode.scoring.reference import CONFIDENCE_BINS, load_reference
    from hscode.warehouse import warehouse_from_settings
    from hscode.warehouse.schema import HS_DRIFT

    catalog = Catalog.from_settings(settings)
    model = read_summary(catalog, args.ds, "score_catalog")["model"]
    reference = load_reference(Path(model["artifact"]))
    spark = nightly_spark(args, settings, "hscode-drift")
    # extract + transform (aggregates only reach the driver)
    predictions = read_partition(spark, catalog.predictions, args.ds)
    codes = {r["predicted_hs6"]: r["count"]
             for r in predictions.groupBy("predicted_hs6").count().collect()}
    bins = len(CONFIDENCE_BINS) - 1
    binned = {r["bin"]: r["count"] for r in predictions.groupBy(
        F.least(F.floor(F.col("probability") * bins), F.lit(bins - 1)).cast("int").alias("bin")
    ).count().collect()}
    hist = [float(binned.get(i, 0)) for i in range(bins)]
    rows = drift_metrics(codes, hist, reference, settings.drift)
    breached = [r["metric"] for r in rows if r["breached"]]
    # load
    table = pa.Table.from_pylist([{"ds": parse_ds(args.ds), **r,
                                   "model_version": model["version"]} for r in rows],
                                 schema=HS_DRIFT.arrow_schema)
    with warehouse_from_settings(settings) as wh:
        wh.ensure_schema()
        wh.replace_partition(HS_DRIFT, parse_ds(args.ds), table)
    summary = {"ds": args.ds, "model": model, "metrics": rows, "breached": breached,
               "retrain_recommended": bool(breached)}
    write_summary(catalog, args.ds, "drift", summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    return run_job(run, job_parser(__doc__.splitlines()[0]), argv)


if __name__ == "__main__":
    sys.exit(main())
