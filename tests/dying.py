"""A warehouse connection that kills its process right after a given statement ran.

Used by the kill tests (in a child process): what the warehouse holds after a writer died
mid-transaction is what readers and the next run see.
"""

from __future__ import annotations

import os
from typing import Any


class _Dying:
    """Wraps a DB-API connection or cursor; after ``execute`` of a statement starting with
    ``prefix`` it prints ``message`` and exits the process with status 9."""

    def __init__(self, inner: Any, prefix: str, message: str) -> None:
        self._inner, self._prefix, self._message = inner, prefix, message

    def __enter__(self) -> _Dying:
        self._inner.__enter__()
        return self

    def __exit__(self, *exc: object) -> Any:
        return self._inner.__exit__(*exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def cursor(self, *args: Any, **kwargs: Any) -> _Dying:
        return _Dying(self._inner.cursor(*args, **kwargs), self._prefix, self._message)

    def execute(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        out = self._inner.execute(sql, *args, **kwargs)
        if sql.startswith(self._prefix):
            print(self._message, flush=True)
            os._exit(9)
        return out


def die_after(warehouse: Any, prefix: str, message: str) -> None:
    """Make ``warehouse`` (DuckDB or PostgreSQL) kill the process after its next
    ``prefix...`` statement (``DELETE``, ``INSERT``), printing ``message`` first."""
    warehouse._con = _Dying(warehouse._con, prefix, message)
