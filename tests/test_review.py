"""The review loop: decisions validated, recorded once, and winning in the answer consumers
read (hs_product_codes), on DuckDB and PostgreSQL alike."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from hscode.review.decisions import Known, Prediction, review_id, validate

NOW = dt.datetime(2026, 11, 3, 9, 0)
D1, D2 = dt.date(2026, 11, 1), dt.date(2026, 11, 2)
CODES = frozenset({"392410", "392490", "940360", "850440"})


def _known(**kw) -> Known:
    base = {"products": {"p1": ("f1", "392410"), "p2": ("f2", None), "p3": ("f3", "940360")},
            "codes": CODES,
            "predictions": {"p1": Prediction(D2, "392410", 0.6, "registry:1"),
                            "p2": Prediction(D2, "850440", 0.4, "registry:1")}}
    return Known(**{**base, **kw})


def _rows(*rows: tuple) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["product_id", "decision", "hs6", "reviewer",
                                       "decided_at", "note"])


@pytest.mark.unit
def test_each_bad_row_is_rejected_with_its_reason_and_nothing_is_lost() -> None:
    raw = _rows(
        ("p1", "confirmed", "", "ana", "", ""),                      # confirms the prediction
        ("p2", "Corrected", "8504.40.90", "ana", "2026-11-02T10:00:00+01:00", "a charger"),
        ("p3", "not classifiable", "", "ben", "", "no text"),
        ("", "confirmed", "392410", "ana", "", ""),
        ("p9", "confirmed", "392410", "ana", "", ""),
        ("p1", "maybe", "392410", "ana", "", ""),
        ("p1", "corrected", "392410", "", "", ""),
        ("p1", "corrected", "", "ana", "", ""),
        ("p1", "corrected", "999999", "ana", "", ""),
        ("p1", "corrected", "39241", "ana", "", ""),
        ("p1", "corrected", "392490", "ana", "yesterday", ""),
        ("p1", "corrected", "392490", "ana", "2027-01-01", ""),
        ("p3", "not_classifiable", "940360", "ana", "", ""),
        ("p3", "confirmed", "", "ana", "", ""),                      # no prediction to confirm
        ("p1", "confirmed", "392490", "ana", "", ""),                # not what the model said
        ("p3", "not classifiable", "", "ben", "", "no text"),        # row 3 again
    )
    out = validate(raw, _known(), "import:x.csv", NOW)
    assert len(out.accepted) + len(out.rejected) + out.already_recorded == len(raw)
    assert out.rejected.set_index("source_row")["reason"].to_dict() == {
        4: "missing_product_id", 5: "unknown_product", 6: "bad_decision",
        7: "missing_reviewer", 8: "missing_code", 9: "unknown_code", 10: "malformed_code",
        11: "bad_timestamp", 12: "decided_in_the_future", 13: "code_with_not_classifiable",
        14: "missing_code", 15: "confirmed_code_is_not_the_prediction", 16: "duplicate_in_file"}
    got = out.accepted.set_index("product_id")
    assert got.loc["p1", ["decision", "decided_hs6", "reviewed_hs6", "decided_at"]].tolist() \
        == ["confirmed", "392410", "392410", NOW]
    assert got.loc["p2", ["decision", "decided_hs6", "decided_at", "note"]].tolist() == [
        "corrected", "850440", dt.datetime(2026, 11, 2, 9, 0), "a charger"]  # UTC
    assert got.loc["p3", "decided_hs6"] is None and got.loc["p3", "reviewed_ds"] is None
    assert got.loc["p2", "product_fingerprint"] == "f2"
    assert set(got["source"]) == {"import:x.csv"}


@pytest.mark.unit
def test_a_decision_already_recorded_is_skipped_not_rejected() -> None:
    raw = _rows(("p1", "corrected", "392490", "ana", "2026-11-02T08:00:00", ""))
    first = validate(raw, _known(), "page", NOW)
    again = validate(raw, _known(recorded=frozenset(first.accepted["review_id"])), "page",
                     NOW + dt.timedelta(days=1))
    assert (len(again.accepted), len(again.rejected), again.already_recorded) == (0, 0, 1)
    assert first.accepted["review_id"][0] == review_id("p1", "f1", "corrected", "392490", "ana",
                                                       "2026-11-02T08:00:00", "")


@pytest.mark.unit
def test_a_file_without_the_required_columns_is_refused_whole() -> None:
    with pytest.raises(ValueError, match="lack column"):
        validate(pd.DataFrame({"product": ["p1"], "code": ["392410"]}), _known(), "x", NOW)


@pytest.mark.unit
def test_rows_naming_no_reviewer_take_the_one_given() -> None:
    out = validate(_rows(("p1", "confirmed", "", "", "", "")), _known(), "x", NOW, "carla")
    assert out.accepted["reviewer"].tolist() == ["carla"]


# --- in a real warehouse -------------------------------------------------------------------

def _prediction_rows(ds: dt.date) -> pa.Table:
    from hscode.warehouse.schema import HS_PREDICTIONS

    rows = [  # p1 unsure with an assigned code, p2 sure, p3 disputes its assigned code
        ("p1", "392490", 0.55, True, "392410", False),
        ("p2", "850440", 0.99, False, None, None),
        ("p3", "392410", 0.97, True, "940360", False),
    ]
    return pa.Table.from_pylist([
        {"ds": ds, "product_id": p, "predicted_hs6": hs6, "probability": prob,
         "predicted_hs4": hs6[:4], "hs4_probability": prob, "predicted_hs2": hs6[:2],
         "confidence_band": "high" if not review else "low", "needs_review": review,
         "assigned_hs_code": assigned, "assigned_hs6": assigned,
         "agrees_with_assigned": agrees, "review_reason": None, "model_name": "svm",
         "model_version": "registry:1"} for p, hs6, prob, review, assigned, agrees in rows],
        schema=HS_PREDICTIONS.arrow_schema)


def _seed(wh) -> None:
    from hscode.warehouse.schema import (
        HS_CODE_REVIEWS,
        HS_NOMENCLATURE,
        HS_PREDICTIONS,
        HS_REVIEW_REJECTS,
        HS_SCORING_RUNS,
        PRODUCT_MASTER,
    )

    wh.ensure_schema()  # the session's PostgreSQL database is shared: every table read is set
    wh.replace_table(PRODUCT_MASTER, pa.Table.from_pylist([
        {"product_id": p, "short_description": text, "medium_description": None,
         "etim_class": None, "region": "EU", "hs_code": code, "assurance_level": 3,
         "updated_at": dt.datetime(2026, 10, 1)}
        for p, text, code in [("p1", "plastic bowls", "3924100000"),
                              ("p2", "usb charger", None),
                              ("p3", "plastic chair", "9403600000")]],
        schema=PRODUCT_MASTER.arrow_schema))
    wh.replace_table(HS_NOMENCLATURE, pa.Table.from_pylist([
        {"code": c, "level": 6, "description": f"code {c}", "parent": c[:4], "section": "VII"}
        for c in sorted(CODES)], schema=HS_NOMENCLATURE.arrow_schema))
    wh.replace_table(HS_PREDICTIONS, pa.concat_tables([_prediction_rows(D1),
                                                       _prediction_rows(D2)]))
    for table in (HS_CODE_REVIEWS, HS_REVIEW_REJECTS, HS_SCORING_RUNS):
        wh.replace_table(table, table.arrow_schema.empty_table())


REVIEWS_CSV = """product_id,decision,hs6,reviewer,decided_at,note
p1,corrected,392410,ana,2026-11-02T15:00:00,"bowls, not ""other"" <b>plastics</b>"
p3,confirmed,,ben,2026-11-02T16:00:00,
p2,corrected,999999,ana,2026-11-02T15:00:00,
p7,confirmed,392410,ana,,
p1,corrected,392410,ana,2026-11-02T15:00:00,"bowls, not ""other"" <b>plastics</b>"
"""


@pytest.fixture
def sheet(tmp_path: Path) -> Path:
    """A reviewer's spreadsheet: two good rows and three bad ones."""
    path = tmp_path / "reviews.csv"
    path.write_text(REVIEWS_CSV)
    return path


