"""Cleaning the raw product snapshot: pure ``DataFrame -> DataFrame`` transforms.

The model text is built from short + medium description (+ ETIM class) and normalised:

1. lower-cased; ``_x000D_`` markers, control and format characters become spaces;
2. a decimal comma between digits becomes a point (``1,5`` -> ``1.5``);
3. symbols become spaces (letters, digits and decimal points stay), so ``[500ML]`` ->
   ``500ml`` and ``6PCS/BOX`` -> ``6pcs box``;
4. a number followed by a unit word is glued to it (``500 ml`` -> ``500ml``, ``12 v`` ->
   ``12v``), see :data:`UNITS`;
5. tokens are dropped when they are stop words (Spark's English list plus packaging words,
   :data:`DOMAIN_STOP_WORDS`), pure numbers (quantities, part numbers: ``70``, ``3704617``),
   packaging counts (``70ctns``, ``6pcs``: :data:`PACKAGING_COUNT`) or single characters. **Numbers that carry meaning survive as a token that mixes digits
   and letters** (``12v``, ``500ml``, ``16cm``, ``1.5l``).

Rows are then split (see :func:`clean_products`): the **scoring set** holds every usable
product; the **training set** those whose code is a valid HS 2022 subheading and whose
assurance level is trusted. Every other row lands in the **quarantine** with a ``scope``
(``catalog``: not even scored; ``training``: scored, not trained on) and a ``reason``
(:data:`CATALOG_REASONS`, :data:`TRAINING_REASONS`), so that
``raw = scoring + quarantine[catalog]`` and ``scoring = training + quarantine[training]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hscode.codes import CODE_SEPARATORS, NATIONAL_CODE

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

    from hscode.config import CleaningSettings

UNITS = ("mm", "cm", "m", "km", "ml", "cl", "l", "ltr", "g", "kg", "mg", "t", "v", "kv", "w",
         "kw", "hp", "a", "mah", "ah", "hz", "khz", "mhz", "ghz", "mb", "gb", "tb", "inch", "ft",
         "oz", "lb", "lbs", "mm2", "m2", "m3")
PACKAGING_COUNT = (r"^\d+(pcs|pc|ctns?|cartons?|pkgs?|packages?|boxes|bxs?|bags?|bales?|rolls?"
                   r"|drums?|pallets?|plts?|units?|sets?|pairs?|prs|nos)$")
DOMAIN_STOP_WORDS = ("pcs", "pc", "ctn", "ctns", "pkg", "pkgs", "qty", "nos", "pack",
                     "packs", "new", "assorted", "various", "etc")
CATALOG_REASONS = ("missing_product_id", "duplicate_product_id", "text_too_long", "empty_text")
TRAINING_REASONS = ("invalid_code", "unknown_code", "bad_assurance", "untrusted_assurance",
                    "conflicting_code")
QUARANTINE_CONTROL_CHARS = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F]"  # C0 + DEL, not \t \n \r
QUARANTINE_COLUMNS = ("product_id", "ds", "scope", "reason", "hs_code", "assurance_level",
                      "raw_text")


@dataclass(frozen=True)
class CleanResult:
    """The three outputs of cleaning one snapshot, and ``marked``: every raw row with its
    model text and catalog reason (null when usable), which all three are derived from. A
    job that materialises several outputs caches ``marked`` first, so the de-duplicating
    window and the text rules run once per row, not once per output."""

    scoring: DataFrame
    training: DataFrame
    quarantine: DataFrame
    marked: DataFrame


def default_stop_words() -> list[str]:
    """Spark's English stop words plus packaging words (needs an active SparkSession)."""
    from pyspark.ml.feature import StopWordsRemover

    return sorted(set(StopWordsRemover.loadDefaultStopWords("english")) | set(DOMAIN_STOP_WORDS))


