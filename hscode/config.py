"""Typed run-time configuration: embedded defaults, an optional YAML file, environment.

Precedence (later wins): ``hscode/defaults.yaml`` -> the YAML file named by the ``--config``
option or ``HSCODE_CONFIG`` (or ``./hscode.yaml`` when present) -> environment variables
``HSCODE_<SECTION>__<KEY>``. Nothing is read at import time; call :func:`load_settings`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

ENV_PREFIX = "HSCODE_"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PathsSettings(_Section):
    """Where the project keeps its files."""

    home: Path = Path(".")
    data_dir: Path = Path("data")
    source_dir: Path = Path("../shared/data")
    expectations_dir: Path | None = None  # default: the repository's expectations/


class WarehouseSettings(_Section):
    """The analytical warehouse the pipeline reads from and writes back to."""

    url: str = "duckdb:///warehouse.duckdb"
    # Airflow connection holding the warehouse URL instead of ``url`` (``AIRFLOW_CONN_<ID>``
    # in the environment, else Airflow's secrets backend / metadata database).
    conn_id: str | None = None
    connect_retries: int = Field(3, ge=0)
    retry_backoff_s: float = Field(1.0, ge=0)
    batch_rows: int = Field(65_536, ge=1)  # rows per Arrow batch moved in or out: bounds memory
    # how the extract reads product_master: "jdbc" (PostgreSQL: Spark tasks read hash shares
    # in parallel), "export" (a bounded batch export to Parquet), "auto" (jdbc for PostgreSQL)
    extract_with: Literal["auto", "export", "jdbc"] = "auto"
    jdbc_jar: Path = Path("/usr/share/java/postgresql.jar")
    jdbc_partitions: int = Field(8, ge=1)
    jdbc_fetchsize: int = Field(10_000, ge=1)
    # how the publish moves the night's predictions: "spark" (PostgreSQL: Spark tasks COPY
    # their shares into a staging table in parallel, one transaction then swaps the date in),
    # "stream" (the driver streams the staged files in batches), "auto" (spark for PostgreSQL)
    publish_with: Literal["auto", "stream", "spark"] = "auto"

    def extract_method(self, url: str) -> Literal["export", "jdbc"]:
        """The extract path for the warehouse at ``url`` (``auto`` resolved)."""
        if self.extract_with == "auto":
            return "jdbc" if url.startswith(("postgresql://", "postgres://")) else "export"
        if self.extract_with == "jdbc" and url.startswith("duckdb:"):
            raise ValueError("warehouse.extract_with=jdbc needs a PostgreSQL warehouse")
        return self.extract_with

    def publish_method(self, url: str) -> Literal["stream", "spark"]:
        """The publish path for the warehouse at ``url`` (``auto`` resolved)."""
        postgres = url.startswith(("postgresql://", "postgres://"))
        if self.publish_with == "auto":
            return "spark" if postgres else "stream"
        if self.publish_with == "spark" and not postgres:
            raise ValueError("warehouse.publish_with=spark needs a PostgreSQL warehouse")
        return self.publish_with


class SourcesSettings(_Section):
    """Reference files, relative to ``paths.source_dir`` unless absolute."""

    declarations_csv: Path = Path("declarations.csv")
    nomenclature_csv: Path = Path("hs_nomenclature.csv")
    sections_csv: Path = Path("hs_sections.csv")


class SeedSettings(_Section):
    """Deterministic demo assignment of the columns declarations do not carry."""

    regions: tuple[str, ...] = ("EU", "NA", "APAC", "LATAM", "MEA")
    assurance_shares: dict[int, float] = {1: 0.05, 2: 0.10, 3: 0.35, 4: 0.50}
    conflicting_max_assurance: int = Field(2, ge=1, le=4)
    short_description_chars: int = Field(40, ge=8)
    updated_at_base: str = "2026-01-01T00:00:00"

    @field_validator("assurance_shares")
    @classmethod
    def _shares_are_a_distribution(cls, v: dict[int, float]) -> dict[int, float]:
        if set(v) != {1, 2, 3, 4}:
            raise ValueError("assurance_shares needs exactly the levels 1, 2, 3, 4")
        if any(s < 0 for s in v.values()) or abs(sum(v.values()) - 1.0) > 1e-6:
            raise ValueError("assurance_shares must be non-negative and sum to 1")
        return v


class SparkSettings(_Section):
    """How jobs start Spark; ``master`` is overridden by a job's ``--master``."""

    master: str = "local[*]"
    app_name: str = "hscode"
    shuffle_partitions: int = Field(8, ge=1)
    driver_memory: str = "4g"
    log_level: str = "WARN"
    # a driver JVM this process starts for a catalog of at most this many rows compiles with
    # the JIT's first tier only (-XX:TieredStopAtLevel=1): a small night is over before the
    # second tier pays back (55k: 67 -> 60 s as four jobs; 250k: even; 1M: 232 -> 264 s), and
    # collects with the serial collector unless a collector is chosen (55k: the clean stage
    # 9.6 -> 8.2 s, peak RSS of one process 3.7-3.9 -> 2.9-3.0 GB); 0 = never
    quick_jit_max_rows: int = Field(100_000, ge=0)


