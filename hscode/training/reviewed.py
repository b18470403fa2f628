"""Reviewers' decisions as training labels: the most trusted ones.

A product a reviewer decided (confirmed or corrected) trains with the reviewed code, above
assurance level 4 (:data:`REVIEWED_LEVEL`, weighed ``training.reviewed_weight``), even where
the catalog's own code is invalid or untrusted; a product judged not classifiable leaves the
labelled rows. A decision counts for run date D when it was made by the end of D and the
product in D's snapshot is as the reviewer saw it (same fingerprint), so a rerun of D sees
the same labels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

REVIEWED_LEVEL = 5
LABELLING = ("confirmed", "corrected")
DECISIONS_SCHEMA = ("review_id string, product_id string, decision string, decided_hs6 string,"
                    " decided_at timestamp, product_fingerprint string")


def fingerprint(short: Column, medium: Column, etim: Column, code: Column) -> Column:
    """Spark's twin of :func:`hscode.warehouse.schema.product_fingerprint` (same digest)."""
    from pyspark.sql import functions as F

    return F.md5(F.concat_ws("\x1f", *[F.coalesce(c, F.lit("")) for c in
                                        (short, medium, etim, code)]))


def decisions_for(raw: DataFrame, reviews: DataFrame, ds: str) -> DataFrame:
    """Per product of the snapshot ``raw``: the latest decision made by the end of ``ds``
    on the product as it is in ``raw`` (``product_id, decision, decided_hs6``)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    seen = raw.select("product_id", fingerprint(
        F.col("short_description"), F.col("medium_description"), F.col("etim_class"),
        F.col("hs_code")).alias("product_fingerprint"))
    made = reviews.where(F.col("decided_at") < F.date_add(F.to_date(F.lit(ds)), 1))
    latest = Window.partitionBy("product_id").orderBy(F.col("decided_at").desc(),
                                                      F.col("review_id").desc())
    return (made.join(seen, ["product_id", "product_fingerprint"], "left_semi")
            .withColumn("_n", F.row_number().over(latest)).where("_n = 1")
            .select("product_id", "decision", "decided_hs6"))


def apply_decisions(scoring: DataFrame, decisions: DataFrame) -> DataFrame:
    """The labelled rows of a clean scoring set with reviewers' decisions applied.

    Rows with a valid catalog code, or a reviewer's code, are kept (``hs6`` the reviewer's
    where there is one, ``assurance_level`` :data:`REVIEWED_LEVEL`, ``reviewed`` true);
    rows judged not classifiable are dropped. Columns: ``product_id, text, hs6,
    assurance_level, conflicting_code, reviewed``.
    """
    from pyspark.sql import functions as F

    joined = scoring.join(decisions, "product_id", "left")
    labels = F.col("decision").isin(*LABELLING)
    return (joined
            .where((labels | (F.col("code_status") == "valid"))
                   & ~F.coalesce(F.col("decision") == "not_classifiable", F.lit(False)))
            .select("product_id", "text",
                    F.when(labels, F.col("decided_hs6")).otherwise(F.col("hs6")).alias("hs6"),
                    F.when(labels, F.lit(REVIEWED_LEVEL))
                    .otherwise(F.col("assurance_level")).cast("int").alias("assurance_level"),
                    "conflicting_code",
                    F.coalesce(labels, F.lit(False)).alias("reviewed")))
