"""Score job: cleaned scoring set ``ds`` -> predictions partition (staged, gated, not yet
published).

    spark-submit jobs/score_catalog.py --ds 2026-11-01 [--model-version N] [--master M]

The model is the registry's champion unless a version is pinned (backfills); it is loaded
once per executor and fed Arrow batches. The review threshold comes from the model's
hold-out (``scoring.review_precision``) unless ``scoring.review_threshold`` fixes it. The
written partition is validated by the ``predictions`` suite (the gate records the files'
fingerprint, so ``publish_predictions`` publishes them without validating them again).
"""

from __future__ import annotations

import sys
from argparse import Namespace
from dataclasses import asdict
from typing import Any

from hscode.catalog import Catalog
from hscode.config import Settings
from hscode.jobrun import (
    AccountingError,
    job_parser,
    nightly_spark,
    optional_int,
    run_job,
    write_summary,
)


def run(args: Namespace, settings: Settings) -> dict[str, Any]:
    from hscode.extract import read_partition, write_partition
    from hscode.files import fingerprint
    from hscode.quality import gate_engine, gate_predictions, import_gx_in_background
    from hscode.scoring.model_ref import resolve_model
    from hscode.scoring.reference import load_reference, review_threshold
    from hscode.scoring.score import ScoringSpec, score_catalog
    from hscode.warehouse import hs6_codes, warehouse_from_settings

    cfg = settings.scoring
    catalog = Catalog.from_settings(settings)
    model = resolve_model(catalog, args.model_version if args.model_version is not None
                          else cfg.model_version)
    threshold = review_threshold(load_reference(model.path), cfg.review_precision,
                                 cfg.review_threshold)
    with warehouse_from_settings(settings) as wh:
        hs6 = tuple(hs6_codes(wh))
    spark = nightly_spark(args, settings, "hscode-score")
    import_gx_in_background()  # overlaps the Spark work before the gate
    # extract
    scoring = read_partition(spark, catalog.scoring_set, args.ds)
    # transform
    spec = ScoringSpec(artifact=str(model.path), model_name=model.name,
                       model_version=model.version, allowed_codes=hs6,
                       review_threshold=threshold.value, low_confidence=cfg.low_confidence,
                       batch_rows=cfg.batch_rows)
    partitions = spark.sparkContext.defaultParallelism * cfg.partitions_per_core
    predictions = score_catalog(scoring, spec, partitions)
    # load (staged Parquet, gated here; publish_predictions writes the warehouse)
    write_partition(predictions, catalog.predictions)
    written = read_partition(spark, catalog.predictions, args.ds)
    rows_in, rows_out = scoring.count(), written.count()
    if rows_in != rows_out:
        raise AccountingError(f"scoring set {rows_in} rows, predictions {rows_out}")
    gated = gate_predictions(written, hs6, catalog.suite_file("predictions"),
                             catalog.run_dir(args.ds), rows_in, settings.quality.data_docs,
                             fingerprint(catalog.partition(catalog.predictions, args.ds)),
                             gate_engine(settings.quality, rows_out))
    summary = {"ds": args.ds, "scoring_rows": rows_in, "predicted_rows": rows_out,
               "model": {"name": model.name, "version": model.version, "source": model.source,
                         "artifact": str(model.path)},
               "review_threshold": asdict(threshold), "partitions": partitions,
               "output": str(catalog.partition(catalog.predictions, args.ds)),
               "data_docs": gated.docs_link}
    write_summary(catalog, args.ds, "score_catalog", summary)
    return summary


def parser() -> Any:
    p = job_parser(__doc__.splitlines()[0])
    p.add_argument("--model-version", type=optional_int, default=None,
                   help="registry version to score with (default or empty: the champion)")
    return p


def main(argv: list[str] | None = None) -> int:
    return run_job(run, parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
