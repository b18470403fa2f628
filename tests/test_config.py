"""Configuration: defaults, YAML layering, environment overrides, validation."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from hscode.config import load_settings

pytestmark = pytest.mark.unit


def test_defaults_resolve_embedded_duckdb_under_data_dir(tmp_path: Path) -> None:
    s = load_settings(environ={"HSCODE_PATHS__HOME": str(tmp_path)})
    assert s.warehouse_url == f"duckdb:///{tmp_path / 'data' / 'warehouse.duckdb'}"
    assert s.spark.master == "local[*]"
    assert s.training.trusted_assurance_levels == (1, 2, 3, 4)  # every level, weighted
    assert s.training.assurance_weights[4] > s.training.assurance_weights[1]


def test_assurance_weights_need_every_level_positive() -> None:
    from pydantic import ValidationError

    from hscode.config import TrainingSettings

    for bad in ({3: 1.0, 4: 1.0}, {1: 0.0, 2: 1.0, 3: 1.0, 4: 1.0}):
        with pytest.raises(ValidationError, match="assurance_weights"):
            TrainingSettings(assurance_weights=bad)


def test_yaml_file_then_environment_override(tmp_path: Path) -> None:
    cfg = tmp_path / "hscode.yaml"
    cfg.write_text("spark:\n  master: spark://h:7077\ntraining:\n  test_size: 0.1\n")
    s = load_settings(cfg, environ={"HSCODE_TRAINING__TEST_SIZE": "0.2",
                                    "HSCODE_TRAINING__TRUSTED_ASSURANCE_LEVELS": "[4]"})
    assert s.spark.master == "spark://h:7077"
    assert s.training.test_size == 0.2
    assert s.training.trusted_assurance_levels == (4,)


def test_hscode_config_env_names_the_file(tmp_path: Path) -> None:
    cfg = tmp_path / "other.yaml"
    cfg.write_text("spark:\n  app_name: nightly\n")
    assert load_settings(environ={"HSCODE_CONFIG": str(cfg)}).spark.app_name == "nightly"


def test_postgres_url_is_left_as_given() -> None:
    url = "postgresql://u@db:5432/wh"
    assert load_settings(environ={"HSCODE_WAREHOUSE__URL": url}).warehouse_url == url


@pytest.mark.parametrize(
    "env",
    [
        {"HSCODE_TRAINING__TEST_SIZE": "1.5"},
        {"HSCODE_SEED__ASSURANCE_SHARES": "{1: 0.5, 2: 0.5, 3: 0.5, 4: 0.5}"},
        {"HSCODE_SPARK__NO_SUCH_KEY": "x"},
    ],
)
def test_invalid_values_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        load_settings(environ=env)


def test_settings_are_immutable() -> None:
    s = load_settings(environ={})
    with pytest.raises(ValidationError):
        s.spark.master = "x"  # type: ignore[misc]


def test_a_gate_takes_pandas_up_to_the_bound_then_spark_unless_told() -> None:
    from hscode.quality import gate_engine

    s = load_settings(environ={"HSCODE_QUALITY__PANDAS_MAX_ROWS": "1000"})
    assert [gate_engine(s.quality, n) for n in (0, 1000, 1001)] == ["pandas", "pandas", "spark"]
    forced = load_settings(environ={"HSCODE_QUALITY__ENGINE": "spark"})
    assert gate_engine(forced.quality, 10) == "spark"
    with pytest.raises(ValidationError, match="engine"):
        load_settings(environ={"HSCODE_QUALITY__ENGINE": "polars"})
