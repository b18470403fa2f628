"""Reviews in the warehouse: what validation needs to know, and recording decisions.

Every write is one transaction: a file's decisions and its rejects land together or not at
all, and importing the same file again records nothing new (decisions are keyed by their
digest, a file's rejects by the digest of its contents and replaced).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa

from hscode.review.decisions import COLUMNS, Known, Outcome, Prediction, hs6_of, validate
from hscode.warehouse import Warehouse, hs6_codes
from hscode.warehouse import reviews as reviews_sql
from hscode.warehouse.schema import HS_CODE_REVIEWS, HS_REVIEW_REJECTS

MAX_FILE_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class ImportReport:
    """What an import did."""

    source: str
    import_id: str
    rows: int
    recorded: int
    rejected: int
    already_recorded: int
    reasons: dict[str, int]

    def summary(self) -> str:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.reasons.items())) or "none"
        return (f"{self.source}: {self.rows} rows -> {self.recorded} recorded, "
                f"{self.already_recorded} already recorded, {self.rejected} rejected "
                f"({reasons})")


def known(wh: Warehouse, product_id: str | None = None,
          codes: frozenset[str] | None = None) -> Known:
    """Products (fingerprint, assigned HS6), HS 2022 codes, each product's newest
    prediction and the recorded review ids, read from the warehouse (for every product, or
    only ``product_id``; ``codes`` when the caller has them already)."""
    products = {pid: (fp, hs6_of(code or "")) for pid, (fp, code) in
                reviews_sql.product_fingerprints(wh, product_id).items()}
    predictions = {r[0]: Prediction(r[1], r[2], float(r[3]), r[4])
                   for r in reviews_sql.newest_predictions(wh, product_id)}
    return Known(products, codes if codes is not None else frozenset(hs6_codes(wh)),
                 predictions, reviews_sql.recorded_review_ids(wh, product_id))


def record(wh: Warehouse, outcome: Outcome, import_id: str | None = None,
           source: str = "", now: dt.datetime | None = None) -> None:
    """Append the accepted decisions and (for an import) replace its rejects, in ONE
    transaction."""
    steps = [(HS_CODE_REVIEWS, _arrow(outcome.accepted, HS_CODE_REVIEWS), "FALSE", ())]
    if import_id is not None:
        # the same file again: a reject it had already keeps its first time (nothing changes)
        before = {(r[0], r[1]): r[4] for r in reviews_sql.import_rejects(wh, import_id)}
        rejects = outcome.rejected.assign(import_id=import_id, source=source)
        rejects["rejected_at"] = [before.get((r, why), now) for r, why in
                                  zip(rejects.get("source_row", []), rejects.get("reason", []),
                                      strict=True)]
        steps.append((HS_REVIEW_REJECTS, _arrow(rejects, HS_REVIEW_REJECTS),
                      reviews_sql.import_filter(wh), (import_id,)))
    wh.delete_and_insert(steps)


def _arrow(frame: pd.DataFrame, table) -> pa.Table:
    if frame.empty:
        return table.arrow_schema.empty_table()
    return pa.Table.from_pandas(frame.reindex(columns=table.column_names),
                                schema=table.arrow_schema, preserve_index=False)


def read_csv(path: Path) -> pd.DataFrame:
    """A reviewer's spreadsheet (CSV, UTF-8, a header row), every cell as text.

    Raises:
        ValueError: the file is too large, not UTF-8 or not CSV (nothing is imported).
    """
    data = path.read_bytes()
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"{path}: {len(data)} bytes, over the {MAX_FILE_BYTES} an import takes")
    try:
        frame = pd.read_csv(io.StringIO(data.decode("utf-8-sig")), dtype=str,
                            keep_default_na=False, skipinitialspace=True)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ValueError(f"{path}: not a readable UTF-8 CSV file ({exc})") from exc
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    return frame


def import_file(wh: Warehouse, path: Path, reviewer: str | None = None,
                now: dt.datetime | None = None) -> ImportReport:
    """Validate and record a reviewer's CSV (columns: ``product_id, decision`` and
    optionally ``hs6, reviewer, decided_at, note``) in one transaction.

    Raises:
        ValueError: the file is unreadable or lacks a required column (nothing recorded).
    """
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    import_id = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    source = f"import:{path.name}"
    raw = read_csv(path)
    wh.ensure_schema()
    outcome = validate(raw, known(wh), source, now, reviewer)
    record(wh, outcome, import_id, source, now)
    reasons = outcome.rejected["reason"].value_counts().to_dict() if len(outcome.rejected) \
        else {}
    return ImportReport(source, import_id, len(raw), len(outcome.accepted),
                        len(outcome.rejected), outcome.already_recorded,
                        {str(k): int(v) for k, v in reasons.items()})


def retrain_due(settings) -> dict:
    """Whether reviewers have decided enough since the last retrain (the registry's latest
    promotion decision, promoted or not) to ask for the next: ``review.retrain_after``
    decisions recorded after it. Returns the count, the time and whether it is due."""
    from hscode.catalog import Catalog
    from hscode.selection.registry import Registry
    from hscode.warehouse import warehouse_from_settings

    decisions = Registry(Catalog.from_settings(settings).registry).decisions()
    since = dt.datetime.fromisoformat(decisions[-1]["at"]).astimezone(dt.UTC).replace(
        tzinfo=None) if decisions else None
    with warehouse_from_settings(settings) as wh:
        count = reviews_sql.decisions_recorded_since(wh, since)
    threshold = settings.review.retrain_after
    return {"decisions": count, "since": since.isoformat() if since else None,
            "threshold": threshold, "due": bool(threshold) and count >= threshold}


__all__ = ["COLUMNS", "ImportReport", "import_file", "known", "read_csv", "record", "retrain_due"]
