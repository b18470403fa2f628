"""The gates' two engines: the same suite gives the same verdict on the same rows whether GX
computes its metrics in Spark or on the frame collected to pandas, and each job takes the
engine its row count calls for."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from hscode.config import load_settings
from hscode.quality import PREDICTED_CODES, validate_dataframe, with_unknown_codes

pytestmark = pytest.mark.integration

DS = dt.date(2026, 11, 1)
T0 = dt.datetime(2026, 10, 1, 12)
CODES = ("847130", "392410", "010121")
PREDICTION_COLUMNS = (
    "ds date, product_id string, predicted_hs6 string, probability double, "
    "predicted_hs4 string, hs4_probability double, predicted_hs2 string, top2_hs6 string, "
    "top2_probability double, top3_hs6 string, top3_probability double, "
    "confidence_band string, needs_review boolean, assigned_hs_code string, "
    "assigned_hs6 string, agrees_with_assigned boolean, review_reason string, "
    "model_name string, model_version string")


def _prediction(pid: str, hs6: str = "847130", p: float = 0.9, hs4_p: float | None = 0.95,
                band: str = "high", version: str | None = "registry:1",
                hs4: str | None = None, top2: str = "392410") -> tuple:
    return (DS, pid, hs6, p, hs4 or hs6[:4], hs4_p, hs6[:2], top2, 0.05, "010121", 0.01, band,
            False, None, None, None, None, "svm", version)


def _failures(spark, tmp_path: Path, engine: str, rows: list[tuple], schema: str, suite: str,
              parameters: dict) -> list[str]:
    df = spark.createDataFrame(rows, schema)
    suite_file = load_settings().expectations_dir / f"{suite}.json"
    if suite == "predictions":  # as gate_predictions checks them
        codes = spark.createDataFrame([(c,) for c in CODES], "code string")
        df = with_unknown_codes(df, codes, PREDICTED_CODES)
    result = validate_dataframe(df, suite_file, tmp_path / engine, parameters,
                                data_docs=False, engine=engine)
    written = json.loads(result.result_file.read_text())
    assert written["engine"] == engine
    return sorted(result.failures)


def test_both_engines_pass_good_predictions_and_name_the_same_failures(spark, tmp_path) -> None:
    good = [_prediction(f"p{i}") for i in range(6)]
    bad = [
        *good[:2],
        _prediction("p2", p=1.5, hs4_p=1.5),                 # a probability above 1
        _prediction("p3", hs6="999999"),                     # not a subheading
        _prediction("p3", hs4_p=0.5),                        # duplicate id; heading < code
        _prediction("p5", band="certain", version=None),     # unknown band, no model version
        _prediction("p6", hs4="84x1"),                       # a heading that is not 4 digits
        _prediction("p7", top2="12345"),                     # a runner-up not in HS 2022
    ]
    for engine in ("spark", "pandas"):
        assert _failures(spark, tmp_path, engine, good, PREDICTION_COLUMNS, "predictions",
                         {"rows": len(good)}) == []
    by_engine = {engine: _failures(spark, tmp_path, engine, bad, PREDICTION_COLUMNS,
                                   "predictions", {"rows": len(bad) + 1})
                 for engine in ("spark", "pandas")}
    assert by_engine["spark"] == by_engine["pandas"]
    failed = "\n".join(by_engine["pandas"])
    for what in ("expect_table_row_count_to_equal", "column=probability",
                 "column=predicted_hs6_unknown", "column=top2_hs6_unknown",
                 "expect_column_values_to_be_unique", "column=confidence_band",
                 "column=model_version", "column=predicted_hs4",
                 "expect_column_pair_values_a_to_be_greater_than_b"):
        assert what in failed
    assert len(by_engine["pandas"]) == 10


def test_both_engines_judge_a_raw_snapshot_alike(spark, tmp_path) -> None:
    """``mostly`` thresholds, a code regex, a set of levels, nulls, duplicates."""
    schema = ("product_id string, short_description string, medium_description string, "
              "etim_class string, region string, hs_code string, assurance_level int, "
              "updated_at timestamp, ds date")
    rows = [(f"p{i}", "laptop", None, None, "EU", "84713000", 3, T0, DS) for i in range(100)]
    rows += [("p100", None, "x", None, "EU", "8471", None, T0, DS),  # no text, short code,
             ("p101", "mug", None, None, "EU", "8471300 0", 7, None, DS)]  # no level, level 7
    parameters = {"min_rows": 1, "max_rows": 1000}
    spark_failures = _failures(spark, tmp_path, "spark", rows, schema, "raw_products",
                               parameters)
    assert spark_failures == _failures(spark, tmp_path, "pandas", rows, schema, "raw_products",
                                       parameters)
    assert spark_failures == []  # 2 bad rows of 102: within every `mostly`
    rows += [(f"q{i}", None, None, None, "EU", "84.71", 0, T0, DS) for i in range(6)]
    rows += [("p1", "laptop", None, None, "EU", "84713000", 3, T0, DS)]  # 2 % duplicates
    spark_failures = _failures(spark, tmp_path, "spark", rows, schema, "raw_products",
                               parameters)
    assert spark_failures == _failures(spark, tmp_path, "pandas", rows, schema, "raw_products",
                                       parameters)
    assert [f.split("(")[0] for f in spark_failures] == [
        "expect_column_values_to_be_in_set", "expect_column_values_to_be_unique",
        "expect_column_values_to_match_regex", "expect_column_values_to_not_be_null"]


def test_both_engines_judge_a_scoring_set_alike(spark, tmp_path) -> None:
    """Lengths, a median, a mean, a share of non-null codes, a set of statuses."""
    schema = ("product_id string, text string, hs6 string, code_status string, "
              "n_tokens int, text_length int")
    rows = [(f"p{i}", "steel screws", "731815", "valid", 2, 12) for i in range(10)]
    parameters = {"min_rows": 1, "max_text_chars": 40}
    for engine in ("spark", "pandas"):
        assert _failures(spark, tmp_path, engine, rows, schema, "clean_scoring",
                         parameters) == []
    rows += [(f"q{i}", "a" * 60, None, "gone", 90, 1000) for i in range(12)]
    by_engine = {engine: _failures(spark, tmp_path, engine, rows, schema, "clean_scoring",
                                   parameters) for engine in ("spark", "pandas")}
    assert by_engine["spark"] == by_engine["pandas"]
    assert [f.split("(")[0] for f in by_engine["spark"]] == [
        "expect_column_mean_to_be_between", "expect_column_median_to_be_between",
        "expect_column_proportion_of_non_null_values_to_be_between",
        "expect_column_value_lengths_to_be_between", "expect_column_values_to_be_in_set"]


def test_an_unknown_engine_is_refused(spark, tmp_path) -> None:
    df = spark.createDataFrame([(1,)], "x int")
    with pytest.raises(ValueError, match="unknown gate engine 'polars'"):
        validate_dataframe(df, load_settings().expectations_dir / "predictions.json", tmp_path,
                           engine="polars")
