"""The Airflow DAGs: integrity, task graphs, and real end-to-end runs on a slice of the data."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow.compute as pc
import pytest

from tests.conftest import REPO, SHARED_DATA

DS = "2026-11-01"

_INSPECT = r"""
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
heavy = [m for m in ("pyspark", "tensorflow", "great_expectations", "horovod", "keras")
         if m in sys.modules]
out = {"import_errors": {k: str(v) for k, v in bag.import_errors.items()}, "heavy": heavy,
       "dags": {}}
for dag in bag.dags.values():
    out["dags"][dag.dag_id] = {
        "tags": sorted(dag.tags), "doc_md": dag.doc_md or "",
        "schedule": str(getattr(dag.timetable, "expression", None)),
        "max_active_runs": dag.max_active_runs,
        "tasks": {t.task_id: {"retries": t.retries, "upstream": sorted(t.upstream_task_ids),
                              "timeout": t.execution_timeout.total_seconds()
                              if t.execution_timeout else None,
                              "callback": bool(t.on_failure_callback),
                              "type": type(t).__name__,
                              "outlets": [getattr(o, "uri", str(o)) for o in t.outlets]}
                  for t in dag.tasks}}
# what each Spark task's spark-submit gets, rendered as Airflow renders it when the task runs
# (after the import check: the macro may import PySpark then)
import datetime as dt
from types import SimpleNamespace
run = SimpleNamespace(logical_date=dt.datetime(2026, 11, 2), run_after=None)
for dag in bag.dags.values():
    for t in dag.tasks:
        if type(t).__name__ == "SparkSubmitOperator":
            template = dag.get_template_env().from_string(t.env_vars["SPARK_SUBMIT_OPTS"])
            out["dags"][dag.dag_id]["tasks"][t.task_id]["spark_submit_opts"] = (
                template.render(dag_run=run))
