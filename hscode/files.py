"""Writing a file so that a reader never sees half of it."""

from __future__ import annotations

import os
from pathlib import Path


def temporary_beside(path: Path) -> Path:
    """A temporary name in ``path``'s folder (same file system, so a rename is atomic),
    unique to this process."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to a temporary file beside ``path``, then rename it over
    ``path``: readers see the old file or the new one, never a partial one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_beside(path)
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def fingerprint(folder: Path) -> str:
    """A hash of the files under ``folder`` (relative paths, sizes, modification times):
    it changes whenever a job rewrites them; ``""`` when the folder does not exist."""
    import hashlib

    if not folder.is_dir():
        return ""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(folder)}\0{stat.st_size}\0{stat.st_mtime_ns}\n"
                      .encode())
    return digest.hexdigest()