def _snapshot(wh) -> dict:
    from hscode.warehouse.schema import HS_CODE_REVIEWS, HS_REVIEW_REJECTS

    return {t.name: wh.read_table(t).to_pylist() for t in (HS_CODE_REVIEWS, HS_REVIEW_REJECTS)}


@pytest.mark.integration
def test_an_import_records_good_rows_rejects_bad_ones_and_a_second_import_changes_nothing(
        warehouse_url: str, sheet: Path) -> None:
    from hscode.review.store import import_file
    from hscode.warehouse import open_warehouse

    with open_warehouse(warehouse_url, retries=0) as wh:
        _seed(wh)
        report = import_file(wh, sheet, now=NOW)
        assert (report.rows, report.recorded, report.rejected) == (5, 2, 3)
        assert report.reasons == {"unknown_code": 1, "unknown_product": 1,
                                  "duplicate_in_file": 1}
        first = _snapshot(wh)
        p3 = next(r for r in first["hs_code_reviews"] if r["product_id"] == "p3")
        assert (p3["decided_hs6"], p3["reviewed_hs6"], p3["reviewed_ds"]) == (
            "392410", "392410", D2)  # confirmed the newest prediction
        again = import_file(wh, sheet, now=NOW + dt.timedelta(hours=5))
        assert (again.recorded, again.already_recorded, again.rejected) == (0, 2, 3)
        assert _snapshot(wh) == first
        # the night of D2, as reviewers judged its predictions: p3 confirmed, p1 corrected
        from hscode.warehouse.schema import HS_SCORING_RUNS

        wh.replace_partition(HS_SCORING_RUNS, D2, pa.Table.from_pylist([{
            "ds": D2, "model_name": "svm", "model_version": "registry:1", "catalog_rows": 3,
            "predicted_rows": 3, "unscorable_rows": 0, "review_rows": 2,
            "disagreeing_rows": 2, "review_threshold": 0.9,
            "published_at": dt.datetime(2026, 11, 2, 3)}], schema=HS_SCORING_RUNS.arrow_schema))
        assert wh.execute("SELECT CAST(ds AS VARCHAR), model_version, reviewed, confirmed, "
                          "corrected, not_classifiable FROM hs_scoring_run_reviews") == [
            (D2.isoformat(), "registry:1", 2, 1, 1, 0)]