print("DAGS=" + json.dumps(out))
"""


@pytest.fixture(scope="module")
def dags(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The DAG folder parsed by Airflow in a clean interpreter (its project home holds the
    3-row snapshot of a night before)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    home = tmp_path_factory.mktemp("home")
    snapshot = home / "data" / "snapshots" / "product_master" / "ds=2026-11-01"
    snapshot.mkdir(parents=True)
    pq.write_table(pa.table({"product_id": ["a", "b", "c"]}), snapshot / "part-0.parquet")
    env = {"AIRFLOW_HOME": str(tmp_path_factory.mktemp("airflow")),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "PATH": str(Path(sys.executable).parent),
           "PYTHONPATH": str(REPO), "HSCODE_PATHS__HOME": str(home)}
    proc = subprocess.run([sys.executable, "-c", _INSPECT, str(REPO / "dags")], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("DAGS=")), None)
    assert line, proc.stderr[-3000:]
    return json.loads(line[5:])


@pytest.mark.unit
def test_dags_import_cleanly_without_heavy_imports(dags: dict) -> None:
    assert dags["import_errors"] == {}
    assert dags["heavy"] == []
    assert set(dags["dags"]) == {"hscode_nightly_scoring", "hscode_retrain"}
    for path in (REPO / "dags").glob("*.py"):
        assert "Variable" not in path.read_text(), f"{path.name} reads Variables at parse time"


@pytest.mark.unit
def test_every_task_retries_times_out_and_reports_failure(dags: dict) -> None:
    for dag_id, dag in dags["dags"].items():
        assert "hscode" in dag["tags"] and dag["doc_md"].strip(), dag_id
        assert dag["max_active_runs"] == 1
        for task_id, task in dag["tasks"].items():
            assert task["retries"] >= 2, (dag_id, task_id)
            assert task["timeout"] and task["timeout"] > 0, (dag_id, task_id)
            assert task["callback"], (dag_id, task_id)


@pytest.mark.unit
def test_nightly_task_graph(dags: dict) -> None:
    tasks = dags["dags"]["hscode_nightly_scoring"]["tasks"]
    chain = ["extract", "validate_snapshot", "clean", "validate_clean", "score",
             "validate_predictions", "publish", "drift_check", "drift_breached", "signal_retrain"]
    assert set(tasks) == set(chain) | {"enough_reviews", "signal_reviews"}
    assert tasks["enough_reviews"]["upstream"] == ["publish"]
    assert tasks["signal_reviews"]["upstream"] == ["enough_reviews"]
    assert tasks["signal_reviews"]["outlets"] == ["hscode://warehouse/hs_code_reviews"]
    for before, after in zip(chain, chain[1:], strict=False):
        assert tasks[after]["upstream"] == [before], after
    spark = {t for t, v in tasks.items() if v["type"] == "SparkSubmitOperator"}
    # the gates run inside the Spark job that wrote the data; their tasks read the results
    assert spark == {"extract", "clean", "score", "publish", "drift_check"}
    assert tasks["publish"]["outlets"] == ["hscode://warehouse/hs_predictions"]
    assert tasks["signal_retrain"]["outlets"] == ["hscode://signals/drift"]
    assert "0 2 * * *" in dags["dags"]["hscode_nightly_scoring"]["schedule"]


@pytest.mark.unit
def test_spark_tasks_start_a_small_catalogs_driver_jvm_quick(dags: dict) -> None:
    # spark-submit starts the driver before the job's Python runs: the task's environment
    # carries the small-catalog JVM options, chosen when the task runs
    spark = {(d, t): v["spark_submit_opts"] for d, dag in dags["dags"].items()
             for t, v in dag["tasks"].items() if v["type"] == "SparkSubmitOperator"}
    assert len(spark) == 8
    for where, opts in spark.items():
        assert "-XX:TieredStopAtLevel=1" in opts and "-XX:+UseSerialGC" in opts, where


@pytest.mark.unit
def test_retrain_task_graph(dags: dict) -> None:
    tasks = dags["dags"]["hscode_retrain"]["tasks"]
    group = {"train.train_dnn", "train.train_lstm", "train.train_textcnn",
             "train.train_svm"}
    assert group <= set(tasks)
    for t in group:
        assert tasks[t]["upstream"] == ["prepare_training"]
    assert tasks["prepare_training"]["upstream"] == ["validate_clean"]
    assert tasks["cross_validate"]["upstream"] == sorted(group)
    assert tasks["promote"]["upstream"] == ["cross_validate"]
    assert tasks["report"]["upstream"] == ["promote"]


# --- end to end: one retrain and one nightly run of the real DAGs on 1,000 real products ----
# (each `airflow dags test` task is a real spark-submit or hscode process; the outputs of the
# two runs are shared by the tests below)

ROWS = 1000
TINY = """
training: {epochs: 1, min_rows_per_code: 5, num_proc: 1, hash_buckets: 32768}
selection: {folds: 2, epochs: 1}
spark: {log_level: ERROR}
quality: {data_docs: false}
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> dict:
    """A home with the slice seeded, the retrain DAG run for DS, then the nightly DAG run for
    DS through `hscode backfill` (model pinned to registry version 1)."""
    import os

    from hscode.catalog import Catalog
    from hscode.config import load_settings
    from hscode.local_airflow import airflow_env, dags_test, ensure_metadata_db
    from tests.pipeline import seed_slice

    home = tmp_path_factory.mktemp("project")
    config = home / "hscode.yaml"
    config.write_text(TINY)
    base = {**os.environ, "HSCODE_PATHS__SOURCE_DIR": str(SHARED_DATA), "HSCODE_RETRY_DELAY_S": "5",
            "HSCODE_PATHS__HOME": str(home)}
    settings = load_settings(config, environ=base)
    seed_slice(settings, ROWS)
    env = airflow_env(settings, config, base=base)
    ensure_metadata_db(env)
    catalog = Catalog.from_settings(settings)
    dags_test("hscode_retrain", DS, env, expect=catalog.selection_dir(DS) / "selection.json")
    hscode = str(Path(sys.executable).parent / "hscode")
    backfill = subprocess.run([hscode, "backfill", "--from-date", DS, "--to-date", DS,
                               "--model-version", "1", "--config", str(config)], env=base,
                              capture_output=True, text=True, timeout=1200, check=False)
    return {"home": home, "settings": settings, "catalog": catalog, "backfill": backfill,
            "config": config, "base": base, "env": env}


