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
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from hscode.config import Settings

REPO = Path(__file__).resolve().parents[1]
# How long a connection to the SQLite metadata database waits for a lock (sqlite3's default
# is 5 s). Under `airflow standalone` on 2 cores the scheduler, dag-processor and api-server
# write it all the time, and `airflow backfill create` failed with "database is locked".
# Airflow imports this dict by its dotted name ([database] sql_alchemy_connect_args).
SQLITE_CONNECT_ARGS = {"timeout": 120}


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
        # a scheduler started on this home runs nothing until a DAG is unpaused (`airflow
        # dags unpause hscode_nightly_scoring`): no surprise run for last night on first start
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": env.get(
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "True"),
        "AIRFLOW_CONN_SPARK_DEFAULT": env.get("AIRFLOW_CONN_SPARK_DEFAULT") or json.dumps(
            {"conn_type": "spark", "host": settings.spark.master}),
        "PATH": bin_dir + os.pathsep + env.get("PATH", ""),
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "HSCODE_PATHS__HOME": str(settings.home),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
    })
    if "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" not in env:  # the embedded SQLite database
        env.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS",
                       f"{__name__}.SQLITE_CONNECT_ARGS")
    if config_file is not None:
        env["HSCODE_CONFIG"] = str(Path(config_file).resolve())
    from hscode.spark_classes import with_archive

    return with_archive(env)  # every task's spark-submit maps Spark's class archive


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
    _true_start(dag_id, ds, env)
    if expect is not None:
        if not expect.is_file() or expect.stat().st_mtime < started:
            raise RuntimeError(f"{dag_id} {ds} finished without writing {expect}: see {where}")


def _true_start(dag_id: str, ds: str, env: Mapping[str, str]) -> None:
    """Give the latest ``dags test`` run of ``ds`` its real start: its first task's start.

    ``airflow dags test`` records the logical date as the run's start date (Airflow 3.3's
    ``DAG.test``), so the UI showed a 3-minute demo run of today's date as lasting since
    midnight. Only the project's SQLite metadata database (``AIRFLOW_HOME/airflow.db``, the
    local default) is corrected; another database is left as Airflow wrote it.
    """
    import sqlite3

    db = Path(env["AIRFLOW_HOME"]) / "airflow.db"
    if "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" in env or not db.is_file():
        return
    with sqlite3.connect(db, timeout=30) as con:
        con.execute(
            "UPDATE dag_run SET start_date = (SELECT MIN(ti.start_date) FROM task_instance ti"
            " WHERE ti.dag_id = dag_run.dag_id AND ti.run_id = dag_run.run_id)"
            " WHERE id = (SELECT id FROM dag_run WHERE dag_id = ? AND run_type = 'manual'"
            " AND substr(logical_date, 1, 10) = ? ORDER BY run_after DESC LIMIT 1)"
            " AND EXISTS (SELECT 1 FROM task_instance ti WHERE ti.dag_id = dag_run.dag_id"
            " AND ti.run_id = dag_run.run_id AND ti.start_date IS NOT NULL)",
            (dag_id, ds))


FINISHED = ("success", "failed", "not created")


def scheduler_running(env: Mapping[str, str]) -> bool:
    """Whether a live scheduler heartbeats into this environment's metadata database."""
    proc = subprocess.run(_airflow(["jobs", "check", "--job-type", "SchedulerJob",
                                    "--allow-multiple", "--limit", "100"]),
                          env=dict(env), capture_output=True, text=True, check=False)
    return proc.returncode == 0


def dag_runs(dag_id: str, env: Mapping[str, str]) -> list[dict[str, str]]:
    """The DAG's runs as ``airflow dags list-runs -o json`` lists them."""
    proc = subprocess.run(_airflow(["dags", "list-runs", dag_id, "-o", "json"]), env=dict(env),
                          capture_output=True, text=True, check=True)
    for line in reversed(proc.stdout.splitlines()):  # warnings may come first
        if line.startswith(("[{", "[]")):
            return json.loads(line)
    return []


def scheduler_backfill(dag_id: str, first: str, last: str, env: Mapping[str, str],
                       conf: dict | None = None, *, timeout_s: float = 6 * 3600,
                       poll_s: float = 10.0, echo: Callable[[str], None] = print
                       ) -> dict[str, str]:
    """A real Airflow backfill of ``first .. last`` run by the running scheduler; waits for
    its runs and returns ``{date: state}`` (``not created`` for a date Airflow made no run
    for, e.g. before the DAG's start date).

    The DAG is unpaused first (a scheduler runs no backfill of a paused DAG; from then on
    it also runs on its schedule). Dates that already ran are run again
    (``--reprocess-behavior completed``: Airflow clears their run and queues it before
    ``backfill create`` returns), and every write replaces its date's partition.

    Raises:
        TimeoutError: the runs did not all finish within ``timeout_s``.
    """
    import datetime as dt
    import time

    run_airflow(["dags", "unpause", dag_id], env)
    # the nightly run of day D has its logical date at D 02:00: the window ends with D's day;
    # one backfill run at a time (one writer on the embedded warehouse)
    args = ["backfill", "create", "--dag-id", dag_id, "--from-date", first,
            "--to-date", f"{last}T23:59:59+00:00", "--reprocess-behavior", "completed",
            "--max-active-runs", "1"]
    if conf:
        args += ["--dag-run-conf", json.dumps(conf)]
    run_airflow(args, env)
    start, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    days = [(start + dt.timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]
    deadline, reported, states = time.monotonic() + timeout_s, {}, {}
    while True:
        # one run per (DAG, logical date): the backfill's, new or cleared and queued again
        states = {run["logical_date"][:10]: run["state"] for run in dag_runs(dag_id, env)
                  if (run.get("logical_date") or "")[:10] in days}
        for day in days:
            state = states.setdefault(day, "not created")
            if state in FINISHED and reported.get(day) != state:
                echo(f"  {dag_id} {day}: {state}")
                reported[day] = state
        if all(state in FINISHED for state in states.values()):
            return states
        if time.monotonic() > deadline:
            raise TimeoutError(f"backfill of {dag_id} {first}..{last} unfinished after "
                               f"{timeout_s:.0f} s: {states}")
        time.sleep(poll_s)
