"""Training-set preparation: min-rows filter, grouped stratified split, up-sampling."""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from hscode.training.prepare import (
    class_counts,
    filter_min_rows,
    grouped_stratified_split,
    three_way_split,
    upsample,
    with_assurance_weight,
)


def _rows(spark, spec: dict[str, int], texts_per_code: int | None = None):
    rows = []
    for code, n in spec.items():
        for i in range(n):
            t = i % texts_per_code if texts_per_code else i
            rows.append((f"{code}-{i}", f"text {code} {t}", code))
    return spark.createDataFrame(rows, "product_id string, text string, hs6 string")


@pytest.mark.integration
def test_filter_min_rows_reports_excluded_codes(spark) -> None:
    df = _rows(spark, {"111111": 5, "222222": 2, "333333": 3})
    kept, excluded = filter_min_rows(df, 3)
    assert sorted(r[0] for r in kept.select("hs6").distinct().collect()) == ["111111", "333333"]
    assertDataFrameEqual(excluded, spark.createDataFrame([("222222", 2)], "hs6 string, rows long"))


@pytest.mark.integration
def test_split_is_grouped_stratified_and_seeded(spark) -> None:
    # 3 rows share each text: identical texts must stay on one side
    df = _rows(spark, {"111111": 300, "222222": 90, "333333": 6}, texts_per_code=None)
    df = df.withColumn("text", F.concat_ws(" ", "hs6", (F.split("product_id", "-")[1] % 100)
                                           .cast("string")))
    split = grouped_stratified_split(df, 0.05, seed=7)
    train = {r[0] for r in split.where("split='train'").select("text").collect()}
    test = {r[0] for r in split.where("split='test'").select("text").collect()}
    assert train and test and not train & test
    per_code = {(r["hs6"], r["split"]): r["count"]
                for r in split.groupBy("hs6", "split").count().collect()}
    assert per_code[("111111", "test")] == 15  # 100 texts x 5% = 5 groups x 3 rows
    assert per_code[("222222", "test")] in (4, 5)  # 90 texts x 5% = 4.5: 4 or 5 at random
    assert per_code.get(("333333", "test"), 0) in (0, 1)  # 6 x 5% = 0.3: 0 or 1
    again = grouped_stratified_split(df, 0.05, seed=7)
    assertDataFrameEqual(split, again)
    other = grouped_stratified_split(df, 0.05, seed=8)
    assert {r[0] for r in other.where("split='test'").select("text").collect()} != test


@pytest.mark.integration
def test_small_codes_are_sampled_at_the_split_share_in_expectation(spark) -> None:
    """200 codes of 6 texts each: 6 x 20% = 1.2 test texts per code, so about 240 in all
    (a fixed rounding rule would give 200, or 400 with 'at least one per code')."""
    df = _rows(spark, {f"{c:06d}": 6 for c in range(200)})
    split = three_way_split(df, 0.2, 0.1, seed=3)
    sizes = {r["split"]: r["count"] for r in split.groupBy("split").count().collect()}
    assert sum(sizes.values()) == 1200
    assert 240 - 40 <= sizes["test"] <= 240 + 40  # binomial spread, about 4 s.d.
    assert 120 - 35 <= sizes["calibration"] <= 120 + 35  # 10% overall: 0.125 of what is left
    sides = split.groupBy("text").agg(F.countDistinct("split").alias("n"))
    assert sides.where("n > 1").count() == 0


@pytest.mark.integration
def test_upsample_raises_minorities_to_target_and_leaves_majorities(spark) -> None:
    spec = {"100000": 700, "200000": 200, "300000": 60, "400000": 30, "500000": 7, "600000": 3}
    df = _rows(spark, spec)
    up = upsample(df, seed=1, threshold=0.05, target="median")
    counts = {r["hs6"]: (r["rows_before"], r["rows_after"])
              for r in class_counts(df, up).collect()}
    total = sum(spec.values())
    median_share = sorted(n / total for n in spec.values())[2:4]
    target = sum(median_share) / 2 * total  # 45 rows
    for code, n in spec.items():
        before, after = counts[code]
        assert before == n
        if n / total < 0.05 and n < target:
            assert abs(after - target) <= max(2, 0.15 * target), (code, after, target)
        else:
            assert after == n, code
    # originals are all kept; duplicates carry copy > 0
    assert up.where("copy = 0").count() == total
    majority = up.where("hs6 = '100000'").drop("copy")
    assertDataFrameEqual(majority, df.where("hs6 = '100000'"))


@pytest.mark.integration
def test_upsample_mean_target_and_determinism(spark) -> None:
    df = _rows(spark, {"100000": 900, "200000": 90, "300000": 10})
    a = upsample(df, seed=3, threshold=0.05, target="mean")
    assert a.where("hs6 = '300000'").count() == pytest.approx(1000 / 3, abs=15)
    assertDataFrameEqual(a, upsample(df, seed=3, threshold=0.05, target="mean"))


