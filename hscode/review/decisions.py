"""Reviewers' decisions: validate raw rows (a spreadsheet's, the review page's) into
``hs_code_reviews`` rows, and the rest into rejects with a reason.

Pure: the caller passes what the warehouse knows (:class:`Known`). Nothing is half-applied:
a row is either a whole decision or a reject, and ``accepted + rejected + already recorded``
is every input row.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from hscode.codes import CODE_SEPARATORS, NATIONAL_CODE

DECISIONS = ("confirmed", "corrected", "not_classifiable")
COLUMNS = ("product_id", "decision", "hs6", "reviewer", "decided_at", "note")
REQUIRED = ("product_id", "decision")  # the others may be absent from a file
NOTE_CHARS = 2000


@dataclass(frozen=True)
class Prediction:
    """The newest prediction of a product: what a reviewer saw in the queue."""

    ds: dt.date
    hs6: str
    probability: float
    model_version: str


@dataclass(frozen=True)
class Known:
    """What the warehouse knows, for validating decisions.

    Attributes:
        products: product id -> (fingerprint of its row as it is now, assigned HS6 or None).
        codes: the HS 2022 subheadings.
        predictions: product id -> its newest prediction.
        recorded: review ids already in ``hs_code_reviews``.
    """

    products: Mapping[str, tuple[str, str | None]]
    codes: frozenset[str]
    predictions: Mapping[str, Prediction] = field(default_factory=dict)
    recorded: frozenset[str] = frozenset()


@dataclass
class Outcome:
    """Validated rows: ``accepted`` (hs_code_reviews columns), ``rejected`` (source row,
    reason, raw values) and how many were recorded already."""

    accepted: pd.DataFrame
    rejected: pd.DataFrame
    already_recorded: int


def hs6_of(code: str) -> str | None:
    """The HS6 of a 6/8/10-digit code (spaces and dots ignored), else None."""
    digits = re.sub(CODE_SEPARATORS, "", code or "")
    return digits[:6] if re.fullmatch(NATIONAL_CODE, digits) else None


def review_id(product_id: str, fingerprint: str, decision: str, hs6: str | None,
              reviewer: str, decided_at: str, note: str) -> str:
    """A decision's identity: the digest of the product as reviewed, what was decided, by
    whom and when (as given; empty when the file gave no time), so that importing a file
    again records nothing, while the same decision on a changed product is a new one."""
    text = "\x1f".join([product_id, fingerprint, decision, hs6 or "", reviewer, decided_at,
                        note])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _timestamp(text: str, now: dt.datetime) -> dt.datetime | None:
    """``text`` (ISO 8601; a zone converted to UTC) as a naive UTC time; ``now`` if empty;
    None when unreadable."""
    if not text:
        return now
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _check(row: Mapping[str, str], known: Known, now: dt.datetime
           ) -> tuple[str | None, dict]:
    """(reason, None-ish) for a bad row, else (None, the decision's fields)."""
    pid, decision = row["product_id"], row["decision"].lower().replace(" ", "_")
    if not pid:
        return "missing_product_id", {}
    if pid not in known.products:
        return "unknown_product", {}
    if decision not in DECISIONS:
        return "bad_decision", {}
    if not row["reviewer"]:
        return "missing_reviewer", {}
    decided_at = _timestamp(row["decided_at"], now)
    if decided_at is None:
        return "bad_timestamp", {}
    if decided_at > now + dt.timedelta(minutes=5):
        return "decided_in_the_future", {}
    if len(row["note"]) > NOTE_CHARS:
        return "note_too_long", {}
    prediction = known.predictions.get(pid)
    fingerprint, assigned = known.products[pid]
    hs6 = hs6_of(row["hs6"]) if row["hs6"] else None
    if row["hs6"] and hs6 is None:
        return "malformed_code", {}
    if decision == "not_classifiable":
        if hs6:
            return "code_with_not_classifiable", {}
    elif hs6 is None:
        if decision == "corrected" or prediction is None:
            return "missing_code", {}
        hs6 = prediction.hs6  # "confirmed" alone confirms the code the queue showed
    if hs6 is not None and hs6 not in known.codes:
        return "unknown_code", {}
    if decision == "confirmed" and prediction is not None and hs6 != prediction.hs6:
        return "confirmed_code_is_not_the_prediction", {}
    return None, {
        "review_id": review_id(pid, fingerprint, decision, hs6, row["reviewer"],
                               row["decided_at"], row["note"]),
        "product_id": pid, "decision": decision, "decided_hs6": hs6,
        "reviewer": row["reviewer"], "decided_at": decided_at, "note": row["note"] or None,
        "product_fingerprint": fingerprint, "assigned_hs6": assigned,
        "reviewed_ds": prediction.ds if prediction else None,
        "reviewed_hs6": prediction.hs6 if prediction else None,
        "reviewed_probability": prediction.probability if prediction else None,
        "reviewed_model_version": prediction.model_version if prediction else None,
    }


def validate(raw: pd.DataFrame, known: Known, source: str, now: dt.datetime,
             reviewer: str | None = None) -> Outcome:
    """Split ``raw`` (columns of :data:`COLUMNS`; text) into decisions and rejects.

    Args:
        raw: The rows as read (every cell text; missing optional columns are empty).
        known: What the warehouse knows (products, codes, predictions, recorded reviews).
        source: Where the rows come from (``import:<file>``, ``page``), kept on each row.
        now: The time of recording (naive UTC); a row without ``decided_at`` gets it.
        reviewer: Who decided rows that name nobody (e.g. ``--reviewer`` of an import).

    Raises:
        ValueError: when a required column is missing (nothing of the file is usable).
    """
    missing = [c for c in REQUIRED if c not in raw.columns]
    if missing:
        raise ValueError(f"review rows lack column(s) {missing}: expected {list(COLUMNS)}")
    rows = raw.reindex(columns=list(COLUMNS)).fillna("").astype(str).apply(
        lambda col: col.str.strip())
    if reviewer:
        rows.loc[rows["reviewer"] == "", "reviewer"] = reviewer
    accepted, rejected, seen, already = [], [], set(), 0
    for i, row in enumerate(rows.to_dict("records"), start=1):
        reason, decision = _check(row, known, now)
        if reason is None:
            if decision["review_id"] in seen:
                reason = "duplicate_in_file"
            else:
                seen.add(decision["review_id"])
                if decision["review_id"] in known.recorded:
                    already += 1
                    continue
        if reason is not None:
            rejected.append({"source_row": i, "reason": reason,
                             **{f"raw_{c}": row[c] or None for c in
                                ("product_id", "decision", "hs6", "reviewer", "decided_at")}})
            continue
        accepted.append({**decision, "source": source, "recorded_at": now})
    return Outcome(pd.DataFrame(accepted), pd.DataFrame(rejected), already)
