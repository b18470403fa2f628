"""Security rules, each with a test: SQL never built from data, credentials only from the
environment or Airflow connections, model files loaded without running code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hscode.config import airflow_connection_uri, load_settings, redact_url
from hscode.predictor import UnsafeModelError, load_predictor
from hscode.warehouse import open_warehouse
from hscode.warehouse.schema import PRODUCT_MASTER, check_identifier, ident
from tests.conftest import REPO

pytestmark = pytest.mark.unit

# -- SQL -------------------------------------------------------------------------------------

INJECTED_SQL = '''
def lookup(con, product_id):
    return con.execute(f"SELECT * FROM product_master WHERE product_id = '{product_id}'")
'''


def _ruff_s608(*paths: Path) -> subprocess.CompletedProcess[str]:
    ruff = Path(sys.executable).parent / "ruff"
    return subprocess.run([str(ruff), "check", "--no-cache", "--select", "S608",
                           "--config", str(REPO / "ruff.toml"), *map(str, paths)],
                          capture_output=True, text=True, cwd=REPO, check=False)


def test_no_sql_is_built_from_strings_outside_the_warehouse_package(tmp_path: Path) -> None:
    # the check itself catches an injectable query ...
    bad = tmp_path / "bad.py"
    bad.write_text(INJECTED_SQL)
    assert _ruff_s608(bad).returncode == 1
    # ... and finds none in the pipeline (hscode/warehouse builds SQL only from ident())
    result = _ruff_s608(REPO / "hscode", REPO / "jobs", REPO / "dags", REPO / "bench")
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("name", ["product_master; DROP TABLE x", 'a"b', "Product", "1abc",
                                  "", "a" * 64, "hs_predictions --"])
def test_identifiers_outside_the_safe_pattern_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="not a valid identifier"):
        ident(name)


def test_values_are_bound_never_spliced(tmp_path: Path) -> None:
    with open_warehouse(f"duckdb:///{tmp_path / 'wh.duckdb'}") as wh:
        wh.ensure_schema([PRODUCT_MASTER])
        hostile = "x' OR '1'='1"
        wh.execute("INSERT INTO product_master (product_id, short_description) VALUES (?, ?)",
                   ["P1", hostile])
        assert wh.execute("SELECT COUNT(*) FROM product_master WHERE short_description = ?",
                          [hostile])[0][0] == 1
        assert wh.execute("SELECT COUNT(*) FROM product_master WHERE product_id = ?",
                          [hostile])[0][0] == 0
        with pytest.raises(ValueError, match="not a valid identifier"):
            wh.columns_of("product_master' OR '1'='1")
    assert check_identifier("hs_predictions") == "hs_predictions"


# -- credentials ---------------------------------------------------------------------------

SECRET_URL = "postgresql://hscode:s3cret@db.example:5432/warehouse"


def test_a_password_in_a_config_file_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "hscode.yaml"
    cfg.write_text(f"warehouse:\n  url: {SECRET_URL}\n")
    with pytest.raises(ValueError, match="credentials come only from the environment"):
        load_settings(cfg, environ={})
    cfg.write_text("warehouse:\n  url: postgresql://hscode@db.example:5432/warehouse\n")
    assert load_settings(cfg, environ={}).warehouse_url.startswith("postgresql://hscode@")


def test_credentials_from_the_environment_are_used_and_masked_in_output(tmp_path: Path) -> None:
    settings = load_settings(environ={"HSCODE_WAREHOUSE__URL": SECRET_URL})
    assert settings.warehouse_url == SECRET_URL
    assert settings.warehouse_display == "postgresql://hscode:***@db.example:5432/warehouse"
    env = {"PATH": str(Path(sys.executable).parent), "HSCODE_WAREHOUSE__URL": SECRET_URL,
           "HSCODE_PATHS__HOME": str(tmp_path)}
    hscode = str(Path(sys.executable).parent / "hscode")
    out = subprocess.run([hscode, "config"], env=env, capture_output=True, text=True,
                         check=True, cwd=tmp_path).stdout
    assert "s3cret" not in out and json.loads(out)["resolved"]["warehouse_url"] == \
        settings.warehouse_display
    refused = subprocess.run([hscode, "tables", "--warehouse-url", SECRET_URL], env=env,
                             capture_output=True, text=True, check=False, cwd=tmp_path)
    assert refused.returncode != 0 and "carries a password" in refused.stderr + refused.stdout


def test_warehouse_url_from_an_airflow_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    # Airflow's own environment formats: a URI, or JSON
    assert airflow_connection_uri("wh", {"AIRFLOW_CONN_WH": SECRET_URL}) == SECRET_URL
    as_json = json.dumps({"conn_type": "postgres", "login": "hscode", "password": "s3cret",
                          "host": "db.example", "port": 5432, "schema": "warehouse"})
    assert airflow_connection_uri("wh", {"AIRFLOW_CONN_WH": as_json}) == SECRET_URL
    monkeypatch.setenv("AIRFLOW_CONN_HSCODE_WAREHOUSE", SECRET_URL)
    settings = load_settings(environ={"HSCODE_WAREHOUSE__CONN_ID": "hscode_warehouse"})
    assert settings.warehouse_url == SECRET_URL
    assert "s3cret" not in redact_url(settings.warehouse_url)


def test_shipped_configuration_holds_no_credentials() -> None:
    for path in [*(REPO / "hscode").glob("*.yaml"), REPO / "docker" / "compose.yaml",
                 REPO / "docker" / ".env.example"]:
        text = path.read_text()
        assert "s3cret" not in text
        for line in text.splitlines():
            if "://" in line and "@" in line:  # user@host is fine; user:password@ is not
                url = line.split("://", 1)[1].split("@", 1)[0]
                assert ":" not in url or "${" in url, f"{path}: {line}"


# -- model files ---------------------------------------------------------------------------


def _artifact(tmp_path: Path) -> Path:
    art = tmp_path / "artifact"
    art.mkdir()
    (art / "labels.json").write_text(json.dumps(["731815", "610910"]))
    return art


class _Touch:
    """Unpickling it creates ``marker``: proof that a file's code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_pickled_model_is_refused_without_being_loaded(tmp_path: Path) -> None:
    import pickle

    art = _artifact(tmp_path)
    marker = tmp_path / "pwned"
    (art / "model.joblib").write_bytes(pickle.dumps(_Touch(marker)))
    with pytest.raises(UnsafeModelError, match="could run arbitrary code"):
        load_predictor(art)
    assert not marker.exists()


