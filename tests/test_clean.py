"""Cleaning transforms on small DataFrames, compared with assertDataFrameEqual."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from hscode.clean import (
    account,
    build_raw_text,
    clean_products,
    default_stop_words,
    flag_conflicting_codes,
    mark_duplicates,
    normalise_hs6,
    normalise_text,
)
from hscode.config import CleaningSettings
from hscode.jobrun import AccountingError

T0 = dt.datetime(2026, 1, 1)
DS = dt.date(2026, 11, 1)


@pytest.fixture(scope="module")
def stop_words(spark) -> list[str]:
    return default_stop_words()


@pytest.mark.integration
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("70CTNS X 120  PCS PLASTIC WATER BOTTLES[500ML]", "plastic water bottles 500ml"),
        ("5BOXES COOKING OIL (6PCS/BOX X 1LITRE)", "cooking oil box 1litre"),
        ("BATTERY 12 V 7,5 AH_x000D_\nFOR UPS", "battery 12v 7.5ah ups"),
        ("CABLE AS        3704617", "cable"),
        ("1.5 L BOTTLE. SIZE 3.5", "1.5l bottle size"),
        ("USED\tCRT\x0b14\u201d TV\u200b SONY", "used crt tv sony"),
        ("emoji \U0001f680 caf\u00e9 \u0414\u0415\u0422\u0410\u041b\u042c", "emoji caf\u00e9 \u0434\u0435\u0442\u0430\u043b\u044c"),
        ("'; DROP TABLE product_master; --", "drop table product master"),
        ("The and of", ""),
        (None, ""),
    ],
)
def test_normalise_text(spark, stop_words, raw, expected) -> None:
    df = spark.createDataFrame([(raw,)], "t string")
    assertDataFrameEqual(df.select(normalise_text(F.col("t"), stop_words).alias("t")),
                         spark.createDataFrame([(expected,)], "t string"))


@pytest.mark.integration
def test_normalise_hs6(spark) -> None:
    df = spark.createDataFrame(
        [("3924100000",), ("3924.10.00",), ("392410",), ("39241",), ("39A4100000",), (None,),
         ("39241000000",)], "c string")
    assertDataFrameEqual(
        df.select(normalise_hs6(F.col("c")).alias("c")),
        spark.createDataFrame([("392410",), ("392410",), ("392410",), (None,), (None,), (None,),
                               (None,)], "c string"))


@pytest.mark.integration
def test_build_raw_text_skips_nulls(spark) -> None:
    df = spark.createDataFrame([("a", "b", None), ("a", None, "EC001")],
                               "short_description string, medium_description string, "
                               "etim_class string")
    assertDataFrameEqual(build_raw_text(df).select("raw_text"),
                         spark.createDataFrame([("a b",), ("a EC001",)], "raw_text string"))


def _pm(spark, rows):
    """product_master rows (id, short, code, level[, updated_at]) plus ds."""
    full = [(r[0], r[1], None, None, "EU", r[2], r[3], r[4] if len(r) > 4 else T0, DS)
            for r in rows]
    schema = ("product_id string, short_description string, medium_description string, "
              "etim_class string, region string, hs_code string, assurance_level int, "
              "updated_at timestamp, ds date")
    return spark.createDataFrame(full, schema)


@pytest.mark.integration
def test_mark_duplicates_keeps_latest(spark) -> None:
    df = _pm(spark, [("A", "old", "392410", 4, T0), ("A", "new", "392410", 4,
                                                      T0 + dt.timedelta(days=1)),
                     ("B", "x", "392410", 4)])
    got = mark_duplicates(df).select("product_id", "short_description", "dup_rank")
    assertDataFrameEqual(got, spark.createDataFrame(
        [("A", "new", 1), ("A", "old", 2), ("B", "x", 1)],
        "product_id string, short_description string, dup_rank int"))


@pytest.mark.integration
def test_flag_conflicting_codes_counts_only_valid_codes(spark) -> None:
    df = spark.createDataFrame(
        [("chair", "940161", "valid"), ("chair", "940171", "valid"), ("lamp", "940510", "valid"),
         ("lamp", None, "invalid_code"), ("lamp", "999999", "unknown_code")],
        "text string, hs6 string, code_status string")
    got = flag_conflicting_codes(df).select("text", "hs6", "conflicting_code")
    assertDataFrameEqual(got, spark.createDataFrame(
        [("chair", "940161", True), ("chair", "940171", True), ("lamp", "940510", False),
         ("lamp", None, False), ("lamp", "999999", False)],
        "text string, hs6 string, conflicting_code boolean"))


@pytest.mark.integration
def test_clean_products_splits_and_accounts_per_reason(spark, stop_words) -> None:
    raw = _pm(spark, [
        ("P1", "PLASTIC PLATES", "3924100000", 4),
        ("P2", "PLASTIC CUPS", "3924100000", 3),
        ("P3", "USED CHAIR", "940161", 2),           # scored, untrusted
        ("P4", "WOODEN TABLE", "39241", 4),           # invalid code
        ("P5", "STEEL SPOON", "999999", 4),           # not in the nomenclature
        ("P6", "COTTON SHIRT", "610510", None),       # bad assurance
        ("P7", "   ", "392410", 4),                   # empty text
        ("P8", "X" * 60, "392410", 4),                # too long (max 50 below)
        ("P1", "PLASTIC PLATES OLD", "392410", 4),    # duplicate id (older? same time)
        (None, "NO ID", "392410", 4),                 # missing id
        ("P9", "LEATHER BAG", "420221", 5),           # bad assurance level 5
    ])
    codes = spark.createDataFrame([("392410",), ("940161",), ("610510",), ("420221",)], "code string")
    cfg = CleaningSettings(max_text_chars=50)
    out = clean_products(raw, codes, cfg, [3, 4], stop_words)
    q = {(r["product_id"], r["scope"], r["reason"]) for r in out.quarantine.collect()}
    assert q == {
        ("P1", "catalog", "duplicate_product_id"), ("P7", "catalog", "empty_text"),
        ("P8", "catalog", "text_too_long"), (None, "catalog", "missing_product_id"),
        ("P3", "training", "untrusted_assurance"), ("P4", "training", "invalid_code"),
        ("P5", "training", "unknown_code"), ("P6", "training", "bad_assurance"),
        ("P9", "training", "bad_assurance"),
    }
    assertDataFrameEqual(
        out.training.select("product_id", "text", "hs6"),
        spark.createDataFrame([("P1", "plastic plates", "392410"), ("P2", "plastic cups", "392410")],
                              "product_id string, text string, hs6 string"))
    scoring_ids = sorted(r[0] for r in out.scoring.select("product_id").collect())
    assert scoring_ids == ["P1", "P2", "P3", "P4", "P5", "P6", "P9"]
    counts = {(r["scope"], r["reason"]): r["count"]
              for r in out.quarantine.groupBy("scope", "reason").count().collect()}
    summary = account(raw.count(), out.scoring.count(), out.training.count(), counts)
    assert summary["raw"] == 11 and summary["quarantine"]["training/bad_assurance"] == 2


@pytest.mark.integration
def test_conflicting_descriptions_can_be_kept_out_of_training(spark, stop_words) -> None:
    raw = _pm(spark, [("A", "USED CHAIR", "940161", 4), ("B", "USED CHAIR", "940171", 4),
                      ("C", "LAMP", "940510", 4)])
    codes = spark.createDataFrame([("940161",), ("940171",), ("940510",)], "code string")
    keep = clean_products(raw, codes, CleaningSettings(), [3, 4], stop_words)
    assert keep.training.count() == 3 and keep.scoring.where("conflicting_code").count() == 2
    drop = clean_products(raw, codes, CleaningSettings(drop_conflicting_from_training=True),
                          [3, 4], stop_words)
    assert [r[0] for r in drop.training.select("product_id").collect()] == ["C"]
    assert drop.quarantine.where("reason = 'conflicting_code'").count() == 2


@pytest.mark.unit
def test_account_refuses_lost_rows() -> None:
    assert account(10, 8, 5, {("catalog", "empty_text"): 2, ("training", "invalid_code"): 3})
    with pytest.raises(AccountingError, match="raw=10 scoring=8"):
        account(10, 8, 5, {("catalog", "empty_text"): 1, ("training", "invalid_code"): 3})
    with pytest.raises(AccountingError):
        account(10, 8, 5, {("catalog", "empty_text"): 2})



@pytest.mark.integration
def test_unknown_codes_are_flagged_and_fail_the_training_gate(spark, tmp_path) -> None:
    from hscode.config import load_settings
    from hscode.quality import validate_dataframe, with_unknown_codes

    codes = spark.createDataFrame([("010121",), ("847130",), ("847130",)], "code string")
    rows = spark.createDataFrame(
        [("a", "847130", None), ("b", "999999", "010121"), ("c", None, "123456")],
        "product_id string, hs6 string, top2_hs6 string")
    got = with_unknown_codes(rows, codes, ["hs6", "top2_hs6"])
    assertDataFrameEqual(got, spark.createDataFrame(
        [("a", "847130", None, None, None), ("b", "999999", "010121", "999999", None),
         ("c", None, "123456", None, "123456")],
        "product_id string, hs6 string, top2_hs6 string, hs6_unknown string, "
        "top2_hs6_unknown string"))
    # the training gate names the column and the code that is not an HS 2022 subheading
    training = spark.createDataFrame(
        [("a", DS, "laptop", "847130", 4, "EU", False),
         ("b", DS, "mystery", "999999", 3, "EU", False)],
        "product_id string, ds date, text string, hs6 string, assurance_level int, "
        "region string, conflicting_code boolean")
    result = validate_dataframe(with_unknown_codes(training, codes, ["hs6"]),
                                load_settings().expectations_dir / "clean_training.json", tmp_path,
                                {"min_rows": 1, "trusted_levels": [3, 4]}, data_docs=False)
    assert not result.success
    assert len(result.failures) == 1 and "hs6_unknown" in result.failures[0]
    assert "999999" in result.failures[0]
