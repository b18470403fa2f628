"""The review tables' queries (SQL is assembled only in this package, from quoted
identifiers; values are bound parameters)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hscode.warehouse.base import Warehouse
from hscode.warehouse.schema import (
    HS_CODE_REVIEWS,
    HS_PREDICTIONS,
    HS_REVIEW_REJECTS,
    PRODUCT_MASTER,
    ident,
    product_fingerprint,
)


def product_fingerprints(wh: Warehouse) -> dict[str, tuple[str, str | None]]:
    """product id -> (fingerprint of its row now, its assigned code as stored)."""
    return {r[0]: (r[1], r[2]) for r in wh.execute(
        f"SELECT m.{ident('product_id')}, {product_fingerprint('m')}, m.{ident('hs_code')} "
        f"FROM {ident(PRODUCT_MASTER.name)} m")}


def newest_predictions(wh: Warehouse) -> list[tuple[str, dt.date, str, float, str]]:
    """Each product's newest prediction: ``(product_id, ds, hs6, probability, version)``."""
    pid, ds = ident("product_id"), ident("ds")
    return wh.execute(
        f"SELECT {pid}, {ds}, {ident('predicted_hs6')}, {ident('probability')}, "
        f"{ident('model_version')} FROM (SELECT p.*, row_number() OVER (PARTITION BY {pid} "
        f"ORDER BY {ds} DESC) AS {ident('newest')} FROM {ident(HS_PREDICTIONS.name)} p) t "
        f"WHERE {ident('newest')} = 1")


def recorded_review_ids(wh: Warehouse) -> frozenset[str]:
    """The ids of every decision in ``hs_code_reviews``."""
    return frozenset(r[0] for r in wh.execute(
        f"SELECT {ident('review_id')} FROM {ident(HS_CODE_REVIEWS.name)}"))


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
