"""Nightly scoring end to end on a slice of the real catalog: score, gate, publish, drift."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from hscode.catalog import Catalog
from hscode.config import Settings
from hscode.warehouse import open_warehouse, warehouse_from_settings
from hscode.warehouse.schema import (
    HS_DRIFT,
    HS_PREDICTIONS,
    HS_SCORING_RUNS,
    HS_UNSCORABLE,
)
from tests.pipeline import SLICE_ROWS as ROWS
from tests.pipeline import TRAIN_DS as DS
from tests.pipeline import args as _args
from tests.pipeline import job_settings
from tests.pipeline import score_and_publish as _score_and_publish
from tests.pipeline import table as _table
from tests.pipeline import upstream as _upstream

pytestmark = pytest.mark.integration
DS2 = "2026-11-02"
DS3 = "2026-11-03"
DS4 = "2026-11-04"


def _settings(home: Path, url: str = "duckdb:///warehouse.duckdb") -> Settings:
    return job_settings(home, url)


@pytest.fixture(scope="module")
def scored(textcnn: dict) -> dict:
    settings = textcnn["settings"]
    out = _score_and_publish(settings, DS)
    return {**textcnn, **out}


def test_scoring_fills_predictions_unscorable_and_review_queue(scored: dict) -> None:
    settings = scored["settings"]
    pred = _table(settings, HS_PREDICTIONS)
    unscorable = _table(settings, HS_UNSCORABLE)
    # every catalog row is a prediction or unscorable, with its reason
    assert pred.num_rows + unscorable.num_rows == ROWS + 2
    assert pred.num_rows == scored["score"]["scoring_rows"] == scored["publish"]["predicted_rows"]
    # the score job gated the files it wrote; publish took that result, for those very files
    assert scored["publish"]["gate"] == "recorded"
    assert scored["publish"]["data_docs"] == scored["score"]["data_docs"]
    assert sorted(unscorable.column("product_id").to_pylist()) == ["ZZ-EMPTY-1", "ZZ-EMPTY-2"]
    assert set(unscorable.column("reason").to_pylist()) == {"empty_text"}
    assert len(set(pred.column("product_id").to_pylist())) == pred.num_rows
    # only nomenclature codes, probabilities in [0, 1] and ordered, HS4/HS2 prefixes
    with warehouse_from_settings(settings) as wh:
        codes = {r[0] for r in wh.execute("SELECT code FROM hs_nomenclature WHERE level = 6")}
        queue = wh.execute("SELECT COUNT(*), SUM(CASE WHEN needs_review THEN 1 ELSE 0 END) "
                           "FROM hs_review_queue")[0]
        described = wh.execute("SELECT COUNT(*) FROM hs_review_queue "
                               "WHERE predicted_description IS NULL")[0][0]
    p = pred.to_pandas()
    assert set(p["predicted_hs6"]) <= codes and set(p["top2_hs6"].dropna()) <= codes
    assert p["probability"].between(0, 1).all()
    assert (p["probability"] >= p["top2_probability"]).all()
    assert (p["top2_probability"] >= p["top3_probability"]).all()
    assert (p["hs4_probability"] >= p["probability"]).all() and (p["hs4_probability"] <= 1).all()
    assert (p["predicted_hs4"] == p["predicted_hs6"].str[:4]).all()
    assert (p["predicted_hs2"] == p["predicted_hs6"].str[:2]).all()
    # review flag = under the hold-out threshold or an ambiguous description; the queue holds
    # review + disagreeing rows
    threshold = scored["score"]["review_threshold"]["value"]
    ambiguous = p["review_reason"].fillna("").str.contains("ambiguous_description")
    assert (p["needs_review"] == ((p["probability"] < threshold) | ambiguous)).all()
    assert ((p["confidence_band"] == "high") == (p["probability"] >= threshold)).all()
    assert (~p["needs_review"]).any()  # the model auto-accepts some products
    disagree = p["agrees_with_assigned"].eq(False).fillna(False)
    assert queue[0] == int((p["needs_review"] | disagree).sum()) > 0
    assert queue[1] == int(p["needs_review"].sum())
    assert described == 0
    agree = p.dropna(subset=["assigned_hs6"])
    assert (agree["agrees_with_assigned"] == (agree["predicted_hs6"] == agree["assigned_hs6"])).all()
    assert p["assigned_hs6"].isna().sum() == p["agrees_with_assigned"].isna().sum()
    # the model that scored: the newest artifact (no registry yet), recorded on every row
    assert set(p["model_name"]) == {"textcnn"}
    assert set(p["model_version"]) == {scored["model"].artifact.name}
    run = _table(settings, HS_SCORING_RUNS).to_pylist()
    assert len(run) == 1 and run[0]["predicted_rows"] == pred.num_rows
    assert run[0]["review_threshold"] == pytest.approx(threshold)


def test_drift_rows_and_run_marker(scored: dict) -> None:
    drift = _table(scored["settings"], HS_DRIFT).to_pylist()
    assert {r["metric"] for r in drift} == {"code_psi", "code_kl", "confidence_psi"}
    marker = Catalog.from_settings(scored["settings"]).run_dir(DS) / "drift.json"
    assert json.loads(marker.read_text())["metrics"] == scored["drift"]["metrics"]


# The drift job on two staged nights against a reference made by hand: training codes
# 392410 and 940161 half each, hold-out confidence half in [0.8, 0.9), half in [0.9, 1].
HAND_REFERENCE = {"code_shares": {"392410": 0.5, "940161": 0.5},
                  "confidence_hist": [0.0] * 8 + [0.5, 0.5]}


def _drift_night(scored: dict, tmp_path: Path, ds: str, codes: list[str],
                 probabilities: list[float]) -> dict:
    """Stage the predictions of ``ds`` (one row per code) scored by a model whose reference
    is HAND_REFERENCE, run the drift job, return its summary."""
    import pandas as pd

    from hscode.jobrun import write_summary
    from jobs import check_drift

    settings = scored["settings"]
    catalog = Catalog.from_settings(settings)
    artifact = tmp_path / "hand-model"
    artifact.mkdir()
    (artifact / "scoring_reference.json").write_text(json.dumps(HAND_REFERENCE))
    write_summary(catalog, ds, "score_catalog",
                  {"model": {"artifact": str(artifact), "version": "hand"}})
    rows = pd.read_parquet(catalog.partition(catalog.predictions, DS)).head(len(codes))
    rows = rows.drop(columns=[c for c in ("ds",) if c in rows.columns])
    rows["predicted_hs6"], rows["probability"] = codes, probabilities
    part = catalog.partition(catalog.predictions, ds)
    part.mkdir(parents=True)
    rows.to_parquet(part / "part-0.parquet", index=False)
    return check_drift.run(_args(ds), settings)


def test_a_night_like_the_training_data_does_not_drift(scored: dict, tmp_path: Path) -> None:
    # same code shares (2 + 2 of 4) and the same confidence bins (2 in bin 8, 2 in bin 9)
    summary = _drift_night(scored, tmp_path, "2026-11-08", ["392410", "940161"] * 2,
                           [0.85, 0.85, 0.95, 0.95])
    assert {r["metric"]: r["value"] for r in summary["metrics"]} == {
        "code_psi": 0.0, "code_kl": 0.0, "confidence_psi": 0.0}
    assert summary["breached"] == [] and summary["retrain_recommended"] is False
    rows = _table(scored["settings"], HS_DRIFT).to_pandas()
    night = rows[rows["ds"] == dt.date(2026, 11, 8)]
    assert len(night) == 3 and not night["breached"].any()
    assert set(night["model_version"]) == {"hand"}


def test_a_shifted_night_breaches_every_metric(scored: dict, tmp_path: Path) -> None:
    # all four products predicted 940161 at 0.15. By hand, with empty cells floored at
    # 1e-4 and renormalised: codes a = (1e-4, 1)/1.0001 vs e = (0.5, 0.5):
    #   PSI = (a1 - .5) ln(a1/.5) + (a2 - .5) ln(a2/.5) = 4.257795 + 0.346454 = 4.604249
    #   KL  = a1 ln(a1/.5) + a2 ln(a2/.5) = -0.000852 + 0.692978 = 0.692126 (-> ln 2)
    # confidence: bin 1 = 1 (others 1e-4; sum 1.0009) vs bins 8, 9 = .5 (others 1e-4;
    # sum 1.0008): 9.201038 + 2 x 4.254391 + 7 x ~0 = 17.709821
    summary = _drift_night(scored, tmp_path, "2026-11-09", ["940161"] * 4, [0.15] * 4)
    values = {r["metric"]: r["value"] for r in summary["metrics"]}
    assert values == pytest.approx({"code_psi": 4.604249, "code_kl": 0.692126,
                                    "confidence_psi": 17.709821}, abs=2e-6)
    assert sorted(summary["breached"]) == ["code_kl", "code_psi", "confidence_psi"]
    assert summary["retrain_recommended"] is True
    marker = Catalog.from_settings(scored["settings"]).run_dir("2026-11-09") / "drift.json"
    assert json.loads(marker.read_text())["retrain_recommended"] is True


def _without_publish_time(t: pa.Table) -> pa.Table:
    return t.drop_columns(["published_at"]) if "published_at" in t.column_names else t


def test_rerun_and_second_date_replace_exactly_their_partition(
        scored: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from hscode.cli import app
    from tests.pipeline import job_env

    settings = scored["settings"]
    before = {t.name: _table(settings, t) for t in (HS_PREDICTIONS, HS_UNSCORABLE)}
    _score_and_publish(settings, DS)  # rerun of the same date
    for t in (HS_PREDICTIONS, HS_UNSCORABLE):
        assert _table(settings, t).equals(before[t.name]), t.name
    # the second date through `hscode score`: the three jobs as spark-submit children
    _upstream(settings, DS2)
    for name, value in job_env(settings).items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, ["score", "--ds", DS2, "--master", "local[2]"])
    assert result.exit_code == 0, result.output[-3000:]
    assert f"published {ROWS} predictions + 2 unscorable = {ROWS + 2} catalog rows" in \
        result.output
    pred = _table(settings, HS_PREDICTIONS)
    per_day = pc.value_counts(pred.column("ds")).to_pylist()
    assert {(d["values"], d["counts"]) for d in per_day} == {
        (dt.date(2026, 11, 1), before["hs_predictions"].num_rows),
        (dt.date(2026, 11, 2), before["hs_predictions"].num_rows)}
    first = pred.filter(pc.equal(pred.column("ds"), pa.scalar(dt.date(2026, 11, 1))))
    assert first.equals(before["hs_predictions"])
    assert _table(settings, HS_SCORING_RUNS).num_rows == 2


def test_nights_in_one_process_publish_what_the_jobs_publish_one_by_one(
        scored: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """`hscode night --one-process` over two dates: extract, clean, score, publish and
    drift in this process (the test's own SparkSession), date after date: each date has the
    first date's predictions, which the jobs made one by one from the same catalog, and the
    same accounting."""
    from pyspark.testing import assertDataFrameEqual
    from typer.testing import CliRunner

    from hscode.cli import app
    from tests.pipeline import job_env

    settings = scored["settings"]
    for name, value in job_env(settings).items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, ["night", "--ds", DS3, "--to-date", DS4, "--one-process",
                                      "--master", "local[2]"])
    assert result.exit_code == 0, result.output[-3000:]
    for ds in (DS3, DS4):
        assert (f"{ds}: published {ROWS} predictions + 2 unscorable = {ROWS + 2} catalog rows"
                in result.output)
    assert result.output.count("5 jobs in one process") == 2
    pred = _without_publish_time(_table(settings, HS_PREDICTIONS)).to_pandas()
    unscorable = _table(settings, HS_UNSCORABLE).to_pandas()

    def night(ds: str) -> object:
        rows = pred[pred["ds"] == dt.date.fromisoformat(ds)].drop(columns="ds")
        return rows.sort_values("product_id").reset_index(drop=True)

    for ds in (DS3, DS4):
        assertDataFrameEqual(night(ds), night(DS), rtol=1e-5)
        assert len(night(ds)) == ROWS
        assert sorted(unscorable[unscorable["ds"] == dt.date.fromisoformat(ds)]["product_id"]) \
            == ["ZZ-EMPTY-1", "ZZ-EMPTY-2"]
    refused = CliRunner().invoke(app, ["night", "--ds", DS4, "--to-date", DS3])
    assert refused.exit_code != 0 and "before --ds" in refused.output


def test_bad_predictions_fail_the_gate_and_leave_the_warehouse_unchanged(scored: dict) -> None:
    import pandas as pd

    from hscode.quality import QualityGateError
    from jobs import publish_predictions

    settings = scored["settings"]
    catalog = Catalog.from_settings(settings)
    before = _table(settings, HS_PREDICTIONS)
    part = catalog.partition(catalog.predictions, DS)
    files = sorted(part.glob("*.parquet"))
    good = pd.concat([pd.read_parquet(f) for f in files])
    bad = good.copy()
    bad.loc[bad.index[0], "probability"] = 1.5
    bad.loc[bad.index[1], "predicted_hs6"] = "000000"  # not a subheading
    for f in files:
        f.unlink()
    bad.to_parquet(part / "part-bad.parquet", index=False)
    try:
        with pytest.raises(QualityGateError) as err:
            publish_predictions.run(_args(DS, validate_only=False), settings)
        assert "probability" in str(err.value) and "predicted_hs6" in str(err.value)
        assert _table(settings, HS_PREDICTIONS).equals(before)
    finally:
        (part / "part-bad.parquet").unlink()
        good.to_parquet(part / "part-good.parquet", index=False)


def test_same_publish_on_postgresql(scored: dict, pg_seeded_url: str) -> None:
    from jobs import check_drift, publish_predictions

    pg_url = pg_seeded_url
    settings = scored["settings"]
    pg = _settings(scored["home"], pg_url)
    for _ in range(2):  # a rerun leaves one set of rows
        published = publish_predictions.run(_args(DS, validate_only=False), pg)
        assert published["published_with"] == "spark"  # tasks COPY in parallel
        assert published["written"]["hs_predictions"] == published["predicted_rows"]
    check_drift.run(_args(DS), pg)
    with open_warehouse(pg_url) as wh:  # the session's database also holds other tests' dates
        got = wh.read_table(HS_PREDICTIONS)
        got = got.filter(pc.equal(got.column("ds"), pa.scalar(dt.date(2026, 11, 1))))
        n_queue = wh.execute("SELECT COUNT(*) FROM hs_review_queue WHERE ds = %s",
                             [dt.date(2026, 11, 1)])[0][0]
        drift_rows = wh.execute("SELECT COUNT(*) FROM hs_drift WHERE ds = %s",
                                [dt.date(2026, 11, 1)])[0][0]
    duck = _table(settings, HS_PREDICTIONS)
    duck = duck.filter(pc.equal(duck.column("ds"), pa.scalar(dt.date(2026, 11, 1))))
    assert got.num_rows == duck.num_rows
    assert got.sort_by("product_id").equals(duck.sort_by("product_id"))
    with warehouse_from_settings(settings) as wh:
        assert n_queue == wh.execute("SELECT COUNT(*) FROM hs_review_queue WHERE ds = ?",
                                     [dt.date(2026, 11, 1)])[0][0]
    assert drift_rows == 3


def test_pinning_an_unknown_model_version_is_a_clear_error(scored: dict, capsys) -> None:
    import os

    from jobs import score_catalog

    os.environ["HSCODE_PATHS__HOME"] = str(scored["home"])
    try:
        code = score_catalog.main(["--ds", DS, "--model-version", "42"])
    finally:
        del os.environ["HSCODE_PATHS__HOME"]
    assert code == 2
    assert "model version 42 is not in the registry" in capsys.readouterr().err


def test_evaluate_a_labelled_csv_through_the_pipeline_cleaning(
        scored: dict, shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pandas as pd
    from typer.testing import CliRunner

    from hscode.cli import app
    from tests.pipeline import job_env

    source = pd.read_csv(shared_data / "declarations.csv", dtype=str).iloc[50000:50300]
    bad = pd.DataFrame({"hs10": ["not-a-code", "9999990000"],
                        "goods_description": ["steel bolts", "an unknown subheading"]})
    csv = tmp_path / "labelled.csv"
    pd.concat([source, bad]).to_csv(csv, index=False)
    for name, value in job_env(scored["settings"]).items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "eval"
    result = CliRunner().invoke(app, ["evaluate", "--csv", str(csv), "--out", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "evaluation.json").read_text())
    rows = doc["rows"]
    assert rows["rows_read"] == 302 and rows["rejected"] >= 1 and rows["invalid_code"] >= 1
    assert rows["rows_read"] == (rows["rejected"] + rows["quarantined"] + rows["invalid_code"]
                                 + rows["evaluated"])
    (m,) = doc["models"]
    assert m["model"] == "textcnn" and m["rows"] == rows["evaluated"]
    assert m["hs2_accuracy"] >= m["hs4_accuracy"] >= m["hs6_accuracy"] > 0
    assert m["top3_accuracy"] >= m["hs6_accuracy"] and 0 <= m["ece"] <= 1
    assert m["threshold_chosen_on"] == "calibration"  # never chosen on the file itself
    assert "| textcnn |" in (out / "evaluation.md").read_text()
    # --all-candidates needs a selection run; this home has none
    missing = CliRunner().invoke(app, ["evaluate", "--csv", str(csv), "--all-candidates"])
    assert missing.exit_code != 0 and "hscode select" in str(missing.exception)
