"""Search over the HS nomenclature for the review page: by code prefix or by words."""

from __future__ import annotations

import re
from collections.abc import Sequence

from hscode.codes import CODE_SEPARATORS

Entry = tuple[str, int, str]  # code, level (4 or 6), description


def search_codes(entries: Sequence[Entry], query: str, limit: int = 30) -> list[Entry]:
    """Entries matching ``query``: digits (dots and spaces ignored) match codes that start
    with them; words match descriptions that contain every one of them (any case), the
    subheadings first. At most ``limit`` entries, in code order within each level."""
    query = query.strip()
    if not query:
        return []
    digits = re.sub(CODE_SEPARATORS, "", query)
    if digits.isdigit():
        found = [e for e in entries if e[0].startswith(digits)]
    else:
        words = [w for w in re.split(r"\W+", query.lower()) if w]
        found = [e for e in entries if all(w in (e[2] or "").lower() for w in words)]
        found.sort(key=lambda e: (e[1] != 6, e[0]))
    return found[:limit]