class TrainingSettings(_Section):
    """Training-set preparation and model training parameters."""

    seed: int = 42
    test_size: float = Field(0.05, gt=0, lt=1)  # figures are reported on it, nothing chosen
    calibration_size: float = Field(0.05, ge=0, lt=1)  # temperatures and the review threshold
    min_rows_per_code: int = Field(2, ge=1)
    trusted_assurance_levels: tuple[int, ...] = (1, 2, 3, 4)  # the paper: (3, 4)
    assurance_weights: dict[int, float] = {1: 0.5, 2: 0.5, 3: 1.0, 4: 1.0}
    reviewed_weight: float = Field(2.0, gt=0)  # a reviewer's label, above assurance 4
    upsample_threshold: float = Field(0.01, ge=0, le=1)
    upsample_target: Literal["mean", "median"] = "median"
    upsample_method: Literal["duplicate", "weight", "smote"] = "duplicate"
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(128, ge=1)  # global, split across the ranks
    hash_buckets: int = Field(2**18, ge=2)
    max_words: int = Field(32, ge=1)
    max_pieces: int = Field(28, ge=1)
    subwords: int = Field(3, ge=0, le=6)
    subwords_max: int = Field(5, ge=0, le=8)
    word_bigrams: bool = True
    label_smoothing: float = Field(0.1, ge=0, lt=1)
    warmup_epochs: float = Field(1.0, ge=0)
    patience: int = Field(2, ge=0)
    validation_fraction: float = Field(0.05, ge=0, lt=1)
    num_proc: int = Field(2, ge=1)  # Horovod ranks
    search_trials: int = Field(16, ge=1)
    search_epochs: int = Field(10, ge=1)
    search_min_gain: float = Field(0.01, ge=0, lt=1)

    @field_validator("assurance_weights")
    @classmethod
    def _weights(cls, v: dict[int, float]) -> dict[int, float]:
        if set(v) != {1, 2, 3, 4} or any(w <= 0 for w in v.values()):
            raise ValueError("assurance_weights needs a positive weight for each level 1-4")
        return v

    @property
    def trusted_levels_list(self) -> list[int]:
        return list(self.trusted_assurance_levels)


class SelectionSettings(_Section):
    """Cross-validated model selection (the paper: 37 folds, F-beta with beta = 1.2)."""

    folds: int = Field(37, ge=2)
    epochs: int = Field(10, ge=1)  # per fold: as trained (3 left the networks ~18 pts short)
    alpha: float = Field(0.05, gt=0, lt=1)
    beta: float = Field(1.2, gt=0)
    models: tuple[str, ...] = ("dnn", "lstm", "textcnn", "svm")
    ensembles: tuple[Literal["vote", "routed"], ...] = ("vote", "routed")
    runner: Literal["local", "spark"] = "local"
    # promotion: the challenger's hold-out HS6 accuracy may trail the champion's by at most
    # this much (and must not be significantly worse), on rows neither model trained on
    max_regression: float = Field(0.005, ge=0, lt=1)


class CleaningSettings(_Section):
    """Text cleaning and quarantine rules (see hscode/clean.py)."""

    max_text_chars: int = Field(2000, ge=10)
    min_tokens: int = Field(1, ge=1)
    drop_conflicting_from_training: bool = False


class JobsSettings(_Section):
    """How the Spark jobs in ``jobs/`` share a run date."""

    # One job per run date at a time (overlapping backfills, a manual rerun during the
    # nightly run): a second one waits up to this long for the first, then fails.
    date_lock_timeout_s: float = Field(7200, ge=0)