@pytest.mark.integration
def test_reviewed_products_win_in_the_answer_and_leave_the_queue_until_they_change(
        warehouse_url: str, sheet: Path) -> None:
    from hscode.review.store import import_file
    from hscode.warehouse import open_warehouse

    with open_warehouse(warehouse_url, retries=0) as wh:
        _seed(wh)
        query = ("SELECT product_id, final_hs6, source, review_decision, predicted_hs6, "
                 "probability FROM hs_product_codes WHERE ds = CAST(? AS DATE) "
                 "ORDER BY product_id").replace("?", wh.param)
        before = wh.execute(query, [D2.isoformat()])
        assert [r[1:3] for r in before] == [("392410", "assigned"), ("850440", "model"),
                                            ("940360", "assigned")]
        queue = "SELECT product_id FROM hs_review_queue WHERE ds = CAST(? AS DATE) " \
            "ORDER BY product_id".replace("?", wh.param)
        assert [r[0] for r in wh.execute(queue, [D2.isoformat()])] == ["p1", "p3"]
        import_file(wh, sheet, now=NOW)
        after = {r[0]: r for r in wh.execute(query, [D2.isoformat()])}
        assert after["p1"][1:4] == ("392410", "review", "corrected")
        assert after["p3"][1:4] == ("392410", "review", "confirmed")  # overrides 940360
        assert after["p2"][1:3] == ("850440", "model")  # unreviewed: the model's answer
        assert after["p1"][4:] == ("392490", 0.55)  # the model's answer stays beside
        # decided on 2026-11-02: the answer for the night before is the model's / assigned
        assert wh.execute(query, [D1.isoformat()]) == before
        assert wh.execute(queue, [D2.isoformat()]) == []
        # p1's text changes in the product master: its review no longer speaks for it
        wh.execute("UPDATE product_master SET short_description = 'plastic bowls, 12 cm' "
                   "WHERE product_id = 'p1'")
        assert [r[0] for r in wh.execute(queue, [D2.isoformat()])] == ["p1"]
        assert {r[0]: r[2] for r in wh.execute(query, [D2.isoformat()])}["p1"] == "assigned"


@pytest.mark.integration
def test_the_import_command_reports_and_refuses_an_unusable_file(tmp_path: Path,
                                                                 sheet: Path) -> None:
    from typer.testing import CliRunner

    from hscode.cli import app
    from hscode.warehouse import open_warehouse

    url = f"duckdb:///{tmp_path / 'wh.duckdb'}"
    with open_warehouse(url, retries=0) as wh:
        _seed(wh)
    good, bad = sheet, tmp_path / "wrong.csv"
    bad.write_text("sku,code\np1,392410\n")
    runner = CliRunner()
    ok = runner.invoke(app, ["review", "import", str(good), "--warehouse-url", url])
    assert ok.exit_code == 0, ok.output
    assert "5 rows -> 2 recorded, 0 already recorded, 3 rejected" in ok.output
    assert "unknown_code" in ok.output and "p7" in ok.output
    refused = runner.invoke(app, ["review", "import", str(bad), "--warehouse-url", url])
    assert refused.exit_code == 2 and "lack column" in refused.output


@pytest.mark.integration
def test_enough_new_decisions_ask_for_a_retrain_until_the_next_one_decides(
        tmp_path: Path, sheet: Path) -> None:
    from hscode.catalog import Catalog
    from hscode.review.store import import_file, retrain_due
    from hscode.selection.registry import Decision, Registry
    from hscode.warehouse import warehouse_from_settings
    from tests.conftest import make_settings

    settings = make_settings(tmp_path)
    settings = settings.model_copy(update={"review": settings.review.model_copy(
        update={"retrain_after": 2})})
    with warehouse_from_settings(settings) as wh:
        _seed(wh)
    assert retrain_due(settings)["due"] is False  # no decision yet
    with warehouse_from_settings(settings) as wh:
        import_file(wh, sheet, now=dt.datetime.now(dt.UTC).replace(tzinfo=None))
    due = retrain_due(settings)
    assert (due["decisions"], due["since"], due["due"]) == (2, None, True)
    # a retrain's promotion decision (promoted or not) starts the count again
    Registry(Catalog.from_settings(settings).registry).record(1, Decision(
        promote=False, reason="not better", champion_accuracy=0.7, challenger_accuracy=0.69,
        champion_only_right=3, challenger_only_right=2, p_value=0.5))
    assert retrain_due(settings)["decisions"] == 0 and not retrain_due(settings)["due"]
    off = settings.model_copy(update={"review": settings.review.model_copy(
        update={"retrain_after": 0})})
    assert retrain_due(off)["due"] is False
