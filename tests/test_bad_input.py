"""Bad-input battery through the real jobs: extract -> clean -> score -> publish.

An upstream system owns ``product_master`` and does not always keep its promises: the
battery writes a product master with one row per kind of bad input next to real products,
runs the nightly jobs through their CLI entry points (``main(argv)``: exit codes, run-date
lock) and checks, per row, that it was scored or quarantined with the expected reason, that
rows in = predictions + unscorable, and that the date published before is untouched. The
structural cases (no rows, a column missing, a column added, no table) either finish or
fail with a clear message, and change nothing that was published.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from hscode.catalog import Catalog
from hscode.config import Settings
from hscode.warehouse import warehouse_from_settings
from hscode.warehouse.schema import (
    HS_PREDICTIONS,
    HS_SCORING_RUNS,
    HS_UNSCORABLE,
    PRODUCT_MASTER,
)
from tests.pipeline import job_env, job_settings, seed_slice, table

pytestmark = pytest.mark.integration

GOOD_ROWS = 400
D0, D1, D2 = "2026-11-10", "2026-11-11", "2026-11-12"
PUBLISHED = (HS_PREDICTIONS, HS_UNSCORABLE, HS_SCORING_RUNS)
HUGE = "stainless steel hex bolt zinc plated " * 2800  # ~100 kB
SQL = "'; DROP TABLE hs_predictions; --"
UPDATED = dt.datetime(2026, 5, 1)


def _row(pid: str | None, short: str | None, medium: str | None = None,
         code: str | None = "731815", assurance: int | None = 4,
         updated: dt.datetime = UPDATED) -> dict:
    return {"product_id": pid, "short_description": short, "medium_description": medium,
            "etim_class": None, "region": "EU", "hs_code": code, "assurance_level": assurance,
            "updated_at": updated}


def _invalid_utf8_row(tmp: Path) -> dict:
    """A declaration whose bytes are not UTF-8, read by the seed's CSV reader."""
    from hscode.seed import read_source_csv

    csv = tmp / "latin1.csv"
    csv.write_bytes(b"hs10,goods_description\n7318150000,\"Schraube f\xfcr Stahl \xff\xfe bolt\"\n")
    parsed = read_source_csv(csv)
    text = parsed.rows.loc[0, "goods_description"]
    return _row("BAD-UTF8", text)


# product id -> expected outcome: ("scored", training quarantine reason or None)
#                                  or ("unscorable", catalog quarantine reason)
EXPECTED: dict[str | None, tuple[str, str | None]] = {
    "BAD-EMPTY": ("unscorable", "empty_text"),
    "BAD-NULL-TEXT": ("unscorable", "empty_text"),
    "BAD-WHITESPACE": ("unscorable", "empty_text"),
    "BAD-ONLY-SYMBOLS": ("unscorable", "empty_text"),
    "BAD-HUGE": ("unscorable", "text_too_long"),
    "BAD-CONTROL": ("scored", None),
    "BAD-CONTROL-ONLY": ("unscorable", "empty_text"),
    "BAD-UTF8": ("scored", None),
    "BAD-EMOJI": ("scored", None),
    "BAD-CHINESE": ("scored", None),
    "BAD-ARABIC": ("scored", None),
    "BAD-CYRILLIC": ("scored", None),
    "BAD-SQL-TEXT": ("scored", None),
    SQL: ("scored", None),  # a product id that looks like SQL
    "BAD-CODE-LETTERS": ("scored", "invalid_code"),
    "BAD-CODE-5": ("scored", "invalid_code"),
    "BAD-CODE-11": ("scored", "invalid_code"),
    "BAD-CODE-NULL": ("scored", "invalid_code"),
    "BAD-CODE-UNKNOWN": ("scored", "unknown_code"),
    "BAD-ASSURANCE-0": ("scored", "bad_assurance"),
    "BAD-ASSURANCE-5": ("scored", "bad_assurance"),
    "BAD-ASSURANCE-NULL": ("scored", "bad_assurance"),
    "BAD-DUP": ("scored", None),  # the latest of three copies; the others: see below
    "": ("unscorable", "missing_product_id"),
    "   ": ("unscorable", "missing_product_id"),
    None: ("unscorable", "missing_product_id"),
}


