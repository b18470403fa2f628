"""Model artifacts: one directory per trained model, with everything needed to trust it.

Layout of ``<models_dir>/<model>/<version>/``:
``model.keras`` (networks: vectoriser + network, takes raw model text) or ``model.npz``
(baseline, :mod:`hscode.training.svm_store`; ``model.skops`` before), ``labels.json``, ``params.json``, ``metrics.json``, ``history.json`` and
``lineage.json`` (data snapshot id, code version, training configuration) and
``train_texts.npy`` (64-bit hashes of the texts it was trained on, so a later promotion gate
can leave those rows out of a comparison).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd

import hscode


def code_version() -> dict[str, str]:
    """Package version and, when run from a git checkout, the commit (``+dirty`` if so)."""
    out = {"package": hscode.__version__}
    repo = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                             text=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--", "hscode"],
                               capture_output=True, text=True, check=True, timeout=10).stdout
        out["git_commit"] = sha + ("+dirty" if dirty.strip() else "")
    except (OSError, subprocess.SubprocessError):
        out["git_commit"] = "unknown"
    return out


def snapshot_id(ds: str, train: pd.DataFrame, test: pd.DataFrame) -> str:
    """Content id of the training data: ds plus a hash of the (id, text, code) rows."""
    h = hashlib.sha256()
    for frame in (train, test):
        for row in frame[["product_id", "text", "hs6"]].itertuples(index=False):
            h.update("\x1f".join(map(str, row)).encode())
            h.update(b"\x1e")
    return f"{ds}:{h.hexdigest()[:16]}"


def new_version() -> str:
    """A sortable version name (UTC timestamp)."""
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")


TRAIN_TEXTS_FILE = "train_texts.npy"


def text_hashes(texts: Any, unique: bool = True) -> Any:
    """64-bit hashes (BLAKE2b) of ``texts``: sorted and unique, or one per text."""
    import numpy as np

    h = np.array([int.from_bytes(hashlib.blake2b(str(t).encode(), digest_size=8).digest(),
                                 "little") for t in texts], dtype=np.uint64)
    return np.unique(h) if unique else h


def trained_texts(artifact: Path) -> Any:
    """Hashes of every text an artifact (or any member of an ensemble) was trained on;
    None when the artifact predates the file."""
    import numpy as np

    files = [artifact / TRAIN_TEXTS_FILE, *sorted(artifact.glob(f"members/*/{TRAIN_TEXTS_FILE}"))]
    found = [np.load(f) for f in files if f.is_file()]
    return np.unique(np.concatenate(found)) if found else None


def write_metadata(out_dir: Path, *, labels: list[str], params: dict[str, Any],
                   metrics: dict[str, Any], history: dict[str, Any], lineage: dict[str, Any],
                   train_texts: Any = None) -> None:
    """Write the side files of an artifact (JSON, and the training texts' hashes)."""
    if train_texts is not None:
        import numpy as np

        out_dir.mkdir(parents=True, exist_ok=True)
        np.save(out_dir / TRAIN_TEXTS_FILE, text_hashes(train_texts))
    write_json(out_dir / "labels.json", labels)
    write_json(out_dir / "params.json", params)
    write_json(out_dir / "metrics.json", metrics)
    write_json(out_dir / "history.json", history)
    write_json(out_dir / "lineage.json", {**lineage, "code_version": code_version(),
                                          "created_at": dt.datetime.now(dt.UTC).isoformat()})


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))
