"""Training-set preparation: pure Spark transforms over the clean training set.

1. :func:`filter_min_rows` — codes with fewer than ``min_rows_per_code`` rows are excluded
   (they stay "manual review" codes) and reported.
2. :func:`three_way_split` — seeded, stratified train / calibration / test splits in which all
   rows sharing one model text fall on the same side, so an identical text is never on two.
   The splits are drawn from every labelled catalog row (any assurance level), so the
   calibration and test splits look like the catalog that is scored; only the train split is
   then narrowed to trusted rows of codes with enough rows.
3. :func:`upsample` — the paper's minority up-sampling: classes under ``threshold`` share of
   the training rows are duplicated by stratified sampling toward the mean or median class
   share. The test split is never up-sampled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def filter_min_rows(df: DataFrame, min_rows: int, label: str = "hs6"
                    ) -> tuple[DataFrame, DataFrame]:
    """Split ``df`` into rows of codes with >= ``min_rows`` rows and a per-code report of
    the excluded codes (``label``, ``rows``)."""
    from pyspark.sql import functions as F

    counts = df.groupBy(label).agg(F.count("*").alias("rows"))
    kept = df.join(counts.where(F.col("rows") >= min_rows).select(label), label, "left_semi")
    return kept, counts.where(F.col("rows") < min_rows).orderBy(label)


def grouped_stratified_split(df: DataFrame, test_size: float, seed: int,
                             label: str = "hs6", group: str = "text",
                             name: str = "test") -> DataFrame:
    """Add ``split`` (``train`` or ``name``).

    Each distinct ``group`` value gets the most frequent label among its rows as its stratum;
    within a stratum the groups are ordered by a seeded hash and the first ``n_test`` go to
    ``name``. ``n_test`` is ``test_size * n_groups`` rounded down or up at random (a seeded
    draw per stratum, up with probability equal to the fraction), so every stratum, however
    small, is sampled at ``test_size`` in expectation: the split has the catalog's mix of
    frequent and rare codes.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    groups = df.groupBy(group).agg(F.mode(label, True).alias("_stratum"))
    groups = groups.withColumn("_h", F.xxhash64(F.col(group), F.lit(seed)))
    w = Window.partitionBy("_stratum").orderBy("_h", group)
    expected = F.count("*").over(Window.partitionBy("_stratum")) * F.lit(test_size)
    u = (F.abs(F.xxhash64(F.col("_stratum"), F.lit(seed + 1))) % 1_000_003) / 1_000_003.0
    n_test = F.floor(expected) + (u < expected - F.floor(expected)).cast("int")
    groups = groups.withColumn("split", F.when(F.row_number().over(w) <= n_test, name)
                               .otherwise("train"))
    return df.join(groups.select(group, "split"), group, "left")


def three_way_split(df: DataFrame, test_size: float, calibration_size: float, seed: int,
                    label: str = "hs6", group: str = "text") -> DataFrame:
    """Add ``split``: ``test`` (``test_size`` of the rows), ``calibration``
    (``calibration_size``) and ``train``, each grouped by ``group`` and stratified by
    ``label`` (see :func:`grouped_stratified_split`).

    Raises:
        ValueError: when the two held-out shares leave nothing to train on.
    """
    from pyspark.sql import functions as F

    if test_size + calibration_size >= 1:
        raise ValueError(f"test_size {test_size} + calibration_size {calibration_size} >= 1")
    first = grouped_stratified_split(df, test_size, seed, label, group)
    if calibration_size <= 0:
        return first
    rest = first.where(F.col("split") == "train").drop("split")
    second = grouped_stratified_split(rest, calibration_size / (1 - test_size), seed + 7,
                                      label, group, name="calibration")
    return first.where(F.col("split") == "test").unionByName(second)