def bad_rows(tmp: Path) -> pd.DataFrame:
    rows = [
        _row("BAD-EMPTY", "", ""),
        _row("BAD-NULL-TEXT", None, None),
        _row("BAD-WHITESPACE", "  \t ", "\n"),
        _row("BAD-ONLY-SYMBOLS", "--- *** ///", "###"),
        _row("BAD-HUGE", "hex bolt", HUGE),
        _row("BAD-CONTROL", "steel\x00bolt\x07 zinc \x1b[31mplated", "m8\r\n\x0b\x0c hex nut"),
        _row("BAD-CONTROL-ONLY", "\x00\x01\x02", "\x7f"),
        _invalid_utf8_row(tmp),
        _row("BAD-EMOJI", "🔩 steel bolt 🔧", "zinc plated 👍🏽"),
        _row("BAD-CHINESE", "不锈钢螺栓", "六角 M8"),
        _row("BAD-ARABIC", "مسامير فولاذية", None),
        _row("BAD-CYRILLIC", "стальной болт", "оцинкованный"),
        _row("BAD-SQL-TEXT", SQL, "Robert'); DELETE FROM product_master; --"),
        _row(SQL, "steel hex bolt", None),
        _row("BAD-CODE-LETTERS", "steel hex bolt", code="73AB15"),
        _row("BAD-CODE-5", "steel hex bolt", code="73181"),
        _row("BAD-CODE-11", "steel hex bolt", code="73181500001"),
        _row("BAD-CODE-NULL", "steel hex bolt", code=None),
        _row("BAD-CODE-UNKNOWN", "steel hex bolt", code="000000"),
        _row("BAD-ASSURANCE-0", "steel hex bolt", assurance=0),
        _row("BAD-ASSURANCE-5", "steel hex bolt", assurance=5),
        _row("BAD-ASSURANCE-NULL", "steel hex bolt", assurance=None),
        _row("BAD-DUP", "steel hex bolt", updated=UPDATED + dt.timedelta(days=2)),
        _row("BAD-DUP", "cotton t-shirt", code="610910"),
        _row("BAD-DUP", "ceramic mug", code="691200"),
        _row("", "steel hex bolt"),
        _row("   ", "steel hex bolt"),
        _row(None, "steel hex bolt"),
    ]
    return pd.DataFrame(rows)


def _loose_product_master(settings: Settings, rows: pa.Table) -> None:
    """Replace product_master by a table without keys or NOT NULL (an upstream's table)."""
    sql_type = {"int": "INTEGER", "timestamp": "TIMESTAMP", "text": "VARCHAR"}
    cols = ", ".join(f"{c.name} {sql_type[c.type]}" for c in PRODUCT_MASTER.columns)
    import duckdb  # the upstream's own client: our Warehouse API refuses such rows

    with duckdb.connect(settings.warehouse_url[len("duckdb:///"):]) as con:
        con.execute("DROP TABLE IF EXISTS product_master")
        con.execute(f"CREATE TABLE product_master ({cols})")
        con.register("upstream_rows", rows)
        con.execute("INSERT INTO product_master SELECT * FROM upstream_rows")