def test_an_skops_file_with_untrusted_types_is_refused(tmp_path: Path) -> None:
    import skops.io as sio
    from sklearn.pipeline import FunctionTransformer, Pipeline

    art = _artifact(tmp_path)
    # a function reference is executable code: skops does not trust it by default
    sio.dump(Pipeline([("f", FunctionTransformer(func=print))]), art / "model.skops")
    with pytest.raises(UnsafeModelError, match="refused"):
        load_predictor(art)


def test_an_svm_file_carrying_a_pickle_is_refused_without_running_it(tmp_path: Path) -> None:
    art = _artifact(tmp_path)
    marker = tmp_path / "pwned"
    payload = np.empty(1, dtype=object)
    payload[0] = _Touch(marker)
    config = {"format": 1, "vectorizers": [], "svm": {"C": 1.0, "tol": 1e-3}}
    np.savez(art / "model.npz", config=np.asarray(json.dumps(config)), coef_data=payload)
    with pytest.raises(UnsafeModelError, match="refused"):
        load_predictor(art)
    assert not marker.exists()


@pytest.mark.parametrize("settings", [{"analyzer": "builtins.print"},
                                      {"analyzer": "word", "tokenizer": "os.system"},
                                      {"analyzer": "word", "token_pattern": ["\\S+", {}]}])
def test_an_svm_file_with_settings_that_are_not_plain_values_is_refused(
        tmp_path: Path, settings: dict) -> None:
    art = _artifact(tmp_path)
    config = {"format": 1, "svm": {"C": 1.0, "tol": 1e-3},
              "vectorizers": [{"name": "word", "params": {"ngram_range": [1, 1], **settings}}]}
    np.savez(art / "model.npz", config=np.asarray(json.dumps(config)),
             terms_0=np.asarray(["plastic"]), idf_0=np.ones(1))
    with pytest.raises(UnsafeModelError, match="refused"):
        load_predictor(art)


def test_a_keras_model_with_a_lambda_layer_is_refused(tmp_path: Path) -> None:
    import tensorflow as tf

    art = _artifact(tmp_path)
    inp = tf.keras.Input(shape=(2,))
    out = tf.keras.layers.Lambda(lambda x: x * 2)(inp)  # arbitrary Python in the file
    tf.keras.Model(inp, out).save(art / "model.keras")
    with pytest.raises(UnsafeModelError, match="safe mode"):
        load_predictor(art)
