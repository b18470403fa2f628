"""Faults: a warehouse that goes away for a moment, a Spark job killed mid-write, two
overlapping backfills at once. After each the warehouse and the data lake are consistent
and a rerun repairs the date. (A publish killed between DELETE and INSERT: see
tests/test_warehouse.py.)
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from hscode.catalog import Catalog
from hscode.config import Settings
from hscode.warehouse import open_warehouse
from hscode.warehouse.schema import HS_PREDICTIONS, HS_SCORING_RUNS, HS_UNSCORABLE
from tests.conftest import REPO
from tests.pipeline import args, job_env, job_settings, seed_slice, table, upstream
from tests.test_warehouse import D1, EVENTS, _ids, _rows

pytestmark = pytest.mark.integration


# -- the warehouse unavailable for a moment ------------------------------------------------


class _LateProxy:
    """A TCP port that refuses connections for ``delay`` seconds, then forwards to PG."""

    def __init__(self, target: tuple[str, int], delay: float) -> None:
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()  # nothing listens here yet: connections are refused
        self.target, self.delay = target, delay
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        time.sleep(self.delay)
        srv = socket.create_server(("127.0.0.1", self.port))
        srv.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _ = srv.accept()
            except TimeoutError:
                continue
            upstream_sock = socket.create_connection(self.target)
            for a, b in ((client, upstream_sock), (upstream_sock, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()
        srv.close()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()


def test_postgres_refusing_connections_for_a_moment_is_waited_out(
        pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    from urllib.parse import urlsplit

    parts = urlsplit(pg_url)
    proxy = _LateProxy((parts.hostname or "127.0.0.1", parts.port or 5432), delay=1.5)
    url = pg_url.replace(parts.netloc, f"{parts.username}@127.0.0.1:{proxy.port}")
    start = time.monotonic()
    try:
        with caplog.at_level(logging.WARNING), open_warehouse(url, retries=6,
                                                              backoff_s=0.25) as wh:
            wh.ensure_schema([EVENTS])
            wh.replace_partition(EVENTS, D1, _rows(D1, ["a", "b"]))
            assert _ids(wh, D1) == ["a", "b"]
    finally:
        proxy.close()
    assert time.monotonic() - start >= 1.5
    assert any("warehouse unavailable" in r.message for r in caplog.records)


def test_postgres_session_killed_before_a_publish_is_retried_on_a_new_connection(
        pg_url: str) -> None:
    import psycopg

    with open_warehouse(pg_url, retries=3, backoff_s=0.1) as wh:
        wh.ensure_schema([EVENTS])
        wh.replace_partition(EVENTS, D1, _rows(D1, ["a", "b"]))
        pid = wh.execute("SELECT pg_backend_pid()")[0][0]
        with psycopg.connect(pg_url, autocommit=True) as admin:  # a server restart, a DBA
            admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        wh.replace_partition(EVENTS, D1, _rows(D1, ["c"]))
        assert _ids(wh, D1) == ["c"]
        assert wh.execute("SELECT pg_backend_pid()")[0][0] != pid


def test_concurrent_postgres_writers_of_one_date_never_mix(pg_url: str) -> None:
    versions = {"x": [f"x{i}" for i in range(50)], "y": [f"y{i}" for i in range(30)]}
    with open_warehouse(pg_url) as wh:
        wh.ensure_schema([EVENTS])
    errors: list[BaseException] = []

    def writer(key: str) -> None:
        try:
            with open_warehouse(pg_url) as wh:
                for _ in range(10):
                    wh.replace_partition(EVENTS, D1, _rows(D1, versions[key]))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in versions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    with open_warehouse(pg_url) as wh:
        assert _ids(wh, D1) in (sorted(versions["x"]), sorted(versions["y"]))


_HOLD_DUCKDB = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


def test_duckdb_locked_by_another_process_for_a_moment_is_waited_out(tmp_path: Path) -> None:
    path = tmp_path / "wh.duckdb"
    with open_warehouse(f"duckdb:///{path}") as wh:
        wh.ensure_schema([EVENTS])
        wh.replace_partition(EVENTS, D1, _rows(D1, ["a"]))
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_DUCKDB, str(path), "2"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(Exception, match="lock"):  # without retries: a clear failure
            open_warehouse(f"duckdb:///{path}", retries=0)
        with open_warehouse(f"duckdb:///{path}", retries=6, backoff_s=0.25) as wh:
            wh.replace_partition(EVENTS, D1, _rows(D1, ["b", "c"]))
            assert _ids(wh, D1) == ["b", "c"]
    finally:
        holder.wait(30)
    assert holder.returncode == 0


# -- jobs killed, jobs overlapping ---------------------------------------------------------

DATES = ("2026-11-20", "2026-11-21")


@pytest.fixture(scope="module")
def night_home(textcnn: dict, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A home with a 600-product catalog, extracted and cleaned for two dates, the model."""
    home = tmp_path_factory.mktemp("faults")
    settings = job_settings(home, HSCODE_WAREHOUSE__CONNECT_RETRIES="8",
                            HSCODE_WAREHOUSE__RETRY_BACKOFF_S="0.5",
                            HSCODE_JOBS__DATE_LOCK_TIMEOUT_S="600")
    seed_slice(settings, 600)
    artifact = textcnn["model"].artifact
    shutil.copytree(artifact, Catalog.from_settings(settings).models / "textcnn" / artifact.name)
    for ds in DATES:
        upstream(settings, ds)
    return settings


