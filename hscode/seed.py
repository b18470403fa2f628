"""Seed the demo warehouse from the reference declarations and the HS nomenclature.

The declarations carry only a 10-digit national code and one free-text description. The
product-master columns they lack are derived **deterministically** from a stable product id,
so seeding twice yields the same tables:

* ``product_id``: ``P`` + 16 hex digits of SHA-256 over ``hs10 | description | k``, where
  ``k`` counts earlier identical (code, description) rows. Stable under row reordering.
  An input that has a ``product_id`` column keeps its ids.
* ``short_description`` / ``medium_description``: the text split at its first line break,
  else at the last word boundary before ``seed.short_description_chars``; the two parts
  joined with a space give back the original text.
* ``hs_code``: the first six digits (HS subheading) of the national code.
* ``region``: ``seed.regions[h % n]`` with ``h`` a hash of the product id.
* ``assurance_level``: drawn from ``seed.assurance_shares`` by a hash of the product id, and
  capped at ``seed.conflicting_max_assurance`` when the same description (case- and
  space-insensitive) appears with more than one HS6 code: such labels are not trustworthy.
* ``updated_at``: ``seed.updated_at_base`` plus a hash-derived number of minutes (< 1 year).

Rows that cannot be loaded land in ``seed_rejects`` with one reason each (see
:data:`REJECT_REASONS`); ``rows_read == loaded + rejected`` is checked on every seed.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa

from hscode.codes import CODE_SEPARATORS, NATIONAL_CODE
from hscode.config import SeedSettings, Settings
from hscode.warehouse import Warehouse
from hscode.warehouse.schema import HS_NOMENCLATURE, HS_SECTIONS, PRODUCT_MASTER, SEED_REJECTS

SEED_TABLES = (PRODUCT_MASTER, SEED_REJECTS, HS_NOMENCLATURE, HS_SECTIONS)  # what a seed replaces

REJECT_REASONS = (
    "malformed_row",  # wrong number of CSV fields
    "empty_description",
    "malformed_code",  # not 6, 8 or 10 digits after removing spaces and dots
    "unknown_assurance_level",  # present but not an integer 1-4
    "missing_product_id",  # the input has a product_id column and this row's is empty
    "duplicate_product_id",  # a later row reusing a product id already loaded
)
CODE_COLUMNS = ("hs10", "hs_code")
DESCRIPTION_COLUMN = "goods_description"
_CODE_SEPARATORS = re.compile(CODE_SEPARATORS)
_EMPTY_TEXT = re.compile(r"^(?:\s|_x000D_)*$")


@dataclass
class ParsedCsv:
    """A CSV read record by record: good rows as a DataFrame, malformed ones as rejects."""

    rows: pd.DataFrame  # all columns as str, plus ``source_row`` (1-based record number)
    rejects: pd.DataFrame
    rows_read: int


@dataclass
class SeedReport:
    """What a seed did, for the CLI and for tests."""

    rows_read: int
    loaded: int
    rejected: Counter[str] = field(default_factory=Counter)
    nomenclature_rows: int = 0
    section_rows: int = 0

    @property
    def balanced(self) -> bool:
        return self.rows_read == self.loaded + sum(self.rejected.values())


def _reject_frame(
    source_file: str, rows: pd.DataFrame | None = None, reason: pd.Series | str | None = None
) -> pd.DataFrame:
    if rows is None or rows.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in SEED_REJECTS.column_names})

    def col(name: str) -> pd.Series:
        return rows[name] if name in rows else pd.Series([None] * len(rows), index=rows.index)

    code_col = next((c for c in CODE_COLUMNS if c in rows), None)
    return pd.DataFrame(
        {
            "source_file": source_file,
            "source_row": rows["source_row"].astype("int64"),
            "reason": reason,
            "raw_code": rows[code_col] if code_col else None,
            "raw_description": col(DESCRIPTION_COLUMN),
            "raw_assurance_level": col("assurance_level"),
        }
    )


def read_source_csv(path: Path) -> ParsedCsv:
    """Read a declarations-style CSV: quoted line breaks kept, every value a string.

    A UTF-8 byte-order mark is skipped; undecodable bytes become U+FFFD instead of failing.
    Records whose field count differs from the header are rejected as ``malformed_row``.
    """
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as fh:
        reader = csv.reader(fh)
        header = [h.strip().lower() for h in next(reader, [])]
        good, bad = [], []
        for number, record in enumerate(reader, start=1):
            (good if len(record) == len(header) else bad).append((number, record))
    rows = pd.DataFrame([r for _, r in good], columns=header, dtype=object)
    rows.insert(0, "source_row", [n for n, _ in good])
    bad_rows = pd.DataFrame(
        {"source_row": [n for n, _ in bad], DESCRIPTION_COLUMN: [",".join(r) for _, r in bad]}
    )
    rejects = _reject_frame(path.name, bad_rows, "malformed_row")
    return ParsedCsv(rows=rows, rejects=rejects, rows_read=len(good) + len(bad))


def normalise_code(raw: pd.Series) -> pd.Series:
    """Digits of a national code with spaces/dots removed, or ``None`` if malformed."""
    digits = raw.fillna("").astype(str).str.replace(_CODE_SEPARATORS, "", regex=True)
    ok = digits.str.fullmatch(NATIONAL_CODE)
    return digits.where(ok, None)


def _hash_ints(keys: pd.Series, salt: str) -> pd.Series:
    return keys.map(lambda k: int.from_bytes(hashlib.sha256(f"{salt}|{k}".encode()).digest()[:8]))


def derive_product_ids(codes: pd.Series, texts: pd.Series) -> pd.Series:
    """Stable ids from (code, text, occurrence index of that pair)."""
    pair = codes + "|" + texts
    occurrence = pair.groupby(pair).cumcount().astype(str)
    return (pair + "|" + occurrence).map(
        lambda s: "P" + hashlib.sha256(s.encode()).hexdigest()[:16]
    )


def split_description(text: str, short_chars: int) -> tuple[str, str | None]:
    """Split a description into (short, medium); ``short + ' ' + medium`` is the text."""
    text = text.strip()
    head, sep, tail = text.partition("\n")
    if sep:
        return head.strip(), (tail.strip() or None)
    if len(text) <= short_chars:
        return text, None
    cut = text.rfind(" ", 0, short_chars + 1)
    cut = cut if cut > 0 else short_chars
    return text[:cut].rstrip(), (text[cut:].lstrip() or None)


def draw_assurance(
    ids: pd.Series, conflicting: pd.Series, cfg: SeedSettings
) -> pd.Series:
    """Assurance level per product from the configured shares, capped for conflicting text."""
    u = _hash_ints(ids, "assurance") / float(1 << 64)
    bounds = pd.Series(cfg.assurance_shares).sort_index().cumsum()
    level = pd.Series(4, index=ids.index)
    for lvl in sorted(bounds.index, reverse=True):
        level = level.where(u >= bounds[lvl], lvl)
    return level.where(~conflicting, level.clip(upper=cfg.conflicting_max_assurance))


def build_product_master(
    parsed: pd.DataFrame, cfg: SeedSettings, source_file: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Turn parsed source rows into product-master rows and reject rows.

    Args:
        parsed: Rows from :func:`read_source_csv` (strings, with ``source_row``).
        cfg: Seed settings (regions, assurance shares, ...).
        source_file: File name recorded on rejects.

    Returns:
        ``(products, rejects)``; every input row is in exactly one of them.

    Raises:
        ValueError: when the input lacks a code or a description column.
    """
    code_col = next((c for c in CODE_COLUMNS if c in parsed), None)
    if code_col is None or DESCRIPTION_COLUMN not in parsed:
        raise ValueError(
            f"{source_file}: need columns {' or '.join(CODE_COLUMNS)} and {DESCRIPTION_COLUMN}; "
            f"found {[c for c in parsed.columns if c != 'source_row']}"
        )
    df = parsed.copy()
    reason = pd.Series(None, index=df.index, dtype=object)

    def flag(mask: pd.Series, why: str) -> None:
        reason.loc[mask & reason.isna()] = why

    df[DESCRIPTION_COLUMN] = df[DESCRIPTION_COLUMN].fillna("")
    flag(df[DESCRIPTION_COLUMN].str.match(_EMPTY_TEXT), "empty_description")
    code = normalise_code(df[code_col])
    flag(code.isna(), "malformed_code")
    if "assurance_level" in df:
        given = pd.to_numeric(df["assurance_level"].str.strip(), errors="coerce")
        flag(~given.isin([1, 2, 3, 4]), "unknown_assurance_level")
    if "product_id" in df:
        pid = df["product_id"].fillna("").str.strip()
        flag(pid == "", "missing_product_id")
        alive = reason.isna()
        dup = pid[alive].duplicated().reindex(pid.index, fill_value=False)
        flag(dup, "duplicate_product_id")

    bad = reason.notna()
    rejects = _reject_frame(source_file, df[bad], reason[bad])
    ok = df[~bad]
    code = code[~bad]
    text = ok[DESCRIPTION_COLUMN].str.replace("\r\n", "\n").str.strip()

    ids = ok["product_id"].str.strip() if "product_id" in ok else derive_product_ids(code, text)
    h = _hash_ints(ids, "demo")
    parts = [split_description(t, cfg.short_description_chars) for t in text]
    hs6 = code.str[:6]
    norm_text = text.str.lower().str.split().str.join(" ")
    conflicting = hs6.groupby(norm_text).transform("nunique") > 1
    if "assurance_level" in ok:
        assurance = pd.to_numeric(ok["assurance_level"].str.strip()).astype(int)
    else:
        assurance = draw_assurance(ids, conflicting, cfg)
    regions = list(cfg.regions)
    base = datetime.fromisoformat(cfg.updated_at_base)
    products = pd.DataFrame(
        {
            "product_id": ids,
            "short_description": [p[0] for p in parts],
            "medium_description": [p[1] for p in parts],
            "etim_class": ok["etim_class"] if "etim_class" in ok else None,
            "region": ok["region"] if "region" in ok else h.map(lambda x: regions[x % len(regions)]),
            "hs_code": hs6,
            "assurance_level": assurance.astype("int32"),
            "updated_at": h.map(lambda x: base + timedelta(minutes=int(x % (365 * 24 * 60)))),
        }
    )
    return products.sort_values("product_id", kind="stable"), rejects