def _predictions(settings):
    from hscode.warehouse import warehouse_from_settings
    from hscode.warehouse.schema import HS_PREDICTIONS

    with warehouse_from_settings(settings) as wh:
        return wh.read_table(HS_PREDICTIONS)


@pytest.mark.integration
@pytest.mark.timeout(1800)
def test_retrain_dag_trains_selects_promotes_and_reports(project: dict) -> None:
    import pandas as pd

    from hscode.selection.registry import Registry

    catalog = project["catalog"]
    for model in ("dnn", "lstm", "textcnn", "svm"):
        assert list((catalog.models / model).glob("*/lineage.json")), model
    champion = Registry(catalog.registry).alias("champion")
    selection = json.loads((catalog.selection_dir(DS) / "selection.json").read_text())
    assert champion is not None and champion["version"] == 1
    assert selection["champion"] == champion["model"] and selection["folds"] == 2
    assert selection["cv_mean_fbeta"][selection["champion"]] == max(
        selection["cv_mean_fbeta"].values())  # the champion has the best CV F-beta
    # the report says who won, lists the SVM baseline and a row per tested code
    html = (catalog.selection_dir(DS) / "report.html").read_text()
    assert f"Champion: <b>{selection['champion']}</b>" in html
    svm = json.loads(next((catalog.models / "svm").glob("*/metrics.json")).read_text())
    # every candidate competed: the four single models and both ensembles, each measured
    assert set(selection["candidates"]) == {"dnn", "lstm", "textcnn", "svm", "vote", "routed"}
    candidates = {r["model"]: r for r in selection["candidate_table"]}
    assert candidates["svm"]["hs6_accuracy"] == pytest.approx(svm["hs6_accuracy"])
    assert all(r["ece"] is not None and r["test_coverage"] is not None
               for r in candidates.values())
    # the hold-out table of the report: the SVM's row (the champion's, when it won) carries
    # its test accuracy
    row = re.search(r"<td>svm(?: \(champion\))?</td>\s*<td>([0-9.]+)</td>",
                    html[html.index("Hold-out accuracy (every candidate)"):])
    assert row and float(row.group(1)) == pytest.approx(svm["hs6_accuracy"], abs=5e-5)
    row = re.search(rf"<td>{selection['champion']} \(champion\)</td>\s*<td>([0-9.]+)</td>",
                    html)
    assert row and float(row.group(1)) == pytest.approx(selection["holdout_hs6"], abs=5e-5)
    tests = pd.read_csv(catalog.selection_dir(DS) / "per_code_tests.csv", dtype={"code": str})
    assert len(tests) == selection["codes_tested"] > 0
    shown = tests.sort_values("p_adjusted").head(60)
    assert all(f"<td>{code}</td>" in html for code in shown["code"])
    assert (f"significantly better: {selection['codes_significant']} of\n"
            f"{selection['codes_tested']}") in html