@pytest.mark.unit
def test_minority_targets_match_the_spark_upsampling_rule() -> None:
    from hscode.training.prepare import minority_targets, target_share

    counts = {"a": 700, "b": 200, "c": 60, "d": 30, "e": 7, "f": 3}
    assert target_share([0.2, 0.1, 0.4], "median") == 0.2
    assert target_share([0.2, 0.1, 0.6], "mean") == pytest.approx(0.3)
    assert minority_targets(counts, 0.05, "median") == {"d": 45, "e": 45, "f": 45}


@pytest.mark.integration
def test_upsample_by_weight_keeps_each_row_once_and_weighs_minorities(spark) -> None:
    spec = {"100000": 700, "200000": 200, "300000": 60, "400000": 30, "500000": 7, "600000": 3}
    df = _rows(spark, spec).withColumn("assurance_level", F.lit(2))
    up = with_assurance_weight(upsample(df, seed=1, threshold=0.05, target="median",
                                        by="weight"), {2: 0.5})
    assert up.count() == sum(spec.values()) and "class_weight" not in up.columns
    weights = {r["hs6"]: (r["n"], r["w"]) for r in up.groupBy("hs6").agg(
        F.count("*").alias("n"), F.sum("weight").alias("w")).collect()}
    target = 45  # the median class share, as above
    for code, n in spec.items():
        assert weights[code][0] == n
        # minorities weigh as much as the target rows would (times the level's 0.5)
        expected = 0.5 * (target if n < target and n / 1000 < 0.05 else n)
        assert weights[code][1] == pytest.approx(expected, rel=0.02), code


@pytest.mark.integration
def test_reviewers_labels_win_and_count_only_for_the_product_as_reviewed(spark) -> None:
    import datetime as dt

    import duckdb

    from hscode.training.reviewed import DECISIONS_SCHEMA, apply_decisions, decisions_for
    from hscode.warehouse.schema import product_fingerprint

    products = [  # product_id, short, medium, etim, hs_code
        ("p1", "plastic bowls", None, "EC000001", "3924100000"),
        ("p2", "mystery box", "n/a", None, "3924900000"),
        ("p3", "plastic chair", None, None, "9403600000"),
        ("p4", "usb charger", None, None, "8504400000"),
        ("p5", "steel screws", None, None, "7318150000"),
        ("p6", "wooden spoon", None, None, "99"),  # the catalog's code is invalid
    ]
    raw = spark.createDataFrame(products, "product_id string, short_description string, "
                                "medium_description string, etim_class string, hs_code string")
    # the warehouse's digest of each product as a reviewer saw it (DuckDB's md5 of the same
    # fields): the Spark side must compute the very same one
    with duckdb.connect() as con:
        con.execute("CREATE TABLE m (product_id VARCHAR, short_description VARCHAR, "
                    "medium_description VARCHAR, etim_class VARCHAR, hs_code VARCHAR)")
        con.executemany("INSERT INTO m VALUES (?, ?, ?, ?, ?)", products)
        seen = dict(con.execute(f"SELECT product_id, {product_fingerprint('m')} FROM m")
                    .fetchall())
    day = dt.datetime(2026, 11, 1, 9)
    reviews = spark.createDataFrame([
        ("r1", "p1", "corrected", "392490", day, seen["p1"]),
        ("r2", "p2", "not_classifiable", None, day, seen["p2"]),
        ("r3", "p3", "corrected", "940390", day, "a product as it was before"),
        ("r4", "p4", "corrected", "850410", day + dt.timedelta(days=1), seen["p4"]),
        ("r5", "p5", "corrected", "731814", day, seen["p5"]),
        ("r6", "p5", "confirmed", "731815", day + dt.timedelta(hours=2), seen["p5"]),
        ("r7", "p6", "corrected", "441990", day, seen["p6"]),
    ], DECISIONS_SCHEMA)
    decisions = decisions_for(raw, reviews, "2026-11-01")
    assertDataFrameEqual(decisions, spark.createDataFrame(
        [("p1", "corrected", "392490"), ("p2", "not_classifiable", None),
         ("p5", "confirmed", "731815"), ("p6", "corrected", "441990")],
        "product_id string, decision string, decided_hs6 string"))
    scoring = spark.createDataFrame(
        [(p, f"text {p}", (code or "")[:6] if p != "p6" else None,
          "valid" if p != "p6" else "invalid_code", 3, False)
         for p, _, _, _, code in products],
        "product_id string, text string, hs6 string, code_status string, "
        "assurance_level int, conflicting_code boolean")
    labelled = apply_decisions(scoring, decisions).select("product_id", "hs6",
                                                          "assurance_level", "reviewed")
    assertDataFrameEqual(labelled, spark.createDataFrame([
        ("p1", "392490", 5, True), ("p3", "940360", 3, False), ("p4", "850440", 3, False),
        ("p5", "731815", 5, True), ("p6", "441990", 5, True)],
        "product_id string, hs6 string, assurance_level int, reviewed boolean"))