class QualitySettings(_Section):
    """Great Expectations gates."""

    row_count_tolerance: float = Field(0.5, ge=0)  # vs. the previous run's snapshot
    min_rows: int = Field(1, ge=0)
    # build the HTML Data Docs of every validation (the JSON result is always written)
    data_docs: bool = True
    # where GX computes a gate's metrics: auto = pandas up to pandas_max_rows rows (collected
    # to the driver: ~1 s at 55k rows instead of 3-13 s of Spark jobs), Spark above
    engine: Literal["auto", "spark", "pandas"] = "auto"
    pandas_max_rows: int = Field(250_000, ge=0)


class ScoringSettings(_Section):
    """Nightly scoring of the catalog (see hscode/scoring/)."""

    model_version: int | None = None  # registry version to score with; None = champion
    review_precision: float = Field(0.97, gt=0, le=1)  # auto-accepted rows must be this precise
    review_threshold: float | None = Field(None, ge=0, le=1)  # fixed threshold; None = derive
    low_confidence: float = Field(0.5, ge=0, le=1)  # under it (and under review): band "low"
    batch_rows: int = Field(10000, ge=100)  # rows per Arrow batch handed to the model
    partitions_per_core: int = Field(2, ge=1)


class DriftSettings(_Section):
    """Drift of each night's predictions vs. the training data (hs_drift)."""

    code_psi_threshold: float = Field(0.25, gt=0)  # PSI over predicted codes
    confidence_psi_threshold: float = Field(0.25, gt=0)  # PSI over confidence (10 bins)
    code_kl_threshold: float = Field(0.5, gt=0)  # KL(predicted || training) in nats
    # each threshold is raised to this quantile of the statistic under no drift: catalogs of
    # tonight's size drawn from the model's own hold-out predictions (bootstrap)
    null_quantile: float = Field(0.99, gt=0, lt=1)
    # 0: no null catalogs, the thresholds above exactly as configured (a retrain drill sets
    # them near 0 to force a breach)
    bootstrap_samples: int = Field(200, ge=0)

    @field_validator("bootstrap_samples")
    @classmethod
    def _enough_samples_for_a_quantile(cls, v: int) -> int:
        if 0 < v < 10:
            raise ValueError("bootstrap_samples must be 0 (thresholds as configured) or >= 10")
        return v


class ReviewSettings(_Section):
    """The review page (``hscode review serve``) and what reviews trigger."""

    host: str = "127.0.0.1"  # localhost only unless told otherwise
    port: int = Field(8765, ge=1, le=65535)
    # who decided: HTTP basic login against this file (`hscode review add-reviewer`), or,
    # behind a proxy that authenticates people and sets it, this request header
    reviewers_file: Path = Path("review/reviewers.json")  # under paths.data_dir
    identity_header: str | None = None
    page_size: int = Field(50, ge=1, le=500)
    # the nightly run asks for a retrain (asset hscode://warehouse/hs_code_reviews) once this
    # many decisions were recorded since the last retrain's promotion decision; 0 = never
    retrain_after: int = Field(200, ge=0)


class Settings(_Section):
    """The whole configuration of one run."""

    paths: PathsSettings = PathsSettings()
    warehouse: WarehouseSettings = WarehouseSettings()
    sources: SourcesSettings = SourcesSettings()
    seed: SeedSettings = SeedSettings()
    spark: SparkSettings = SparkSettings()
    training: TrainingSettings = TrainingSettings()
    cleaning: CleaningSettings = CleaningSettings()
    selection: SelectionSettings = SelectionSettings()
    quality: QualitySettings = QualitySettings()
    jobs: JobsSettings = JobsSettings()
    scoring: ScoringSettings = ScoringSettings()
    drift: DriftSettings = DriftSettings()
    review: ReviewSettings = ReviewSettings()

    @property
    def home(self) -> Path:
        """Project home, absolute."""
        return self.paths.home.expanduser().resolve()

    @property
    def data_dir(self) -> Path:
        """Directory for the embedded warehouse, snapshots, models and reports."""
        return self.home / self.paths.data_dir

    @property
    def expectations_dir(self) -> Path:
        """Folder of the Great Expectations suites (JSON)."""
        if self.paths.expectations_dir is not None:
            return self.home / self.paths.expectations_dir
        return Path(__file__).resolve().parents[1] / "expectations"

    def source(self, name: str) -> Path:
        """Absolute path of a reference file named in ``sources``."""
        path = getattr(self.sources, name)
        return path if path.is_absolute() else self.home / self.paths.source_dir / path

    @property
    def warehouse_url(self) -> str:
        """Warehouse URL with a relative DuckDB file resolved under ``data_dir``.

        With ``warehouse.conn_id`` the URL (credentials included) comes from that Airflow
        connection, read when it is needed and never written back anywhere.
        """
        url = (airflow_connection_uri(self.warehouse.conn_id) if self.warehouse.conn_id
               else self.warehouse.url)
        prefix = "duckdb:///"
        if url.startswith(prefix) and not url[len(prefix) :].startswith("/"):
            rest = url[len(prefix) :]
            if rest != ":memory:":
                return prefix + str(self.data_dir / rest)
        return url

    @property
    def warehouse_display(self) -> str:
        """The warehouse URL with any password masked, for logs and reports."""
        return redact_url(self.warehouse_url)