@pytest.mark.integration
@pytest.mark.timeout(1800)
def test_backfill_command_runs_the_nightly_dag_and_publishes(project: dict) -> None:
    backfill = project["backfill"]
    assert backfill.returncode == 0, (backfill.stdout + backfill.stderr)[-4000:]
    shown = backfill.stdout + backfill.stderr
    assert f"hscode_nightly_scoring {DS}" in shown  # the rule
    # a line per task with its state; the whole output in the run's log file, where Spark
    # says only what matters (no INFO start-up chatter)
    for task in ("extract", "clean", "score", "validate_predictions", "publish", "drift_check"):
        assert re.search(rf"ok {task} +success", shown), shown[-3000:]
    assert len(shown.splitlines()) < 40, shown[-3000:]
    log = project["catalog"].dag_log("hscode_nightly_scoring", DS)
    assert str(log) in shown
    kept = log.read_text()
    assert "[DAG TEST] end task task_id=drift_check" in kept
    assert " INFO BlockManager" not in kept and " INFO SparkContext: Submitted" not in kept
    # the run's start in Airflow is when its first task started, not its logical date
    import datetime as dt

    from hscode.local_airflow import dag_runs

    (run,) = [r for r in dag_runs("hscode_nightly_scoring", project["env"])
              if r["logical_date"].startswith(DS)]
    started = dt.datetime.fromisoformat(run["start_date"])
    assert dt.datetime.now(dt.UTC) - started < dt.timedelta(hours=2), run
    settings = project["settings"]
    pred = _predictions(settings)
    days = {str(r["values"]): r["counts"] for r in pc.value_counts(pred.column("ds")).to_pylist()}
    assert days == {DS: ROWS}  # + 2 products without text: unscorable
    assert set(pred.column("model_version").to_pylist()) == {"registry:1"}
    from hscode.warehouse import warehouse_from_settings

    with warehouse_from_settings(settings) as wh:
        runs = wh.execute("SELECT CAST(ds AS VARCHAR), predicted_rows, unscorable_rows "
                          "FROM hs_scoring_runs ORDER BY ds")
        drift = wh.execute("SELECT COUNT(*), COUNT(DISTINCT ds) FROM hs_drift")[0]
        queue = wh.execute("SELECT COUNT(*) FROM hs_review_queue")[0][0]
    assert runs == [(DS, ROWS, 2)]
    assert drift == (3, 1)
    assert queue > 0
    # every gate of the night ran and passed (no Data Docs: the tiny profile turns them off)
    run_dir = project["catalog"].run_dir(DS)
    for suite in ("raw_products", "clean_scoring", "clean_training", "predictions"):
        result = json.loads((run_dir / f"validation_{suite}.json").read_text())
        assert result["success"] and result["data_docs"] is None, suite


@pytest.mark.integration
def test_the_selection_report_renders_in_a_browser(project: dict, browser) -> None:
    report = project["catalog"].selection_dir(DS) / "report.html"
    page = browser.visit(report.resolve().as_uri(), "selection-report")
    assert page.broken_images == [] and page.failed_requests == []
    images = browser.page.evaluate("() => document.images.length")
    assert images >= 4  # reliability diagrams, fold box plots, per-code F-beta, confusion
    assert "Champion:" in page.text and "Hold-out accuracy (every candidate)" in page.text
    assert page.screenshot.stat().st_size > 20_000


@pytest.mark.unit
def test_the_embedded_airflow_waits_for_sqlite_locks_and_leaves_other_databases_alone(
        tmp_path: Path) -> None:
    from hscode.config import load_settings
    from hscode.local_airflow import SQLITE_CONNECT_ARGS, airflow_env

    settings = load_settings(environ={"HSCODE_PATHS__HOME": str(tmp_path)})
    env = airflow_env(settings, base={})
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS"] == \
        "hscode.local_airflow.SQLITE_CONNECT_ARGS"
    assert SQLITE_CONNECT_ARGS["timeout"] >= 60
    pg = airflow_env(settings, base={"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN":
                                     "postgresql+psycopg2://airflow@db/airflow"})
    assert "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS" not in pg


@pytest.mark.unit
def test_backfill_refuses_a_reversed_range() -> None:
    from typer.testing import CliRunner

    from hscode.cli import app

    result = CliRunner().invoke(app, ["backfill", "--from-date", "2026-11-03",
                                      "--to-date", "2026-11-01"])
    assert result.exit_code == 2 and "before --from-date" in result.output


