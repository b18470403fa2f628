"""The data catalog: every dataset a job reads or writes, by name, for one run date.

Jobs and transforms never build paths themselves; they ask the catalog. Partitioned
datasets are Parquet folders with Hive-style ``ds=YYYY-MM-DD`` partitions.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from hscode.config import Settings


def parse_ds(ds: str) -> dt.date:
    """Validate a run date ``YYYY-MM-DD``; raise ``ValueError`` with a clear message."""
    try:
        return dt.date.fromisoformat(ds)
    except ValueError as exc:
        raise ValueError(f"--ds must be a date YYYY-MM-DD, got {ds!r}") from exc


@dataclass(frozen=True)
class Catalog:
    """Locations of the pipeline's datasets under ``settings.data_dir``."""

    root: Path
    expectations_dir: Path

    @classmethod
    def from_settings(cls, settings: Settings) -> Catalog:
        return cls(root=settings.data_dir, expectations_dir=settings.expectations_dir)

    # partitioned datasets (one folder, ds= partitions inside)
    @property
    def raw_products(self) -> Path:
        """Raw snapshot of ``product_master`` per run date: what every later stage reads."""
        return self.root / "snapshots" / "product_master"

    @property
    def scoring_set(self) -> Path:
        """Cleaned products to score (all usable products)."""
        return self.root / "clean" / "scoring"

    @property
    def training_set(self) -> Path:
        """Cleaned, trusted products (assurance 3-4, valid code) to train on."""
        return self.root / "clean" / "training"

    @property
    def quarantine(self) -> Path:
        """Rows left out of the scoring or training set, with a reason code."""
        return self.root / "clean" / "quarantine"

    @property
    def prepared(self) -> Path:
        """Training data ready for the networks: ``ds=D/split=train|test``."""
        return self.root / "training" / "prepared"

    @property
    def predictions(self) -> Path:
        """Scored catalog per run date, staged before it is published to the warehouse."""
        return self.root / "scoring" / "predictions"

    @property
    def models(self) -> Path:
        """Model artifacts: ``<model>/<version>/``."""
        return self.root / "models"

    @property
    def search(self) -> Path:
        """Best hyper-parameters found by the search, one JSON per model."""
        return self.root / "models" / "search"

    @property
    def registry(self) -> Path:
        """The model registry (versions, ``champion`` alias, decisions)."""
        return self.root / "registry"

    def selection_dir(self, ds: str) -> Path:
        """Cross-validation folds, statistics and report of one selection run."""
        return self.root / "selection" / f"ds={parse_ds(ds).isoformat()}"

    def partition(self, dataset: Path, ds: str) -> Path:
        """Folder of one run date inside a partitioned dataset."""
        return dataset / f"ds={parse_ds(ds).isoformat()}"

    # per-run reports
    def run_dir(self, ds: str) -> Path:
        """Reports of one run date (validation results, Data Docs, summaries)."""
        return self.root / "runs" / f"ds={parse_ds(ds).isoformat()}"

    def dag_log(self, dag_id: str, ds: str) -> Path:
        """The whole output of a DAG run started from the CLI (``hscode demo``/``backfill``)."""
        return self.root / "logs" / dag_id / f"ds={parse_ds(ds).isoformat()}.log"

    def suite_file(self, suite: str) -> Path:
        """A Great Expectations suite stored as JSON in ``expectations/``."""
        return self.expectations_dir / f"{suite}.json"
