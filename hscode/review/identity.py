"""Who decided: reviewer logins (salted PBKDF2 hashes in a JSON file) and the page's
cross-site request forgery tokens.

A deployment whose proxy already authenticates people names the header it sets
(``review.identity_header``) instead; the page then trusts that header and nothing else, so
the proxy must strip it from client requests.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
from pathlib import Path

from hscode.files import atomic_write_text

ITERATIONS = 240_000
REVIEWER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


def _digest(password: str, salt: bytes, iterations: int) -> str:
    return hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations).hex()


def load_reviewers(path: Path) -> dict[str, dict]:
    """The reviewers file (absent: nobody may log in)."""
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def add_reviewer(path: Path, name: str, password: str) -> None:
    """Add or replace ``name``'s login (written atomically, readable by its owner only).

    Raises:
        ValueError: a name that is not a plain login, or a password under 8 characters.
    """
    if not REVIEWER.match(name):
        raise ValueError(f"not a reviewer name (letters, digits, . _ @ -): {name!r}")
    if len(password) < 8:
        raise ValueError("a reviewer's password needs at least 8 characters")
    reviewers = load_reviewers(path)
    salt = os.urandom(16)
    reviewers[name] = {"salt": salt.hex(), "iterations": ITERATIONS,
                       "hash": _digest(password, salt, ITERATIONS)}
    atomic_write_text(path, json.dumps(reviewers, indent=2, sort_keys=True))
    path.chmod(0o600)


def check_login(reviewers: dict[str, dict], name: str, password: str) -> bool:
    """Whether ``password`` is ``name``'s (constant time in the password)."""
    entry = reviewers.get(name)
    if entry is None:
        _digest(password, b"\0" * 16, ITERATIONS)  # as slow as a real check
        return False
    expected = _digest(password, bytes.fromhex(entry["salt"]), int(entry["iterations"]))
    return hmac.compare_digest(expected, entry["hash"])


class CsrfTokens:
    """Per-reviewer form tokens, signed with a secret that lives as long as the server."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret or secrets.token_bytes(32)

    def issue(self, reviewer: str) -> str:
        return hmac.new(self._secret, reviewer.encode("utf-8"), hashlib.sha256).hexdigest()

    def valid(self, reviewer: str, token: str) -> bool:
        return hmac.compare_digest(self.issue(reviewer), token or "")
