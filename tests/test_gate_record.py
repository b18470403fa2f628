"""A gate's kept result stands for exactly the files it validated (no JVM: the results and
the files are written here as the jobs write them)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hscode.files import fingerprint
from hscode.quality import recorded_pass

pytestmark = pytest.mark.unit


def _staged(tmp_path: Path) -> tuple[Path, Path]:
    data, run_dir = tmp_path / "predictions" / "ds=2026-11-01", tmp_path / "run"
    data.mkdir(parents=True)
    run_dir.mkdir()
    for name in ("part-0.parquet", "part-1.parquet"):
        (data / name).write_bytes(b"rows of " + name.encode())
    return data, run_dir


def _keep(run_dir: Path, success: bool, data_fingerprint: str | None) -> None:
    (run_dir / "validation_predictions.json").write_text(json.dumps(
        {"suite": "predictions", "success": success, "evaluated": 12, "failures": [],
         "data_docs": "/docs/index.html", "data_fingerprint": data_fingerprint}))


def test_a_pass_on_the_same_files_is_taken(tmp_path: Path) -> None:
    data, run_dir = _staged(tmp_path)
    _keep(run_dir, True, fingerprint(data))
    kept = recorded_pass(run_dir, "predictions", fingerprint(data))
    assert kept is not None and kept["data_docs"] == "/docs/index.html"


@pytest.mark.parametrize("change", ["rewritten", "added", "removed", "same size, later"])
def test_files_changed_since_the_pass_must_be_validated_again(tmp_path: Path,
                                                             change: str) -> None:
    data, run_dir = _staged(tmp_path)
    _keep(run_dir, True, fingerprint(data))
    part = data / "part-0.parquet"
    if change == "rewritten":
        part.write_bytes(b"other rows, longer than before")
    elif change == "added":
        (data / "part-2.parquet").write_bytes(b"more rows")
    elif change == "removed":
        part.unlink()
    else:
        stat = part.stat()
        part.write_bytes(b"rows of part-0.parquez")  # same length
        os.utime(part, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert recorded_pass(run_dir, "predictions", fingerprint(data)) is None


@pytest.mark.parametrize("success, kept_fingerprint", [(False, "same"), (True, None)])
def test_a_failed_result_or_one_without_fingerprint_is_not_a_pass(
        tmp_path: Path, success: bool, kept_fingerprint: str | None) -> None:
    data, run_dir = _staged(tmp_path)
    _keep(run_dir, success, fingerprint(data) if kept_fingerprint else None)
    assert recorded_pass(run_dir, "predictions", fingerprint(data)) is None


def test_no_kept_result_or_no_files_is_not_a_pass(tmp_path: Path) -> None:
    data, run_dir = _staged(tmp_path)
    assert recorded_pass(run_dir, "predictions", fingerprint(data)) is None
    _keep(run_dir, True, "")
    assert fingerprint(tmp_path / "missing") == ""
    assert recorded_pass(run_dir, "predictions", fingerprint(tmp_path / "missing")) is None
