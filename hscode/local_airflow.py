"""Running Airflow on this machine for the project: environment, DAG tests, backfills.

Embedded defaults: metadata in SQLite under ``data/airflow/``, the DAGs of ``dags/``, the
Spark connection ``spark_default`` on ``local[*]``, the venv's ``spark-submit`` and
``hscode`` on PATH. ``hscode airflow ...`` runs any Airflow command with this environment
(``hscode airflow standalone`` starts the UI on http://localhost:8080).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from hscode.config import Settings

REPO = Path(__file__).resolve().parents[1]


def airflow_env(settings: Settings, config_file: Path | None = None,
                base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for ``airflow`` commands and the tasks they run."""
    env = dict(os.environ if base is None else base)
    bin_dir = str(Path(sys.executable).parent)
    home = settings.data_dir / "airflow"
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW_CONN_SPARK_DEFAULT": env.get("AIRFLOW_CONN_SPARK_DEFAULT") or json.dumps(
            {"conn_type": "spark", "host": settings.spark.master}),
        "PATH": bin_dir + os.pathsep + env.get("PATH", ""),
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "HSCODE_PATHS__HOME": str(settings.home),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
    })
    if config_file is not None:
        env["HSCODE_CONFIG"] = str(Path(config_file).resolve())
    return env


def _airflow(args: Sequence[str]) -> list[str]:
    return [str(Path(sys.executable).parent / "airflow"), *args]


def run_airflow(args: Sequence[str], env: Mapping[str, str], check: bool = True
                ) -> subprocess.CompletedProcess[str]:
    """Run ``airflow <args>`` (the venv's) with ``env``; output streams through."""
    proc = subprocess.run(_airflow(args), env=dict(env), check=False, text=True)
    if check and proc.returncode:
        raise RuntimeError(f"`airflow {' '.join(args)}` failed with exit code {proc.returncode}")
    return proc


def ensure_metadata_db(env: Mapping[str, str]) -> None:
    """Create or migrate the SQLite metadata database (about 10 s the first time)."""
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    subprocess.run(_airflow(["db", "migrate"]), env=dict(env), check=True,
                   capture_output=True, text=True)


def dags_test(dag_id: str, ds: str, env: Mapping[str, str], conf: dict | None = None,
              expect: Path | None = None, log_file: Path | None = None,
              verbose: bool = False) -> None:
    """``airflow dags test <dag_id> <ds>``: one full run of the DAG in this process tree.

    With ``log_file``, the run's whole output goes to that file and one line per finished
    task is printed (:func:`hscode.progress.follow`; ``verbose`` streams everything too);
    without, the output streams through.

    ``airflow dags test`` can end "successful" without running a task (a date before the
    DAG's start date, say); ``expect`` is a file (a job summary) this run must have
    written, else ``RuntimeError``.

    Raises:
        RuntimeError: the run failed, or did not write ``expect``.
    """
    import time

    from hscode.progress import follow

    args = ["dags", "test", dag_id, ds]
    if conf:
        args += ["--conf", json.dumps(conf)]
    started = time.time()
    if log_file is None:
        run_airflow(args, env)
        where = "the task logs above"
    else:
        code = follow(_airflow(args), env, log_file, verbose=verbose)
        if code:
            raise RuntimeError(f"`airflow {' '.join(args)}` failed with exit code {code}: "
                               f"see {log_file}")
        where = str(log_file)
    if expect is not None:
        if not expect.is_file() or expect.stat().st_mtime < started:
            raise RuntimeError(f"{dag_id} {ds} finished without writing {expect}: see {where}")
