"""Following an ``airflow dags test`` run as a person would: one line per task, logs in a file.

``airflow dags test`` streams every task's log (Spark's and TensorFlow's included) to the
terminal: a demo night is over a thousand lines, the useful ones lost among them.
:func:`follow` runs the command with its whole output going to a log file instead, and
prints one line per finished task (state and duration, read from the run's own log lines),
a spinner naming the running task while a terminal is attached, and, when the run fails,
the log's last lines with the file's path. ``verbose`` streams everything as before.

:class:`TaskTracker` reads the Airflow 3 ``dags test`` lines it needs::

    ... [DAG TEST] starting task_id=clean map_index=-1 ...
    ... [DAG TEST] running task <TaskInstance: hscode_retrain.clean manual__... ti_id=0a1...>
    ... Task instance state updated ... new_state=success rows_affected=1 ti_id=0a1...
    ... [DAG TEST] end task task_id=clean map_index=-1 ...
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)Z?\s")
_START = re.compile(r"\[DAG TEST\] starting task_id=(\S+)")
_RUNNING = re.compile(r"\[DAG TEST\] running task <TaskInstance: [^ .]+\.(\S+) .*ti_id=([0-9a-f-]+)")
_STATE = re.compile(r"new_state=(\w+)")
_TI = re.compile(r"ti_id=([0-9a-f-]+)")
_END = re.compile(r"\[DAG TEST\] end task task_id=(\S+)")
# what the running task is doing: a Keras epoch, a selection step (hscode select's log)
_DETAIL = re.compile(r"(Epoch \d+/\d+)|hscode\.select: (.+?)(?: \[airflow\.|$)")
TAIL_LINES = 40  # log lines shown when a run fails


@dataclass(frozen=True)
class TaskDone:
    """A task that ended: its id, last state and seconds from start to end."""

    task_id: str
    state: str
    seconds: float

    def line(self) -> str:
        mark = {"success": "ok", "skipped": "--"}.get(self.state, "!!")
        return f"  {mark} {self.task_id:<28} {self.state:<10} {duration(self.seconds):>8}"


@dataclass
class TaskTracker:
    """Reads ``dags test`` lines; :meth:`feed` returns the tasks a line ends."""

    started: dict[str, dt.datetime] = field(default_factory=dict)
    task_of_ti: dict[str, str] = field(default_factory=dict)
    state: dict[str, str] = field(default_factory=dict)
    running: str | None = None
    detail: str = ""

    def feed(self, line: str, now: dt.datetime | None = None) -> list[TaskDone]:
        at = _stamp(line) or now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
        if m := _START.search(line):
            self.started[m.group(1)], self.running, self.detail = at, m.group(1), ""
        elif m := _RUNNING.search(line):
            self.task_of_ti[m.group(2)] = m.group(1)
        elif (m := _STATE.search(line)) and (ti := _TI.search(line)):
            task = self.task_of_ti.get(ti.group(1))
            if task is not None:
                self.state[task] = m.group(1)
        elif m := _END.search(line):
            task = m.group(1)
            start = self.started.pop(task, at)
            self.running, self.detail = None, ""
            return [TaskDone(task, self.state.get(task, "unknown"),
                             (at - start).total_seconds())]
        elif m := _DETAIL.search(line):
            self.detail = (m.group(1) or m.group(2)).strip()
        return []

    def status(self) -> str:
        """What is running now, for the spinner."""
        if not self.running:
            return "working"
        return f"running {self.running}" + (f": {self.detail}" if self.detail else "")


def follow(cmd: Sequence[str], env: Mapping[str, str], log_file: Path, *,
           verbose: bool = False, echo: Callable[[str], None] | None = None) -> int:
    """Run ``cmd``, its output (stderr included) appended to ``log_file``; return its exit code.

    Without ``verbose``, ``echo`` (default: printed to stderr, beside the spinner) gets one
    line per finished task and, on failure, the last :data:`TAIL_LINES` lines of the output;
    with it, every line.
    """
    from rich.console import Console

    log_file.parent.mkdir(parents=True, exist_ok=True)
    tracker, tail = TaskTracker(), deque(maxlen=TAIL_LINES)
    console = Console(stderr=True)
    if echo is None:
        def echo(text: str) -> None:
            console.print(text, markup=False, highlight=False, soft_wrap=True)
    with log_file.open("a", encoding="utf-8") as log, subprocess.Popen(
            list(cmd), env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, errors="replace", bufsize=1) as proc, \
            console.status("starting", spinner="dots") as status:
        for line in _lines(proc.stdout):
            log.write(line)
            tail.append(line.rstrip("\n"))
            if verbose:
                echo(line.rstrip("\n"))
                continue
            for done in tracker.feed(line):
                echo(done.line())
            status.update(tracker.status())
        code = proc.wait()
    if code and not verbose:
        echo(f"  failed (exit code {code}); the last lines of {log_file}:")
        for line in tail:
            echo(f"    {line}")
    return code


def _lines(stream: Iterable[str] | None) -> Iterable[str]:
    return iter(stream.readline, "") if stream is not None else ()


def _stamp(line: str) -> dt.datetime | None:
    m = _STAMP.match(line)
    return dt.datetime.fromisoformat(m.group(1)) if m else None


def duration(seconds: float) -> str:
    """``12.3s`` under a minute, else ``4m 05s``."""
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m {secs:02d}s" if minutes else f"{seconds:.1f}s"