def with_assurance_weight(df: DataFrame, weights: dict[int, float],
                          level: str = "assurance_level") -> DataFrame:
    """Add ``weight``: the training weight of each row's assurance level (``weights``; a
    level not listed weighs 1), times its ``class_weight`` where :func:`upsample` weighted
    rather than duplicated (that column is then dropped)."""
    from itertools import chain

    from pyspark.sql import functions as F

    table = F.create_map(*chain.from_iterable(
        (F.lit(int(k)), F.lit(float(v))) for k, v in sorted(weights.items())))
    weight = F.coalesce(table[F.col(level)], F.lit(1.0))
    if "class_weight" in df.columns:
        return df.withColumn("weight", weight * F.col("class_weight")).drop("class_weight")
    return df.withColumn("weight", weight)


def target_share(shares: list[float], target: Literal["mean", "median"]) -> float:
    """The class share minorities are raised toward: mean or median of the class shares."""
    if not shares:
        return 0.0
    if target == "mean":
        return sum(shares) / len(shares)
    ordered = sorted(shares)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def minority_targets(counts: dict[str, int], threshold: float,
                     target: Literal["mean", "median"]) -> dict[str, int]:
    """Rows each minority class is raised to (classes under ``threshold`` share and below
    the target); other classes are absent from the result."""
    total = sum(counts.values())
    goal = target_share([n / total for n in counts.values()], target) * total
    return {c: int(round(goal)) for c, n in counts.items() if n / total < threshold and goal > n}


def upsample(df: DataFrame, seed: int, threshold: float = 0.01,
             target: Literal["mean", "median"] = "median", label: str = "hs6",
             key: str = "product_id", by: Literal["duplicate", "weight"] = "duplicate"
             ) -> DataFrame:
    """Raise minority classes toward the target class share, by duplicating rows or by
    weighting them.

    A class with ``n`` rows out of ``N`` is a minority when ``n / N < threshold``; it is
    raised to ``t = target_share * N`` rows (when ``t > n``) by keeping every row
    ``floor(t / n)`` times and a seeded stratified sample of ``frac(t / n)`` of its rows once
    more. Other classes are untouched. Adds ``copy`` (0 for the original row). With
    ``by="weight"`` every row is kept once and ``class_weight`` (``t / n``, else 1) says how
    much it counts in the loss instead.
    """
    from pyspark.sql import functions as F

    columns = df.columns
    total = df.count()
    counts = df.groupBy(label).agg(F.count("*").alias("_n"))
    shares = [r["_n"] / total for r in counts.collect()]
    if not shares:
        return df.withColumn("copy", F.lit(0))
    goal = F.lit(target_share(shares, target) * total)
    factor = F.when((F.col("_n") / total < threshold) & (goal > F.col("_n")),
                    goal / F.col("_n")).otherwise(F.lit(1.0))
    df = df.join(F.broadcast(counts), label).withColumn("_f", factor)
    if by == "weight":
        return df.select(*columns, F.lit(0).alias("copy"), F.col("_f").alias("class_weight"))
    whole = F.floor("_f").cast("int")
    # full copies: copy index 0..floor(f)-1; one more copy for a seeded fraction of the rows,
    # drawn from a hash of the row key so the result does not depend on partitioning
    u = (F.abs(F.xxhash64(F.col(key), F.lit(seed))) % 1_000_003) / 1_000_003.0
    extra = (u < (F.col("_f") - whole)).cast("int")
    df = df.withColumn("copy", F.explode(F.sequence(F.lit(0), whole + extra - 1)))
    return df.select(*columns, "copy")


def class_counts(before: DataFrame, after: DataFrame, label: str = "hs6") -> DataFrame:
    """Rows per code before and after up-sampling."""
    from pyspark.sql import functions as F

    b = before.groupBy(label).agg(F.count("*").alias("rows_before"))
    a = after.groupBy(label).agg(F.count("*").alias("rows_after"))
    return b.join(a, label, "outer").fillna(0).orderBy(label)
