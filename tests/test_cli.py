"""The ``hscode`` CLI: help on every command, seed and tables on a temporary warehouse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hscode.cli import app

runner = CliRunner()
COMMANDS = ["config", "seed", "tables", "doctor", "submit", "demo", "train", "search", "select",
            "score", "night", "backfill"]  # `hscode airflow --help` is Airflow's (below)


@pytest.mark.unit
@pytest.mark.parametrize("command", [[], *[[c] for c in COMMANDS]])
def test_help_on_every_command(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


@pytest.mark.unit
@pytest.mark.parametrize("module", ["hscode", "hscode.cli"])
def test_python_dash_m_runs_the_whole_cli(module: str) -> None:
    # bench/accuracy.py runs ``python -m hscode evaluate``; ``-m hscode.cli`` once failed on
    # the review commands' import of hscode.cli (a second copy of the module as __main__)
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", module, "review", "--help"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "import" in done.stdout and "serve" in done.stdout


@pytest.mark.integration
def test_airflow_passes_help_through_and_pauses_new_dags(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    hscode = str(Path(sys.executable).parent / "hscode")
    env = {**os.environ, "HSCODE_PATHS__HOME": str(tmp_path)}
    env.pop("AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", None)
    out = subprocess.run([hscode, "airflow", "backfill", "create", "--help"], env=env,
                         capture_output=True, text=True, timeout=300, check=True).stdout
    assert "usage: airflow backfill create" in out.lower() and "--reprocess-behavior" in out
    out = subprocess.run([hscode, "airflow", "config", "get-value", "core",
                          "dags_are_paused_at_creation"], env=env, capture_output=True,
                         text=True, timeout=300, check=True).stdout
    assert out.strip() == "True"


@pytest.mark.unit
def test_config_prints_resolved_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HSCODE_PATHS__HOME", str(tmp_path))
    result = runner.invoke(app, ["config"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["resolved"]["warehouse_url"].endswith("data/warehouse.duckdb")


@pytest.mark.integration
def test_seed_then_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_data: Path):
    src = tmp_path / "decl.csv"
    src.write_text('hs10,goods_description\n0101210000,"LIVE HORSE"\n39241,BAD\n')
    monkeypatch.setenv("HSCODE_PATHS__HOME", str(tmp_path))
    monkeypatch.setenv("HSCODE_PATHS__SOURCE_DIR", str(shared_data))
    result = runner.invoke(app, ["seed", "--declarations", str(src)])
    assert result.exit_code == 0, result.output
    assert "rejected: malformed_code" in result.output
    assert (tmp_path / "data" / "warehouse.duckdb").is_file()
    result = runner.invoke(app, ["tables"])
    assert result.exit_code == 0, result.output
    assert "product_master" in result.output


@pytest.mark.unit
def test_submit_refuses_unknown_job_and_bad_date() -> None:
    from hscode.submit import spark_submit_command

    with pytest.raises(ValueError, match="unknown job"):
        spark_submit_command("drop_tables", "2026-11-01", "local[*]")
    cmd = spark_submit_command("clean_products", "2026-11-01", "spark://h:7077")
    assert cmd[1:3] == ["--master", "spark://h:7077"] and cmd[-2:] == ["--ds", "2026-11-01"]
    result = runner.invoke(app, ["submit", "extract_products", "--ds", "2026-02-30"])
    assert result.exit_code != 0


@pytest.mark.unit
def test_a_job_in_process_answers_with_the_exit_codes_of_its_spark_submit_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """Failures before any Spark work: bad arguments 2, a bad config 2, anything unmapped
    1 with its trace (here the data directory is a file), an unknown job refused."""
    from hscode.submit import run_in_process

    with pytest.raises(ValueError, match="unknown job"):
        run_in_process("drop_tables", "2026-11-01")
    assert run_in_process("score_catalog", "2026-11-01", None, ["--model-version", "x"]) == 2
    assert "not an integer" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("quality:\n  min_rows: -1\n")
    monkeypatch.setenv("HSCODE_CONFIG", str(bad))
    assert run_in_process("extract_products", "2026-11-01") == 2
    assert "configuration error" in capsys.readouterr().err
    monkeypatch.delenv("HSCODE_CONFIG")
    (tmp_path / "home").write_text("not a directory")
    monkeypatch.setenv("HSCODE_PATHS__HOME", str(tmp_path / "home"))
    assert run_in_process("clean_products", "2026-11-01") == 1


@pytest.mark.integration
def test_submit_hands_the_config_file_to_the_job(tmp_path: Path) -> None:
    import subprocess
    import sys

    bad = tmp_path / "bad.yaml"
    bad.write_text("quality:\n  min_rows: -1\n")  # refused by the job's settings validation
    hscode = str(Path(sys.executable).parent / "hscode")
    proc = subprocess.run([hscode, "submit", "extract_products", "--ds", "2026-11-01",
                           "--config", str(bad)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300, check=False)
    out = proc.stdout + proc.stderr  # spark-submit passes the driver's stderr to stdout
    assert proc.returncode == 2, out[-2000:]
    assert "configuration error" in out and "min_rows" in out