def read_nomenclature(path: Path) -> pd.DataFrame:
    """HS nomenclature rows (code, level, description, parent, section); codes keep zeros."""
    raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    return pd.DataFrame(
        {
            "code": raw["hscode"].str.strip(),
            "level": raw["level"].astype("int32"),
            "description": raw["description"],
            "parent": raw["parent"].where(raw["parent"].str.fullmatch(r"\d+"), None),
            "section": raw["section"],
        }
    )


def read_sections(path: Path) -> pd.DataFrame:
    """HS sections (section, name); the file starts with a byte-order mark."""
    raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    return raw[["section", "name"]]


def _arrow(df: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(df, preserve_index=False)


def seed_warehouse(
    settings: Settings,
    warehouse: Warehouse,
    declarations: Path | None = None,
    step: Callable[[str], None] = lambda _msg: None,
) -> SeedReport:
    """Load declarations and nomenclature into the warehouse, replacing what was there.

    Args:
        settings: Run settings (sources, seed parameters).
        warehouse: An open warehouse.
        declarations: Source CSV (default: ``sources.declarations_csv``).
        step: Called with a message before each stage (progress display).

    Raises:
        RuntimeError: if rows read != loaded + rejected (nothing would be written).
    """
    src = declarations or settings.source("declarations_csv")
    step(f"reading {src}")
    parsed = read_source_csv(src)
    step("deriving product master")
    products, rejects = build_product_master(parsed.rows, settings.seed, src.name)
    rejects = pd.concat([parsed.rejects, rejects], ignore_index=True)
    report = SeedReport(
        rows_read=parsed.rows_read, loaded=len(products), rejected=Counter(rejects["reason"])
    )
    if not report.balanced:
        raise RuntimeError(f"seed lost rows: {report}")
    step("reading nomenclature")
    nomenclature = read_nomenclature(settings.source("nomenclature_csv"))
    sections = read_sections(settings.source("sections_csv"))
    step("writing warehouse tables")
    warehouse.ensure_schema()
    warehouse.replace_table(PRODUCT_MASTER, _arrow(products))
    warehouse.replace_table(SEED_REJECTS, _arrow(rejects))
    report.nomenclature_rows = warehouse.replace_table(HS_NOMENCLATURE, _arrow(nomenclature))
    report.section_rows = warehouse.replace_table(HS_SECTIONS, _arrow(sections))
    return report