def _as_table(df: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(df, preserve_index=False).cast(
        PRODUCT_MASTER.arrow_schema_for(lenient=True))


def run_jobs(settings: Settings, ds: str, jobs: tuple[str, ...] = (
        "extract_products", "clean_products", "score_catalog", "publish_predictions"),
             ) -> tuple[int, str]:
    """Run jobs through their CLI entry points; stop at the first failure.

    Returns:
        ``(exit code of the last job run, its stderr)``.
    """
    code, err = 0, ""
    with pytest.MonkeyPatch.context() as mp:
        for name, value in job_env(settings).items():
            mp.setenv(name, value)
        for job in jobs:
            module = importlib.import_module(f"jobs.{job}")
            buf = io.StringIO()
            with contextlib.redirect_stderr(buf), contextlib.redirect_stdout(io.StringIO()):
                code = module.main(["--ds", ds])
            err = buf.getvalue()
            if code != 0:
                break
    return code, err


def _published(settings: Settings) -> dict[str, pa.Table]:
    return {t.name: table(settings, t) for t in PUBLISHED}


def _on(t: pa.Table, ds: str) -> pa.Table:
    return t.filter(pc.equal(t.column("ds"), pa.scalar(dt.date.fromisoformat(ds))))


@pytest.fixture(scope="module")
def battery(textcnn: dict, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    home = tmp_path_factory.mktemp("battery")
    settings = job_settings(home)
    seed_slice(settings, GOOD_ROWS)
    artifact = textcnn["model"].artifact
    shutil.copytree(artifact, Catalog.from_settings(settings).models / "textcnn" / artifact.name)
    good = table(settings, PRODUCT_MASTER).to_pandas()
    _loose_product_master(settings, _as_table(good))
    assert run_jobs(settings, D0) == (0, "")  # a night already published
    before = _published(settings)
    bad = bad_rows(home)
    master = pd.concat([good, bad], ignore_index=True)
    _loose_product_master(settings, _as_table(master))
    code, err = run_jobs(settings, D1)
    yield {"settings": settings, "home": home, "good": good, "bad": bad, "master": master,
           "before": before, "code": code, "err": err}


def test_every_bad_row_is_scored_or_quarantined_with_its_reason(battery: dict) -> None:
    assert battery["code"] == 0, battery["err"]
    settings = battery["settings"]
    pred = _on(table(settings, HS_PREDICTIONS), D1).to_pandas()
    unscorable = _on(table(settings, HS_UNSCORABLE), D1).to_pandas()
    # rows in = rows scored + rows unscorable
    assert len(pred) + len(unscorable) == len(battery["master"])
    assert len(pred) == pred["product_id"].nunique()
    catalog = Catalog.from_settings(settings)
    quarantine = pd.read_parquet(catalog.partition(catalog.quarantine, D1))
    training_reason = quarantine[quarantine["scope"] == "training"].set_index("product_id")
    for pid, (outcome, reason) in EXPECTED.items():
        if outcome == "scored":
            assert (pred["product_id"] == pid).sum() == 1, pid
            got = training_reason["reason"].get(pid)
            assert got == reason, (pid, got, reason)
        else:
            hits = unscorable[unscorable["product_id"].isna()] if pid is None else \
                unscorable[unscorable["product_id"] == pid]
            assert set(hits["reason"]) == {reason}, (pid, hits)
            assert not (pred["product_id"] == pid).any(), pid
    # every good product with text is scored
    good = battery["good"]
    with_text = good["short_description"].notna() | good["medium_description"].notna()
    assert set(good.loc[with_text, "product_id"]) <= set(pred["product_id"])
    # the two older copies of BAD-DUP are unscorable duplicates; the newest was scored
    dups = unscorable[unscorable["product_id"] == "BAD-DUP"]
    assert list(dups["reason"]) == ["duplicate_product_id"] * 2
    assert pred.loc[pred["product_id"] == "BAD-DUP", "assigned_hs_code"].item() == "731815"


def test_bad_codes_are_scored_but_never_agree_or_train(battery: dict) -> None:
    settings = battery["settings"]
    pred = _on(table(settings, HS_PREDICTIONS), D1).to_pandas().set_index("product_id")
    with warehouse_from_settings(settings) as wh:
        codes = {r[0] for r in wh.execute("SELECT code FROM hs_nomenclature WHERE level = 6")}
    assert set(pred["predicted_hs6"]) <= codes  # only real subheadings are ever predicted
    for pid in ("BAD-CODE-LETTERS", "BAD-CODE-5", "BAD-CODE-11", "BAD-CODE-NULL"):
        assert pd.isna(pred.loc[pid, "assigned_hs6"]), pid
        assert pd.isna(pred.loc[pid, "agrees_with_assigned"]), pid
    assert pred.loc["BAD-CODE-LETTERS", "assigned_hs_code"] == "73AB15"  # kept as given
    catalog = Catalog.from_settings(settings)
    training = pd.read_parquet(catalog.partition(catalog.training_set, D1))
    assert not set(training["product_id"]) & {
        pid for pid, (_, reason) in EXPECTED.items() if reason}


def test_text_survives_as_data_not_code(battery: dict) -> None:
    settings = battery["settings"]
    catalog = Catalog.from_settings(settings)
    scoring = pd.read_parquet(catalog.partition(catalog.scoring_set, D1)).set_index("product_id")
    # the SQL-looking id and text are plain values; every table is still there
    assert scoring.loc[SQL, "text"] == "steel hex bolt"
    assert "drop table hs predictions robert delete" in scoring.loc["BAD-SQL-TEXT", "text"]
    with warehouse_from_settings(settings) as wh:
        assert wh.count(PRODUCT_MASTER) == len(battery["master"])
        assert wh.execute("SELECT COUNT(*) FROM hs_predictions WHERE product_id = ?",
                          [SQL])[0][0] == 1
    # non-Latin scripts and emoji: letters kept, symbols gone; control chars are spaces
    assert scoring.loc["BAD-CHINESE", "text"] == "不锈钢螺栓 六角 m8"
    assert scoring.loc["BAD-CYRILLIC", "text"] == "стальной болт оцинкованный"
    assert scoring.loc["BAD-EMOJI", "text"] == "steel bolt zinc plated"
    assert scoring.loc["BAD-CONTROL", "text"] == "steel bolt zinc 31mplated m8 hex nut"
    assert "\ufffd" in scoring.loc["BAD-UTF8", "raw_text"]  # undecodable bytes, marked
    unscorable = _on(table(settings, HS_UNSCORABLE), D1).to_pandas().set_index("product_id")
    assert len(unscorable.loc["BAD-HUGE", "raw_text"]) == 1000  # kept readable, not 100 kB
    assert unscorable.loc["BAD-CONTROL-ONLY", "raw_text"] == "\ufffd\ufffd\ufffd \ufffd"


def test_battery_publishes_on_postgresql_too(battery: dict, pg_seeded_url: str) -> None:
    """The same staged night on PostgreSQL: NUL-free quarantine text, same rows."""
    duck = battery["settings"]
    pg = job_settings(battery["home"], pg_seeded_url)
    assert run_jobs(pg, D1, ("publish_predictions",)) == (0, "")
    for t, key in ((HS_PREDICTIONS, ["product_id"]),
                   (HS_UNSCORABLE, ["product_id", "reason", "raw_text"])):
        got, want = (_on(table(s, t), D1).to_pandas().sort_values(key, na_position="first")
                     .reset_index(drop=True) for s in (pg, duck))
        pd.testing.assert_frame_equal(got, want)


def test_battery_left_the_earlier_night_untouched(battery: dict) -> None:
    after = _published(battery["settings"])
    for name, before in battery["before"].items():
        assert _on(after[name], D0).equals(_on(before, D0)), name


def _structural(battery: dict, change: str) -> tuple[int, str]:
    settings = battery["settings"]
    cols = [c.name for c in PRODUCT_MASTER.columns]
    with warehouse_from_settings(settings) as wh:
        wh.execute("DROP TABLE IF EXISTS product_master_saved")
        wh.execute("CREATE TABLE product_master_saved AS SELECT * FROM product_master")
        wh.execute(change)
    try:  # a structural change reaches the jobs through the extract: it stops there or is
        # conformed away (the later jobs read the snapshot, whose schema is fixed)
        return run_jobs(settings, D2, ("extract_products",))
    finally:
        with warehouse_from_settings(settings) as wh:
            wh.execute("DROP TABLE IF EXISTS product_master")
            wh.execute("CREATE TABLE product_master AS SELECT " + ", ".join(cols)
                       + " FROM product_master_saved")


@pytest.mark.parametrize(("change", "exit_code", "message"), [
    ("DELETE FROM product_master", 3, "expect_table_row_count_to_be_between(min_value=215, "
     "max_value=646); observed 0"),
    ("ALTER TABLE product_master DROP COLUMN etim_class", 2,
     "warehouse table product_master lacks column(s) ['etim_class']"),
    ("DROP TABLE product_master", 2, "warehouse table product_master does not exist"),
    ("ALTER TABLE product_master ADD COLUMN supplier_notes VARCHAR", 0, ""),
], ids=["zero_rows", "missing_column", "missing_table", "extra_column"])
def test_structural_change_finishes_or_fails_clearly(battery: dict, change: str,
                                                     exit_code: int, message: str) -> None:
    settings = battery["settings"]
    catalog = Catalog.from_settings(settings)
    before = _published(settings)
    code, err = _structural(battery, change)
    assert code == exit_code, err
    assert message in err
    after = _published(settings)
    for name in before:
        assert _on(after[name], D0).equals(_on(before[name], D0)), name
        assert _on(after[name], D1).equals(_on(before[name], D1)), name
    if exit_code:
        assert not catalog.partition(catalog.raw_products, D2).exists()  # nothing downstream
        assert _on(after["hs_predictions"], D2).num_rows == 0
    else:  # the extra column is reported and not read; the whole catalog is staged
        extract = json.loads((catalog.run_dir(D2) / "extract_products.json").read_text())
        assert extract["ignored_columns"] == ["supplier_notes"]
        snapshot = pd.read_parquet(catalog.partition(catalog.raw_products, D2))
        assert extract["rows"] == len(snapshot) == len(battery["master"])
        assert "supplier_notes" not in snapshot.columns