def build_raw_text(df: DataFrame) -> DataFrame:
    """Add ``raw_text``: short + medium description + ETIM class, space-joined, nulls skipped."""
    from pyspark.sql import functions as F

    return df.withColumn(
        "raw_text", F.concat_ws(" ", "short_description", "medium_description", "etim_class")
    )


def normalise_text(col: Column, stop_words: Sequence[str]) -> Column:
    """The model text of ``col`` (rules in the module docstring); ``""`` when nothing is left."""
    from pyspark.sql import functions as F

    t = F.lower(col)
    t = F.regexp_replace(t, "_x000d_", " ")
    t = F.regexp_replace(t, r"[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]", " ")
    t = F.regexp_replace(t, r"(\d),(\d)", "$1.$2")
    t = F.regexp_replace(t, r"[^\p{L}\p{N}.\s]", " ")
    t = F.regexp_replace(t, r"(?<!\d)\.|\.(?!\d)", " ")
    t = F.regexp_replace(t, r"(\d)\s+(" + "|".join(UNITS) + r")(?=\s|$)", "$1$2")
    tokens = F.split(F.trim(F.regexp_replace(t, r"\s+", " ")), " ")
    stop = sorted(set(stop_words))  # isin: Spark's hash set (InSet), not a scan of ~200 words
    kept = F.filter(
        tokens,
        lambda x: (F.length(x) > 1) & ~x.rlike(r"^[\d.]+$") & ~x.rlike(PACKAGING_COUNT)
        & ~x.isin(*stop),
    )
    return F.coalesce(F.array_join(kept, " "), F.lit(""))


def normalise_hs6(col: Column) -> Column:
    """HS6 of a national code (6/8/10 digits, spaces and dots ignored), else null."""
    from pyspark.sql import functions as F

    digits = F.regexp_replace(F.coalesce(col, F.lit("")), CODE_SEPARATORS, "")
    return F.when(digits.rlike(f"^({NATIONAL_CODE})$"), F.substring(digits, 1, 6))


def mark_duplicates(df: DataFrame) -> DataFrame:
    """Add ``dup_rank``: 1 for the row kept per product id (latest ``updated_at``, then a
    content hash as a deterministic tie-break), > 1 for later copies."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    content = F.xxhash64(*[F.coalesce(F.col(c).cast("string"), F.lit("\0")) for c in
                           ("short_description", "medium_description", "etim_class",
                            "hs_code", "assurance_level", "region")])
    w = Window.partitionBy("product_id").orderBy(F.col("updated_at").desc_nulls_last(),
                                                 content)
    return df.withColumn("dup_rank", F.row_number().over(w))


def flag_conflicting_codes(df: DataFrame) -> DataFrame:
    """Add ``conflicting_code``: the same model text appears with more than one valid HS6."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    w = Window.partitionBy("text")
    n = F.size(F.collect_set(F.when(F.col("code_status") == "valid", F.col("hs6"))).over(w))
    return df.withColumn("conflicting_code", n > 1)


def _quarantine(df: DataFrame, scope: str) -> DataFrame:
    from pyspark.sql import functions as F

    # The first 1,000 characters for people to read; control characters (NUL cannot even be
    # stored in PostgreSQL text) shown as U+FFFD.
    shown = F.regexp_replace(F.substring("raw_text", 1, 1000), QUARANTINE_CONTROL_CHARS, "\ufffd")
    return df.select(
        "product_id", "ds", F.lit(scope).alias("scope"), "reason", "hs_code",
        "assurance_level", shown.alias("raw_text"),
    )


