"""Clean job: raw snapshot ``ds`` -> scoring set, training set and quarantine partitions.

    spark-submit jobs/clean_products.py --ds 2026-11-01 [--master local[*]] [--config F]

Both outputs are gated (``clean_scoring``, ``clean_training`` suites) and the rows are
accounted for (raw = scoring + quarantine[catalog]; scoring = training +
quarantine[training]) before anything is written.
"""

from __future__ import annotations

import sys
from argparse import Namespace
from typing import Any

from hscode.catalog import Catalog
from hscode.config import Settings
from hscode.jobrun import job_parser, nightly_spark, run_job, write_summary


def run(args: Namespace, settings: Settings) -> dict[str, Any]:
    from hscode.clean import account, clean_products, default_stop_words
    from hscode.extract import read_partition, write_partition
    from hscode.quality import gate, gate_engine, import_gx_in_background, with_unknown_codes
    from hscode.spark import codes_frame
    from hscode.warehouse import hs6_codes, warehouse_from_settings

    catalog = Catalog.from_settings(settings)
    spark = nightly_spark(args, settings, "hscode-clean")
    import_gx_in_background()  # overlaps the Spark work before the gate
    # extract
    raw = read_partition(spark, catalog.raw_products, args.ds)
    with warehouse_from_settings(settings) as wh:
        hs6 = hs6_codes(wh)
    codes = codes_frame(spark, hs6)
    # transform
    out = clean_products(raw, codes, settings.cleaning, settings.training.trusted_levels_list,
                         default_stop_words())
    out.marked.cache()  # the text rules and the de-duplicating window run once per row
    scoring, training, quarantine = (out.scoring.cache(), out.training.cache(),
                                     out.quarantine.cache())
    counts = {(r["scope"], r["reason"]): r["count"]
              for r in quarantine.groupBy("scope", "reason").count().collect()}
    summary = account(raw.count(), scoring.count(), training.count(), counts)
    # validate
    report = catalog.run_dir(args.ds)
    docs = gate(scoring, catalog.suite_file("clean_scoring"), report,
                {"min_rows": settings.quality.min_rows,
                 "max_text_chars": settings.cleaning.max_text_chars},
                settings.quality.data_docs,
                engine=gate_engine(settings.quality, summary["scoring"])).docs_link
    gate(with_unknown_codes(training, codes, ["hs6"]), catalog.suite_file("clean_training"),
         report, {"min_rows": settings.quality.min_rows,
                  "trusted_levels": settings.training.trusted_levels_list},
         settings.quality.data_docs, engine=gate_engine(settings.quality, summary["training"]))
    # load
    write_partition(scoring, catalog.scoring_set)
    write_partition(training, catalog.training_set)
    write_partition(quarantine, catalog.quarantine)
    summary.update(ds=args.ds, data_docs=docs,
                   outputs={n: str(catalog.partition(p, args.ds)) for n, p in (
                       ("scoring", catalog.scoring_set), ("training", catalog.training_set),
                       ("quarantine", catalog.quarantine))})
    write_summary(catalog, args.ds, "clean_products", summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    return run_job(run, job_parser(__doc__.splitlines()[0]), argv)


if __name__ == "__main__":
    sys.exit(main())