def redact_url(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def refuse_password(url: str, where: str) -> str:
    """Return ``url``; raise when it carries a password (files and command lines leak).

    Raises:
        ValueError: naming where credentials belong instead.
    """
    if urlsplit(url).password is not None:
        raise ValueError(
            f"{where}: the warehouse URL carries a password; credentials come only from the "
            "environment (HSCODE_WAREHOUSE__URL, PGPASSWORD, ~/.pgpass) or an Airflow "
            "connection (warehouse.conn_id)")
    return url


def airflow_connection_uri(conn_id: str, environ: Mapping[str, str] | None = None) -> str:
    """The URI of Airflow connection ``conn_id``.

    ``AIRFLOW_CONN_<CONN_ID>`` (URI or JSON, Airflow's own environment format) first; else
    Airflow's SDK (secrets backends, metadata database) when Airflow is installed.

    Raises:
        ValueError: when the connection cannot be found.
    """
    environ = os.environ if environ is None else environ
    raw = environ.get(f"AIRFLOW_CONN_{conn_id.upper()}")
    if raw and raw.lstrip().startswith("{"):
        c = json.loads(raw)
        scheme = {"postgres": "postgresql"}.get(c.get("conn_type", ""), c.get("conn_type", ""))
        auth = c.get("login") or ""
        if c.get("password"):
            auth += f":{c['password']}"
        host = c.get("host") or ""
        port = f":{c['port']}" if c.get("port") else ""
        return f"{scheme}://{auth + '@' if auth else ''}{host}{port}/{c.get('schema') or ''}"
    if raw:
        return raw
    try:
        from airflow.sdk import Connection

        return Connection.get(conn_id).get_uri()
    except Exception as exc:
        raise ValueError(f"Airflow connection {conn_id!r} not found (set AIRFLOW_CONN_"
                         f"{conn_id.upper()} or define it in Airflow): {exc}") from exc


def _deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """Turn ``HSCODE_SECTION__KEY=value`` into ``{"section": {"key": value}}``.

    Values are parsed as YAML scalars/flow collections, so ``[3, 4]`` and ``0.5`` work.
    """
    out: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        parts = name[len(ENV_PREFIX) :].lower().split("__")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(raw) if raw != "" else ""
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: top level must be a mapping")
    return data


def load_settings(
    config_file: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Build the run's settings.

    Args:
        config_file: A YAML file layered over the defaults. ``None`` means ``HSCODE_CONFIG``
            or ``./hscode.yaml`` when present.
        environ: Environment to read overrides from (default: ``os.environ``).

    Returns:
        The validated, immutable settings.
    """
    environ = os.environ if environ is None else environ
    defaults = yaml.safe_load(
        resources.files("hscode").joinpath("defaults.yaml").read_text(encoding="utf-8")
    )
    merged = defaults
    if config_file is None:
        config_file = environ.get("HSCODE_CONFIG") or (
            "hscode.yaml" if Path("hscode.yaml").is_file() else None
        )
    if config_file is not None:
        from_file = _read_yaml(Path(config_file))
        refuse_password(str((from_file.get("warehouse") or {}).get("url", "")), str(config_file))
        merged = _deep_merge(merged, from_file)
    merged = _deep_merge(merged, _env_overrides(environ))
    return Settings.model_validate(merged)
