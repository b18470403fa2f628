"""Loading the prepared training data (small enough for one process: pandas/Arrow)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

COLUMNS = ["product_id", "text", "hs6"]


@dataclass(frozen=True)
class PreparedData:
    """Train (up-sampled; with a ``weight`` per row where the prepare job wrote one),
    calibration and test rows, and the label set.

    ``labels`` are the codes of the train split: the codes a model can predict. The
    calibration and test splits are drawn like the catalog and may hold other codes (a model
    can only get those wrong, as it will in the catalog).
    """

    train: pd.DataFrame
    test: pd.DataFrame
    labels: list[str]
    calibration: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=COLUMNS))


def load_prepared(path: Path) -> PreparedData:
    """Read ``<prepared>/split=train|calibration|test`` Parquet written by the prepare job.

    Raises:
        FileNotFoundError: when the prepare job has not run for this date.
    """
    if not (path / "split=train").is_dir():
        raise FileNotFoundError(f"no prepared training set at {path}: run prepare_training")
    train = pd.read_parquet(path / "split=train")
    train = train[COLUMNS + [c for c in ("weight",) if c in train.columns]].sort_values(
        ["hs6", "product_id"], kind="stable").reset_index(drop=True)

    def held_out(name: str) -> pd.DataFrame:
        # with the catalog's conflicting-description flag and whether a reviewer labelled
        # the row, where the prepare job wrote them
        d = path / f"split={name}"
        if not d.is_dir():
            return pd.DataFrame(columns=COLUMNS)
        rows = pd.read_parquet(d)
        keep = COLUMNS + [c for c in ("conflicting_code", "reviewed") if c in rows.columns]
        return rows[keep].sort_values("product_id").reset_index(drop=True)

    return PreparedData(train=train, test=held_out("test"), labels=sorted(set(train["hs6"])),
                        calibration=held_out("calibration"))


def validation_mask(texts: pd.Series, fraction: float, seed: int) -> pd.Series:
    """Rows held out for early stopping, grouped by text (hash-based, seeded)."""
    import hashlib

    def u(t: str) -> float:
        return int.from_bytes(hashlib.sha256(f"{seed}|{t}".encode()).digest()[:4]) / 2**32

    return texts.map(u) < fraction