def _job_cmd(job: str, ds: str) -> list[str]:
    return [sys.executable, str(REPO / "jobs" / f"{job}.py"), "--ds", ds]


def _env(settings: Settings) -> dict[str, str]:
    return {**os.environ, **job_env(settings), "PYSPARK_PYTHON": sys.executable,
            "PYTHONPATH": str(REPO)}


def _partitions(settings: Settings, ds: str) -> dict[str, pd.DataFrame]:
    catalog = Catalog.from_settings(settings)
    out = {}
    for name in ("scoring_set", "training_set", "quarantine"):
        part = catalog.partition(getattr(catalog, name), ds)
        frame = pd.read_parquet(part) if part.is_dir() else None
        out[name] = (None if frame is None else
                     frame.sort_values(list(frame.columns)).reset_index(drop=True))
    return out


def test_clean_job_killed_mid_write_leaves_no_partial_partition_and_rerun_repairs(
        night_home: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from jobs import clean_products

    settings = night_home
    catalog = Catalog.from_settings(settings)
    ds, other = DATES[0], DATES[1]
    reference, untouched = _partitions(settings, ds), _partitions(settings, other)
    proc = subprocess.Popen(_job_cmd("clean_products", ds), env=_env(settings), cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    staging = None
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        staging = next((p for d in (catalog.scoring_set, catalog.training_set, catalog.quarantine)
                        for p in d.glob(".spark-staging-*")), None)
        if staging is not None:
            break
        time.sleep(0.02)
    assert staging is not None, "the job never started writing"
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its Python workers, mid-write
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    # readers see each partition complete (the earlier version: same rows) or not at all
    after = _partitions(settings, ds)
    for name, frame in after.items():
        if frame is not None:
            pd.testing.assert_frame_equal(frame, reference[name])
    for name, frame in _partitions(settings, other).items():
        pd.testing.assert_frame_equal(frame, untouched[name])
    # the rerun (through the job's entry point, in this process) takes the run-date lock
    # the killed job held, and repairs the date
    for name, value in job_env(settings).items():
        monkeypatch.setenv(name, value)
    assert clean_products.main(["--ds", ds]) == 0
    for name, frame in _partitions(settings, ds).items():
        pd.testing.assert_frame_equal(frame, reference[name])


_BACKFILL = """
import contextlib, io, sys
from jobs import publish_predictions, score_catalog
for ds in sys.argv[1:]:  # a backfill: the night's jobs, date after date, in one process
    for job in (score_catalog, publish_predictions):
        with contextlib.redirect_stdout(io.StringIO()):
            code = job.main(["--ds", ds])
        if code:
            sys.exit(code)
"""


def _published(settings: Settings, ds: str) -> dict[str, pa.Table]:
    day = pa.scalar(dt.date.fromisoformat(ds))
    out = {}
    for t in (HS_PREDICTIONS, HS_UNSCORABLE, HS_SCORING_RUNS):
        rows = table(settings, t)
        rows = rows.filter(pc.equal(rows.column("ds"), day))
        out[t.name] = rows.drop_columns(["published_at"]) if t is HS_SCORING_RUNS else rows
    return out


def test_two_overlapping_backfills_at_once_leave_one_consistent_night(
        night_home: Settings) -> None:
    settings = night_home
    runs = [subprocess.Popen([sys.executable, "-c", _BACKFILL, *dates], env=_env(settings),
                             cwd=REPO, stderr=subprocess.PIPE, text=True)
            for dates in ((DATES[1],), (DATES[1],))]  # both re-score the same date at once
    results = [(p.wait(900), p.stderr.read() if p.stderr else "") for p in runs]
    for code, err in results:
        assert code == 0, err[-3000:]
    catalog = Catalog.from_settings(settings)
    nights = {}
    for ds in DATES[1:]:
        night = _published(settings, ds)
        pred, unscorable = night["hs_predictions"], night["hs_unscorable"]
        raw = len(pd.read_parquet(catalog.partition(catalog.raw_products, ds)))
        assert pred.num_rows + unscorable.num_rows == raw, ds
        assert len(set(pred.column("product_id").to_pylist())) == pred.num_rows, ds
        assert night["hs_scoring_runs"].num_rows == 1
        nights[ds] = night
    # a sequential rerun of the overlapped date gives exactly what the backfills left
    from jobs import publish_predictions, score_catalog

    score_catalog.run(args(DATES[1], model_version=None), settings)
    publish_predictions.run(args(DATES[1], validate_only=False), settings)
    rerun = _published(settings, DATES[1])
    for name, rows in rerun.items():
        assert rows.equals(nights[DATES[1]][name]), name


def test_a_second_job_for_the_same_date_waits_then_fails_clearly(tmp_path: Path) -> None:
    from hscode.jobrun import date_lock

    catalog = Catalog.from_settings(job_settings(tmp_path))
    with date_lock(catalog, "2026-11-20", timeout_s=5):
        with pytest.raises(TimeoutError, match="another hscode job held run date 2026-11-20"), \
                date_lock(catalog, "2026-11-20", timeout_s=0.3, poll_s=0.1):
            pass
        with date_lock(catalog, "2026-11-21", timeout_s=0):  # other dates are free
            pass
    with date_lock(catalog, "2026-11-20", timeout_s=0):  # released on exit
        pass
