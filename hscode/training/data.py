"""Loading the prepared training data (small enough for one process: pandas/Arrow)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd


@dataclass(frozen=True)
class PreparedData:
    """Train (up-sampled) and test rows, and the label set."""

    train: pd.DataFrame
    test: pd.DataFrame
    labels: list[str]


def load_prepared(path: Path) -> PreparedData:
    """Read ``<prepared>/split=train|test`` Parquet written by the prepare job.

    Raises:
        FileNotFoundError: when the prepare job has not run for this date.
    """
    if not (path / "split=train").is_dir():
        raise FileNotFoundError(f"no prepared training set at {path}: run prepare_training")
    cols = ["product_id", "text", "hs6"]
    train = pd.read_parquet(path / "split=train", columns=cols).sort_values(
        ["hs6", "product_id"], kind="stable").reset_index(drop=True)
    test_dir = path / "split=test"
    test = (pd.read_parquet(test_dir, columns=cols).sort_values("product_id").reset_index(drop=True)
            if test_dir.is_dir() else pd.DataFrame(columns=cols))
    labels = sorted(set(train["hs6"]) | set(test["hs6"]))
    return PreparedData(train=train, test=test, labels=labels)


def validation_mask(texts: pd.Series, fraction: float, seed: int) -> pd.Series:
    """Rows held out for early stopping, grouped by text (hash-based, seeded)."""
    import hashlib

    def u(t: str) -> float:
        return int.from_bytes(hashlib.sha256(f"{seed}|{t}".encode()).digest()[:4]) / 2**32

    return texts.map(u) < fraction