def clean_products(
    raw: DataFrame,
    hs6_codes: DataFrame,
    cfg: CleaningSettings,
    trusted_levels: Sequence[int],
    stop_words: Sequence[str],
) -> CleanResult:
    """Clean one raw snapshot into scoring set, training set and quarantine.

    Args:
        raw: Rows of ``product_master`` plus ``ds``.
        hs6_codes: One column ``code``: the valid HS6 subheadings (from ``hs_nomenclature``).
        cfg: Cleaning settings (maximum text length, minimum tokens, conflict policy).
        trusted_levels: Assurance levels trusted for training (the paper: 3 and 4).
        stop_words: Tokens removed from the text.
    """
    from pyspark.sql import functions as F

    df = mark_duplicates(build_raw_text(raw))
    df = df.withColumn("text", normalise_text(F.col("raw_text"), stop_words))
    df = df.withColumn("n_tokens", F.when(F.col("text") == "", 0)
                       .otherwise(F.size(F.split("text", " "))))
    catalog_reason = (
        F.when(F.col("product_id").isNull() | (F.trim("product_id") == ""), "missing_product_id")
        .when(F.col("dup_rank") > 1, "duplicate_product_id")
        .when(F.length("raw_text") > cfg.max_text_chars, "text_too_long")
        .when(F.col("n_tokens") < cfg.min_tokens, "empty_text")
    )
    df = df.withColumn("reason", catalog_reason)
    usable = df.where(F.col("reason").isNull()).drop("reason")

    codes = hs6_codes.select(F.col("code").alias("hs6"), F.lit(True).alias("_known"))
    scoring = usable.withColumn("hs6", normalise_hs6(F.col("hs_code")))
    scoring = scoring.join(F.broadcast(codes), "hs6", "left").withColumn(
        "code_status",
        F.when(F.col("hs6").isNull(), "invalid_code")
        .when(F.col("_known").isNull(), "unknown_code")
        .otherwise("valid"),
    )
    scoring = flag_conflicting_codes(scoring).select(
        "product_id", "ds", "text", "raw_text", "hs_code", "hs6", "code_status",
        "assurance_level", "region", "conflicting_code", "n_tokens",
        F.length("text").alias("text_length"), "updated_at",
    )
    training_reason = (
        F.when(F.col("code_status") != "valid", F.col("code_status"))
        .when(~F.col("assurance_level").isin(1, 2, 3, 4) | F.col("assurance_level").isNull(),
              "bad_assurance")
        .when(~F.col("assurance_level").isin(*trusted_levels), "untrusted_assurance")
    )
    if cfg.drop_conflicting_from_training:
        training_reason = training_reason.when(F.col("conflicting_code"), "conflicting_code")
    judged = scoring.withColumn("reason", training_reason)
    training = judged.where(F.col("reason").isNull()).select(
        "product_id", "ds", "text", "hs6", "assurance_level", "region", "conflicting_code",
    )
    quarantine = _quarantine(df.where(F.col("reason").isNotNull()), "catalog").unionByName(
        _quarantine(judged.where(F.col("reason").isNotNull()), "training")
    )
    return CleanResult(scoring=scoring, training=training, quarantine=quarantine, marked=df)


def account(raw_rows: int, scoring_rows: int, training_rows: int,
            quarantined: dict[tuple[str, str], int]) -> dict[str, object]:
    """Check that no row was lost and return the per-reason counts.

    Args:
        raw_rows: Rows in the raw snapshot.
        scoring_rows: Rows in the scoring set.
        training_rows: Rows in the training set.
        quarantined: Rows per ``(scope, reason)``.

    Raises:
        AccountingError: when ``raw != scoring + quarantine[catalog]`` or
            ``scoring != training + quarantine[training]``.
    """
    from hscode.jobrun import AccountingError

    q_catalog = sum(n for (scope, _), n in quarantined.items() if scope == "catalog")
    q_training = sum(n for (scope, _), n in quarantined.items() if scope == "training")
    if raw_rows != scoring_rows + q_catalog or scoring_rows != training_rows + q_training:
        raise AccountingError(
            f"raw={raw_rows} scoring={scoring_rows} training={training_rows} "
            f"quarantine[catalog]={q_catalog} quarantine[training]={q_training}")
    return {
        "raw": raw_rows, "scoring": scoring_rows, "training": training_rows,
        "quarantine": {f"{scope}/{reason}": n for (scope, reason), n in sorted(quarantined.items())},
    }