# --- under a real scheduler (`make test-all`): airflow standalone on the project's home ---

@pytest.fixture(scope="module")
def scheduler(project: dict) -> Iterator[dict]:
    """`airflow standalone` (api-server, scheduler, dag-processor, triggerer) on the
    project's Airflow home, as a deployment runs it; stopped with its children afterwards.
    Yields its environment and the UI's address."""
    import os
    import signal
    import socket
    import time

    from hscode.local_airflow import scheduler_running

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**project["env"], "AIRFLOW__API__PORT": str(port),  # tasks report to its API
           "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{port}/execution/"}
    log = (project["home"] / "standalone.log").open("w")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "airflow"), "standalone"],
                            env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not scheduler_running(env):
            assert proc.poll() is None and time.monotonic() < deadline, \
                (project["home"] / "standalone.log").read_text()[-3000:]
            time.sleep(5)
        yield {"env": env, "url": f"http://localhost:{port}", "started": time.monotonic()}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


BACKFILLED = ["2026-11-02", "2026-11-03", "2026-11-04"]


def _hscode_backfill(project: dict, first: str, last: str) -> str:
    out = subprocess.run([str(Path(sys.executable).parent / "hscode"), "backfill",
                          "--model-version", "1", "--config", str(project["config"]),
                          "--from-date", first, "--to-date", last], env=project["base"],
                         capture_output=True, text=True, timeout=2000, check=False)
    shown = out.stdout + out.stderr
    assert out.returncode == 0, shown[-4000:]
    return shown


def _wait_for_runs(dag_id: str, env: dict, done, timeout_s: float = 1800) -> list[dict]:
    """Poll the DAG's runs until ``done(runs)``; the runs then."""
    import time

    from hscode.local_airflow import dag_runs

    deadline = time.monotonic() + timeout_s
    while not done(runs := dag_runs(dag_id, env)):
        assert time.monotonic() < deadline, runs
        time.sleep(10)
    return runs


@pytest.mark.integration
@pytest.mark.slow  # a standalone Airflow and five nightly runs
@pytest.mark.timeout(2400)
def test_a_running_scheduler_backfills_three_dates_and_a_rerun_changes_nothing(
        project: dict, scheduler: dict) -> None:
    import time

    from hscode.warehouse import warehouse_from_settings
    from hscode.warehouse.schema import HS_SCORING_RUNS

    started = time.monotonic()
    shown = _hscode_backfill(project, BACKFILLED[0], BACKFILLED[-1])
    print(f"backfill of 3 dates: {time.monotonic() - started:.0f} s")
    assert "through the running scheduler" in shown
    for day in BACKFILLED:
        assert f"hscode_nightly_scoring {day}: success" in shown
    settings = project["settings"]

    def night(day: str) -> tuple:
        with warehouse_from_settings(settings) as wh:
            rows = wh.execute("SELECT product_id, predicted_hs6, probability, model_version FROM "
                              "hs_predictions WHERE ds = CAST(? AS DATE) ORDER BY product_id",
                              [day])
            run = wh.execute(f"SELECT predicted_rows, unscorable_rows FROM {HS_SCORING_RUNS.name}"
                             " WHERE ds = CAST(? AS DATE)", [day])
        return rows, run

    nights = {day: night(day) for day in BACKFILLED}
    for day, (rows, run) in nights.items():
        assert len(rows) == ROWS and {r[3] for r in rows} == {"registry:1"}, day
        assert run == [(ROWS, 2)], day
    started = time.monotonic()
    _hscode_backfill(project, BACKFILLED[1], BACKFILLED[1])  # one date again, same path
    print(f"rerun of one date: {time.monotonic() - started:.0f} s")
    assert night(BACKFILLED[1]) == nights[BACKFILLED[1]]


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_airflow_ui_shows_both_dags_the_green_runs_and_the_backfill(
        project: dict, scheduler: dict, browser) -> None:
    from hscode.local_airflow import dag_runs

    env, url = scheduler["env"], scheduler["url"]
    backfill_runs = [r for r in dag_runs("hscode_nightly_scoring", env)
                     if r["logical_date"][:10] in BACKFILLED]
    assert {r["state"] for r in backfill_runs} == {"success"}  # the test above ran first
    password = json.loads((Path(env["AIRFLOW_HOME"])
                           / "simple_auth_manager_passwords.json.generated").read_text())
    login = browser.login(url, "admin", password["admin"])
    assert "Sign into Airflow" in login.text
    pages = {
        "airflow-dags": ("/dags", "hscode_retrain"),
        "airflow-nightly-grid": ("/dags/hscode_nightly_scoring", "signal_retrain"),
        "airflow-nightly-runs": ("/dags/hscode_nightly_scoring/runs", "backfill__"),
        "airflow-nightly-backfills": ("/dags/hscode_nightly_scoring/backfills",
                                      f"{BACKFILLED[0]} 00:00:00"),
    }
    seen = {}
    for shot, (path, wait_for) in pages.items():
        seen[shot] = browser.visit(url + path, shot, wait_for=wait_for)
        assert seen[shot].broken_images == [] and seen[shot].failed_requests == [], shot
        assert "/auth/login" not in seen[shot].url, shot  # logged in
    assert {"hscode_nightly_scoring", "hscode_retrain"} <= set(seen["airflow-dags"].text.split())
    runs = seen["airflow-nightly-runs"].text
    for run in backfill_runs:
        assert run["run_id"] in runs
    assert "Success" in runs and "Failed" not in runs and "Backfill" in runs
    assert f"{BACKFILLED[-1]} 23:59:59" in seen["airflow-nightly-backfills"].text


