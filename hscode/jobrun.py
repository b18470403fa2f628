"""What every spark-submit entry point in ``jobs/`` shares: its CLI and its exit codes.

Exit codes: 0 success; 2 bad arguments, configuration or input schema; 3 a quality gate
failed (nothing downstream written); 4 accounting mismatch (rows lost); 1 the run date stayed
locked by another job, or anything unexpected.

Each job holds its run date's lock (:func:`date_lock`) while it runs.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from hscode.catalog import Catalog, parse_ds
from hscode.config import Settings, load_settings

log = logging.getLogger("hscode.job")


class AccountingError(RuntimeError):
    """Rows in != rows out + rows quarantined."""


def run_date(value: str) -> str:
    """argparse type for ``--ds``: a valid ``YYYY-MM-DD`` date."""
    try:
        return parse_ds(value).isoformat()
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def optional_int(value: str) -> int | None:
    """argparse type: an integer, or ``""`` for none (templated Airflow arguments)."""
    if not value.strip():
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from exc


def job_parser(description: str) -> argparse.ArgumentParser:
    """The common CLI: ``--ds`` (required), ``--master``, ``--config``."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--ds", required=True, type=run_date,
                   help="run date YYYY-MM-DD: the partition this run reads and replaces")
    p.add_argument("--master", default=None,
                   help="Spark master (default: spark-submit's --master when launched by "
                        "spark-submit, else spark.master from the config: local[*])")
    p.add_argument("--config", type=Path, default=None, help="YAML config file")
    return p


def resolve_master(arg: str | None, settings: Settings) -> str | None:
    """The master to set on the session builder; ``None`` keeps spark-submit's."""
    if arg:
        return arg
    if "PYSPARK_GATEWAY_PORT" in os.environ:  # launched by spark-submit: its master wins
        return None
    return settings.spark.master


def nightly_spark(args: argparse.Namespace, settings: Settings, app_name: str) -> Any:
    """A nightly job's SparkSession (:func:`hscode.spark.build_spark`): its ``--master`` (or
    spark-submit's), and the catalog's size as the date's raw snapshot, else the last one,
    tells it (:func:`hscode.extract.snapshot_rows`), which picks the driver JVM's JIT when
    this process starts it."""
    from hscode.extract import snapshot_rows
    from hscode.spark import build_spark

    raw = Catalog.from_settings(settings).raw_products
    return build_spark(settings, resolve_master(args.master, settings), app_name,
                       snapshot_rows(raw, args.ds))


def write_summary(catalog: Catalog, ds: str, name: str, data: dict[str, Any]) -> Path:
    """Keep a JSON summary of a job run under the run's report folder (atomic replace)."""
    from hscode.files import atomic_write_text

    return atomic_write_text(catalog.run_dir(ds) / f"{name}.json",
                             json.dumps(data, indent=2, default=str))


@contextlib.contextmanager
def date_lock(catalog: Catalog, ds: str, timeout_s: float, poll_s: float = 1.0
              ) -> Iterator[Path]:
    """Hold the run date's lock: one hscode job per date at a time.

    Two backfills over overlapping dates, or a manual rerun during the nightly run, would
    otherwise write the same partitions at once. The lock is an OS file lock
    (``runs/ds=D/.lock``), released when the process ends however it ends, so a killed job
    never blocks the rerun. The data directory must be local or on a file system with
    working ``flock`` (NFSv4, not object storage).

    Raises:
        TimeoutError: when another job held the date for longer than ``timeout_s``.
    """
    path = catalog.run_dir(ds) / ".lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout_s
    with path.open("a+") as fh:
        waited = False
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"another hscode job held run date {ds} for more than {timeout_s:.0f}s "
                        f"({path}); is a backfill of that date still running?") from None
                if not waited:
                    log.info("waiting for another hscode job on run date %s (%s)", ds, path)
                    waited = True
                time.sleep(poll_s)
        try:
            yield path
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def read_summary(catalog: Catalog, ds: str, name: str) -> dict[str, Any]:
    """A job's summary written by :func:`write_summary` for the run date.

    Raises:
        FileNotFoundError: when that job has not run for ``ds``.
    """
    path = catalog.run_dir(ds) / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing: run {name} for {ds} first")
    return json.loads(path.read_text(encoding="utf-8"))


def run_job(body: Callable[[argparse.Namespace, Settings], dict[str, Any]],
            parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> int:
    """Parse arguments, load settings, run ``body``, map failures to exit codes."""
    from hscode.quality import QualityGateError

    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("great_expectations", "py4j"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config)
    except (ValueError, OSError) as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        with date_lock(Catalog.from_settings(settings), args.ds,
                       settings.jobs.date_lock_timeout_s):
            out = body(args, settings)
    except TimeoutError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except QualityGateError as exc:
        print(f"quality gate failed, nothing downstream written:\n{exc}", file=sys.stderr)
        return 3
    except AccountingError as exc:
        print(f"row accounting failed: {exc}", file=sys.stderr)
        return 4
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(out, indent=2, default=str))
    return 0
