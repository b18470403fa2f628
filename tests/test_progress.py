"""Following a DAG run: one line per finished task from `airflow dags test`'s own log lines,
the whole output kept in a file, its tail shown when the run fails."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from hscode.progress import TaskTracker, follow

pytestmark = pytest.mark.unit

# lines as Airflow 3.3's `dags test` prints them (from a demo run), Spark chatter between
RUN = """\
2026-12-02T12:27:30.814994Z [info     ] [DAG TEST] starting task_id=snapshot map_index=-1 [airflow.sdk.definitions.dag] loc=dag.py:1501
2026-12-02T12:27:30.815365Z [info     ] [DAG TEST] running task <TaskInstance: hscode_retrain.snapshot manual__2026-12-02T12:27:30.691372+00:00 [TaskInstanceState.SCHEDULED] ti_id=01a236b9-6a52-7f2e-bde1-b704f2b5d164> [airflow.sdk.definitions.dag] loc=dag.py:1504
2026-12-02T12:27:35.565923Z [info     ] Task instance state updated    [airflow.api_fastapi.execution_api.routes.task_instances] correlation_id=01a236b9-703f-75a0-b61b-b776e4834196 loc=task_instances.py:254 rows_affected=1 ti_id=01a236b9-6a52-7f2e-bde1-b704f2b5d164
2026-12-02T12:27:40.543270Z [info     ] 26/12/02 12:27:40 INFO BlockManagerMaster: Registered BlockManager [airflow.task.hooks.airflow.providers.apache.spark.hooks.spark_submit.SparkSubmitHook] loc=spark_submit.py:663
2026-12-02T12:27:56.787734Z [info     ] Task instance state updated    [airflow.api_fastapi.execution_api.routes.task_instances] correlation_id=01a236b9-cfe5-7f7f-b79b-a6fac80605c1 loc=task_instances.py:485 new_state=success rows_affected=1 ti_id=01a236b9-6a52-7f2e-bde1-b704f2b5d164
2026-12-02T12:27:56.798099Z [info     ] [DAG TEST] end task task_id=snapshot map_index=-1 [airflow.sdk.definitions.dag] loc=dag.py:1563
2026-12-02T12:27:56.804730Z [info     ] [DAG TEST] starting task_id=validate_snapshot map_index=-1 [airflow.sdk.definitions.dag] loc=dag.py:1501
2026-12-02T12:27:56.805092Z [info     ] [DAG TEST] running task <TaskInstance: hscode_retrain.validate_snapshot manual__2026-12-02T12:27:30.691372+00:00 [TaskInstanceState.SCHEDULED] ti_id=01a236b9-6a5c-7018-b919-9ddc00f579b8> [airflow.sdk.definitions.dag] loc=dag.py:1504
2026-12-02T12:29:12.872918Z [info     ] Task instance state updated    [airflow.api_fastapi.execution_api.routes.task_instances] correlation_id=01a236b9-d043-7b44-aaf0-ba186d7553ad loc=task_instances.py:485 new_state=failed rows_affected=1 ti_id=01a236b9-6a5c-7018-b919-9ddc00f579b8
2026-12-02T12:29:12.878037Z [info     ] [DAG TEST] end task task_id=validate_snapshot map_index=-1 [airflow.sdk.definitions.dag] loc=dag.py:1563
"""


def test_each_task_ends_with_its_state_and_duration_from_the_run_log() -> None:
    tracker = TaskTracker()
    done = [d for line in RUN.splitlines(keepends=True) for d in tracker.feed(line)]
    assert [(d.task_id, d.state, round(d.seconds, 2)) for d in done] == [
        ("snapshot", "success", 25.98), ("validate_snapshot", "failed", 76.07)]
    assert "snapshot" in done[0].line() and "26.0s" in done[0].line()
    assert "1m 16s" in done[1].line() and done[1].line().lstrip().startswith("!!")
    assert tracker.running is None


def test_the_running_task_is_named_with_what_it_is_doing_until_it_ends() -> None:
    tracker = TaskTracker()
    for line in RUN.splitlines()[:4]:
        tracker.feed(line)
    assert tracker.status() == "running snapshot"
    tracker.feed("2026-12-02T12:29:32.753387Z [info     ] [0]<stdout>:Epoch 3/10          "
                 "[airflow.task.hooks.airflow.providers.standard.hooks.subprocess."
                 "SubprocessHook] loc=subprocess.py:106")
    assert tracker.status() == "running snapshot: Epoch 3/10"
    tracker.feed("2026-12-02T12:35:00.100000Z [info     ] 2026-12-02 12:35:00,100 INFO "
                 "hscode.select: fold 2 of lstm (5/12) [airflow.task.hooks.airflow.providers."
                 "standard.hooks.subprocess.SubprocessHook] loc=subprocess.py:106")
    assert tracker.status() == "running snapshot: fold 2 of lstm (5/12)"
    for line in RUN.splitlines()[4:6]:
        tracker.feed(line)
    assert tracker.status() == "working"


def _script(tmp_path: Path, body: str) -> list[str]:
    script = tmp_path / "run.py"
    script.write_text(body)
    return [sys.executable, str(script)]


def test_follow_keeps_the_whole_output_and_prints_one_line_per_task(tmp_path: Path) -> None:
    cmd = _script(tmp_path, f"import sys\nsys.stdout.write({RUN!r})\n"
                            "sys.stderr.write('a warning on stderr\\n')\n")
    log, shown = tmp_path / "logs" / "run.log", []
    assert follow(cmd, {}, log, echo=shown.append) == 0
    assert len(shown) == 2 and "snapshot" in shown[0] and "failed" in shown[1]
    kept = log.read_text()
    assert kept.count("\n") == RUN.count("\n") + 1 and "a warning on stderr" in kept


def test_a_failed_run_shows_the_tail_of_its_log(tmp_path: Path) -> None:
    lines = "".join(f"print('line {i}')\n" for i in range(100))
    cmd = _script(tmp_path, lines + "raise SystemExit(3)\n")
    shown: list[str] = []
    assert follow(cmd, {}, tmp_path / "run.log", echo=shown.append) == 3
    assert "exit code 3" in shown[0] and str(tmp_path / "run.log") in shown[0]
    assert [s.strip() for s in shown[1:]] == [f"line {i}" for i in range(60, 100)]


def test_verbose_streams_every_line(tmp_path: Path) -> None:
    cmd = _script(tmp_path, "print('spark says hello')\n")
    shown: list[str] = []
    follow(cmd, {}, tmp_path / "run.log", verbose=True, echo=shown.append)
    assert shown == ["spark says hello"]