@pytest.mark.integration
@pytest.mark.slow  # a nightly run, then the whole (tiny) retrain under the scheduler
@pytest.mark.timeout(2400)
def test_a_drift_breach_makes_the_scheduler_start_the_retrain(project: dict,
                                                              scheduler: dict) -> None:
    import time

    from hscode.local_airflow import dag_runs, run_airflow

    env, day = scheduler["env"], "2026-11-05"
    config = project["config"]
    original = config.read_text()
    # the drill: no null catalogs, thresholds near 0, so tonight's drift check breaches
    config.write_text(original + "drift: {bootstrap_samples: 0, code_psi_threshold: 1.0e-9,"
                      " code_kl_threshold: 1.0e-9, confidence_psi_threshold: 1.0e-9}\n")
    try:
        run_airflow(["dags", "unpause", "hscode_retrain"], env)
        before = {r["run_id"] for r in dag_runs("hscode_retrain", env)}
        started = time.monotonic()
        run_airflow(["dags", "trigger", "hscode_nightly_scoring",
                     "--logical-date", f"{day}T02:00:00+00:00", "--conf",
                     json.dumps({"model_version": 1})], env)
        nightly = _wait_for_runs("hscode_nightly_scoring", env, lambda runs: any(
            r["logical_date"][:10] == day and r["state"] in ("success", "failed")
            for r in runs))
        (tonight,) = [r for r in nightly if r["logical_date"][:10] == day]
        assert tonight["state"] == "success", tonight
        drift = json.loads((project["catalog"].run_dir(day) / "drift.json").read_text())
        assert drift["retrain_recommended"] and drift["breached"], drift
        print(f"nightly run with the drill: {time.monotonic() - started:.0f} s")
    finally:
        config.write_text(original)
    started = time.monotonic()
    retrains = _wait_for_runs("hscode_retrain", env, lambda runs: any(
        r["run_id"] not in before and r["state"] in ("success", "failed") for r in runs))
    (retrain,) = [r for r in retrains if r["run_id"] not in before]
    print(f"asset-triggered retrain: {time.monotonic() - started:.0f} s")
    assert retrain["run_id"].startswith("asset_triggered__"), retrain
    assert retrain["state"] == "success", retrain
