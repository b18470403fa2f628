"""The review tables' queries (SQL is assembled only in this package, from quoted
identifiers; values are bound parameters)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa

from hscode.warehouse.base import Warehouse
from hscode.warehouse.schema import (
    HS_CODE_REVIEWS,
    HS_PREDICTIONS,
    HS_REVIEW_REJECTS,
    PRODUCT_MASTER,
    ident,
    idents,
    product_fingerprint,
)


def _one(wh: Warehouse, alias: str, product_id: str | None) -> tuple[str, tuple]:
    """A WHERE clause keeping one product (or every product) and its parameters."""
    if product_id is None:
        return "", ()
    return f" WHERE {alias}.{ident('product_id')} = {wh.param}", (product_id,)


def product_fingerprints(wh: Warehouse, product_id: str | None = None
                         ) -> dict[str, tuple[str, str | None]]:
    """product id -> (fingerprint of its row now, its assigned code as stored); every
    product, or only ``product_id``."""
    where, params = _one(wh, "m", product_id)
    return {r[0]: (r[1], r[2]) for r in wh.execute(
        f"SELECT m.{ident('product_id')}, {product_fingerprint('m')}, m.{ident('hs_code')} "
        f"FROM {ident(PRODUCT_MASTER.name)} m{where}", params)}


def newest_predictions(wh: Warehouse, product_id: str | None = None
                       ) -> list[tuple[str, dt.date, str, float, str]]:
    """Each product's newest prediction: ``(product_id, ds, hs6, probability, version)``."""
    pid, ds = ident("product_id"), ident("ds")
    where, params = _one(wh, "p", product_id)
    return wh.execute(
        f"SELECT {pid}, {ds}, {ident('predicted_hs6')}, {ident('probability')}, "
        f"{ident('model_version')} FROM (SELECT p.*, row_number() OVER (PARTITION BY {pid} "
        f"ORDER BY {ds} DESC) AS {ident('newest')} FROM {ident(HS_PREDICTIONS.name)} p{where})"
        f" t WHERE {ident('newest')} = 1", params)


def recorded_review_ids(wh: Warehouse, product_id: str | None = None) -> frozenset[str]:
    """The ids of the decisions in ``hs_code_reviews`` (of one product, or all)."""
    where, params = _one(wh, "r", product_id)
    return frozenset(r[0] for r in wh.execute(
        f"SELECT r.{ident('review_id')} FROM {ident(HS_CODE_REVIEWS.name)} r{where}", params))


QUEUE_COLUMNS = ("product_id", "short_description", "medium_description", "etim_class",
                 "assigned_hs6", "predicted_hs6", "probability", "top2_hs6",
                 "top2_probability", "top3_hs6", "top3_probability", "agrees_with_assigned",
                 "review_reason", "model_version")


def latest_run_date(wh: Warehouse) -> dt.date | None:
    """The newest run date with predictions."""
    return wh.execute(f"SELECT MAX({ident('ds')}) FROM {ident(HS_PREDICTIONS.name)}")[0][0]


def queue_page(wh: Warehouse, ds: dt.date, limit: int, offset: int
               ) -> tuple[int, list[dict[str, Any]]]:
    """The review queue of ``ds`` by business priority: products whose prediction disputes
    their assigned code first, then the least confident; ``(rows in all, this page)``."""
    queue = f"{ident('hs_review_queue')} q"
    on_date = f"q.{ident('ds')} = CAST({wh.param} AS DATE)"
    total = wh.execute(f"SELECT COUNT(*) FROM {queue} WHERE {on_date}", (ds.isoformat(),))
    master = {"short_description", "medium_description", "etim_class"}
    cols = ", ".join(f"{'m' if c in master else 'q'}.{ident(c)}" for c in QUEUE_COLUMNS)
    rows = wh.execute(
        f"SELECT {cols} FROM {queue} LEFT JOIN {ident(PRODUCT_MASTER.name)} m "
        f"ON m.{ident('product_id')} = q.{ident('product_id')} WHERE {on_date} "
        f"ORDER BY CASE WHEN q.{ident('agrees_with_assigned')} = FALSE THEN 0 ELSE 1 END, "
        f"q.{ident('probability')}, q.{ident('product_id')} LIMIT {int(limit)} "
        f"OFFSET {int(offset)}", (ds.isoformat(),))
    return int(total[0][0]), [dict(zip(QUEUE_COLUMNS, r, strict=True)) for r in rows]


def nomenclature(wh: Warehouse) -> list[tuple[str, int, str]]:
    """Every HS heading and subheading: ``(code, level, description)`` by code."""
    return wh.execute(
        f"SELECT {ident('code')}, {ident('level')}, {ident('description')} FROM "
        f"{ident('hs_nomenclature')} WHERE {ident('level')} IN (4, 6) ORDER BY {ident('code')}")


def import_rejects(wh: Warehouse, import_id: str, limit: int | None = None
                   ) -> list[tuple[Any, ...]]:
    """An import's rejects: ``(source_row, reason, raw_product_id, raw_hs6, rejected_at)``
    in row order."""
    tail = f" LIMIT {int(limit)}" if limit is not None else ""
    return wh.execute(
        f"SELECT {ident('source_row')}, {ident('reason')}, {ident('raw_product_id')}, "
        f"{ident('raw_hs6')}, {ident('rejected_at')} FROM {ident(HS_REVIEW_REJECTS.name)} "
        f"WHERE {ident('import_id')} = {wh.param} ORDER BY {ident('source_row')}{tail}",
        (import_id,))


def import_filter(wh: Warehouse) -> str:
    """The WHERE clause selecting one import's rejects (its id bound as the parameter)."""
    return f"{ident('import_id')} = {wh.param}"


def read_reviews(wh: Warehouse) -> pa.Table:
    """Every decision (``review_id, product_id, decision, decided_hs6, decided_at,
    product_fingerprint``); none when the warehouse predates the review tables."""
    cols = ("review_id", "product_id", "decision", "decided_hs6", "decided_at",
            "product_fingerprint")
    schema = pa.schema([f for f in HS_CODE_REVIEWS.arrow_schema if f.name in cols])
    if not wh.columns_of(HS_CODE_REVIEWS.name):
        return schema.empty_table()
    return wh.read_arrow(f"SELECT {idents(list(cols))} FROM {ident(HS_CODE_REVIEWS.name)}"
                         ).cast(schema)


def decisions_recorded_since(wh: Warehouse, since: dt.datetime | None) -> int:
    """How many decisions were recorded after ``since`` (naive UTC; None: ever)."""
    if not wh.columns_of(HS_CODE_REVIEWS.name):
        return 0
    table = ident(HS_CODE_REVIEWS.name)
    if since is None:
        return int(wh.execute(f"SELECT COUNT(*) FROM {table}")[0][0])
    return int(wh.execute(f"SELECT COUNT(*) FROM {table} WHERE {ident('recorded_at')} > "
                          f"{wh.param}", (since,))[0][0])
