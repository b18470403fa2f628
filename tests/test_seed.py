"""Seed transforms on small inputs: parsing, rejects with reasons, derived columns."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from hscode.config import SeedSettings
from hscode.seed import (
    build_product_master,
    draw_assurance,
    normalise_code,
    read_sections,
    read_source_csv,
    split_description,
)

pytestmark = pytest.mark.unit
CFG = SeedSettings()


def _csv(tmp_path: Path, text: str, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def test_csv_keeps_quoted_line_breaks_leading_zeros_and_rejects_bad_records(tmp_path: Path):
    path = _csv(
        tmp_path,
        '"hs10","goods_description"\n'
        '"0101210000","LIVE HORSE\nPURE-BRED_x000D_"\n'
        '"8517130000","PHONE","EXTRA FIELD"\n'
        '"3924100000","PLATES"\n',
    )
    parsed = read_source_csv(path)
    assert parsed.rows_read == 3
    assert parsed.rows["hs10"].tolist() == ["0101210000", "3924100000"]
    assert parsed.rows["goods_description"].iloc[0] == "LIVE HORSE\nPURE-BRED_x000D_"
    assert parsed.rows["source_row"].tolist() == [1, 3]
    assert parsed.rejects[["source_row", "reason"]].values.tolist() == [[2, "malformed_row"]]


def test_bom_is_skipped(tmp_path: Path) -> None:
    path = _csv(tmp_path, "\ufeffsection,name\nI,live animals\n")
    assert read_sections(path).columns.tolist() == ["section", "name"]
    assert read_source_csv(path).rows.columns.tolist() == ["source_row", "section", "name"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("3924100000", "3924100000"), ("3924.10.00", "39241000"), ("392410", "392410"),
     ("39241", None), ("39241000000", None), ("39A4100000", None), ("", None), (None, None)],
)
def test_normalise_code(raw: str | None, expected: str | None) -> None:
    assert normalise_code(pd.Series([raw], dtype=object)).iloc[0] == expected


def test_bad_rows_are_rejected_with_a_reason_and_counted() -> None:
    parsed = pd.DataFrame(
        {
            "source_row": range(1, 10),
            "hs10": ["3924100000", "3924100000", "39241", "ABC", "8517130000", "8517130000",
                     "8517130000", "8517130000", "8517130000"],
            "goods_description": ["PLATES", "  _x000D_ ", "CUPS", "BOWLS", "PHONE", "PHONE 2",
                                  "PHONE 3", "PHONE 4", "PHONE 5"],
            "assurance_level": ["4", "4", "3", "3", "0", "5", "", "x", "2"],
        }
    )
    products, rejects = build_product_master(parsed, CFG, "in.csv")
    assert len(products) + len(rejects) == len(parsed)
    assert dict(Counter(rejects["reason"])) == {
        "empty_description": 1, "malformed_code": 2, "unknown_assurance_level": 4,
    }
    assert sorted(rejects["source_row"]) == [2, 3, 4, 5, 6, 7, 8]
    assert sorted(products["hs_code"]) == ["392410", "851713"]
    assert sorted(products["assurance_level"]) == [2, 4]


def test_given_product_ids_keep_first_and_reject_duplicates_and_blanks() -> None:
    parsed = pd.DataFrame(
        {"source_row": [1, 2, 3, 4], "product_id": ["A", "A", " ", "B"],
         "hs10": ["392410"] * 4, "goods_description": ["x", "y", "z", ""]}
    )
    products, rejects = build_product_master(parsed, CFG, "in.csv")
    assert products["product_id"].tolist() == ["A"]
    assert rejects.set_index("source_row")["reason"].to_dict() == {
        2: "duplicate_product_id", 3: "missing_product_id", 4: "empty_description"}


def test_missing_required_columns_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="need columns hs10 or hs_code and goods_description"):
        build_product_master(pd.DataFrame({"source_row": [1], "text": ["x"]}), CFG, "in.csv")


@pytest.mark.parametrize(
    "text", ["SHORT", "USED WOODEN DINNING CHAIRS WITH CUSHIONS AND A TABLE OF OAK",
             "CABLE AS        3704617 AND  MORE CABLES OF COPPER"]
)
def test_split_description_keeps_every_word(text: str) -> None:
    short, medium = split_description(text, 40)
    assert len(short) <= 40
    assert f"{short} {medium or ''}".split() == text.split()
    assert short == text[: len(short)]  # the short part is a prefix, inner spacing kept


def test_split_description_at_line_break_and_overlong_word() -> None:
    assert split_description(" FIRST LINE\nSECOND\nTHIRD ", 40) == ("FIRST LINE", "SECOND\nTHIRD")
    assert split_description("X" * 90, 40) == ("X" * 40, "X" * 50)


def _declarations(n: int = 400) -> pd.DataFrame:
    codes = [f"{3924100000 + (i % 7) * 10000:010d}" for i in range(n)]
    texts = [f"ITEM {i % 150} PLASTIC" for i in range(n)]
    return pd.DataFrame({"source_row": range(1, n + 1), "hs10": codes, "goods_description": texts})


def test_derived_columns_are_stable_under_reordering() -> None:
    df = _declarations()
    a, _ = build_product_master(df, CFG, "in.csv")
    b, _ = build_product_master(df.sample(frac=1, random_state=3), CFG, "in.csv")
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))
    assert a["product_id"].is_unique and a["product_id"].str.fullmatch(r"P[0-9a-f]{16}").all()
    assert set(a["region"]) <= set(CFG.regions)


def test_conflicting_descriptions_are_capped_in_assurance() -> None:
    df = _declarations()
    products, _ = build_product_master(df, CFG, "in.csv")
    text = df.set_index(df["goods_description"])["hs10"].str[:6]
    conflicting = set(text.groupby(level=0).nunique().loc[lambda s: s > 1].index)
    capped = products[
        (products["short_description"]).isin(conflicting)
    ]["assurance_level"]
    assert len(capped) > 0 and capped.max() <= CFG.conflicting_max_assurance


def test_assurance_follows_configured_shares() -> None:
    ids = pd.Series([f"P{i}" for i in range(20000)])
    levels = draw_assurance(ids, pd.Series(False, index=ids.index), CFG)
    shares = levels.value_counts(normalize=True)
    for level, share in CFG.assurance_shares.items():
        assert abs(shares[level] - share) < 0.015
