"""Benchmark: nightly scoring end to end vs. the model's raw ``predict``, same run, same data.

    .venv/bin/python bench/score_throughput.py --rows 55371 --rows 1000000 [--rows 10000000]
    .venv/bin/python bench/score_throughput.py --rows 1000000 --pg-url postgresql://postgres@127.0.0.1:5432/postgres

Needs a trained model and a seeded warehouse in the project home (``make run`` does both).
For each size it builds a catalog in a separate bench home (the real product master repeated
with new ids, written in chunks and streamed into the warehouse: DuckDB, or a fresh
PostgreSQL database when ``--pg-url`` names a server), then measures

* **each nightly job as production runs it**, one process each (``python jobs/<job>.py``:
  its own JVM and Python workers): extract, clean, score, publish - wall seconds and the
  peak resident memory of that job's process tree (driver, JVM, Python workers), sampled
  every 0.2 s;
* **raw predict**: ``model.predict`` on (up to ``--raw-sample``) cleaned texts in this
  process: the baseline the ratios are taken against, in the same run - timed right before
  the score job and right after the publish, the two averaged (both are kept);
* with ``--one-process``, then **the same four jobs in one process** (``hscode night
  --one-process``'s way: one JVM and SparkSession for all), replacing the same date, with a
  third raw reading after it: its ratio takes the two readings around it; with
  ``--one-process-nights N`` that process goes on with the next N-1 dates (``hscode night
  --to-date``), whose warm nights get a ratio of their own.

Results are appended to ``bench/results.jsonl`` and printed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DS = "2026-11-01"
JOBS = ("extract_products", "clean_products", "score_catalog", "publish_predictions")


class PeakRSS:
    """Peak resident memory of this process and all its children, sampled in a thread."""

    def __init__(self, interval_s: float = 0.2, pid: int | None = None) -> None:
        import psutil

        self.proc, self.interval, self.peak = psutil.Process(pid), interval_s, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        import psutil

        total = 0
        try:
            procs = [self.proc, *self.proc.children(recursive=True)]
        except psutil.Error:  # the job has just exited
            return 0
        for p in procs:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            time.sleep(self.interval)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def timed_child(cmd: list[str], env: dict[str, str], log: Path) -> tuple[float, float]:
    """Run ``cmd`` (output to ``log``): its wall seconds and its process tree's peak RSS in
    GB."""
    start = time.perf_counter()
    with log.open("a") as sink:
        proc = subprocess.Popen(cmd, env=env, stdout=sink, stderr=subprocess.STDOUT, cwd=REPO)
        with PeakRSS(pid=proc.pid) as mem:
            rc = proc.wait()
    if rc != 0:
        raise RuntimeError(f"{' '.join(cmd[1:3])} exited {rc}: see {log}")
    return round(time.perf_counter() - start, 2), round(mem.peak / 2**30, 2)


def run_job(job: str, env: dict[str, str], master: str, out: dict[str, Any], log: Path) -> None:
    """``python jobs/<job>.py`` as its own process: wall seconds and its tree's peak RSS."""
    cmd = [sys.executable, str(REPO / "jobs" / f"{job}.py"), "--ds", DS, "--master", master]
    name = job.split("_")[0]
    out[f"{name}_s"], out[f"{name}_peak_rss_gb"] = timed_child(cmd, env, log)
    print(f"{job}: {out[f'{name}_s']} s, peak RSS {out[f'{name}_peak_rss_gb']} GB", flush=True)


def one_process_child(master: str, nights: int, out_file: Path) -> None:
    """The four jobs in this process, one after another, for ``nights`` dates from ``DS``
    (``--one-process-child``): each night's job seconds to ``out_file``."""
    import datetime as dt

    from hscode.submit import run_in_process

    times = []
    for i in range(nights):
        ds = (dt.date.fromisoformat(DS) + dt.timedelta(days=i)).isoformat()
        night: dict[str, float] = {}
        for job in JOBS:
            start = time.perf_counter()
            if run_in_process(job, ds, master):
                raise SystemExit(f"{job} --ds {ds} failed")
            night[job.split("_")[0]] = round(time.perf_counter() - start, 2)
        times.append(night)
    out_file.write_text(json.dumps(times))


def run_one_process(env: dict[str, str], master: str, nights: int, out: dict[str, Any],
                    log: Path) -> None:
    """The four jobs in one child process for ``nights`` dates: its wall seconds
    (interpreter start included), each night's jobs, and the tree's peak RSS."""
    times = log.with_name("one_process.json")
    cmd = [sys.executable, __file__, "--one-process-child", str(times), "--master", master,
           "--one-process-nights", str(nights)]
    out["one_process_s"], out["one_process_peak_rss_gb"] = timed_child(cmd, env, log)
    out["one_process_job_s"] = json.loads(times.read_text())
    print(f"one process: {out['one_process_s']} s {out['one_process_job_s']}, peak RSS "
          f"{out['one_process_peak_rss_gb']} GB", flush=True)


def _pg_database(admin_url: str, name: str) -> str:
    """A fresh PostgreSQL database ``name`` on the server of ``admin_url``; its URL."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        con.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + "/" + name


def build_catalog(source_home: Path, bench_home: Path, rows: int, pg_url: str | None
                  ) -> dict[str, str]:
    """A bench home whose warehouse holds ``rows`` products (the real ones, repeated);
    returns the environment its jobs run with."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as pads
    import pyarrow.parquet as pq

    from hscode.config import load_settings
    from hscode.warehouse import warehouse_from_settings
    from hscode.warehouse.schema import HS_NOMENCLATURE, HS_SECTIONS, PRODUCT_MASTER

    src = load_settings(environ={**os.environ, "HSCODE_PATHS__HOME": str(source_home)})
    if bench_home.exists():
        shutil.rmtree(bench_home)
    url = (_pg_database(pg_url, f"hscode_bench_{rows}") if pg_url
           else "duckdb:///warehouse.duckdb")
    env = {**os.environ, "HSCODE_PATHS__HOME": str(bench_home),
           "HSCODE_PATHS__SOURCE_DIR": str(src.home / src.paths.source_dir),
           "HSCODE_WAREHOUSE__URL": url, "HSCODE_QUALITY__DATA_DOCS": "false",
           "PYSPARK_PYTHON": sys.executable, "PYTHONPATH": str(REPO)}
    settings = load_settings(environ=env)
    with warehouse_from_settings(src) as wh:
        pm = wh.read_table(PRODUCT_MASTER)
        ref = {t: wh.read_table(t) for t in (HS_NOMENCLATURE, HS_SECTIONS)}
    chunks = bench_home / "catalog_chunks"
    chunks.mkdir(parents=True)
    for i in range(-(-rows // pm.num_rows)):  # one file per copy: bounded memory
        ids = pc.binary_join_element_wise(pa.scalar(f"R{i:03d}-"), pm.column("product_id"), "")
        part = pm.set_column(0, "product_id", ids).slice(0, rows - i * pm.num_rows)
        pq.write_table(part, chunks / f"part-{i:05d}.parquet")
    with warehouse_from_settings(settings) as wh:
        wh.ensure_schema()
        for table, data in ref.items():
            wh.replace_table(table, data)
        wh.replace_table(PRODUCT_MASTER, pads.dataset(chunks, format="parquet"))
    shutil.rmtree(chunks)
    return env


def bench_one(source_home: Path, rows: int, master: str, pg_url: str | None,
              raw_sample: int, keep: bool = False, one_process: int = 0
              ) -> dict[str, Any]:
    import pyarrow.parquet as pq

    from hscode.catalog import Catalog
    from hscode.config import load_settings
    from hscode.predictor import load_predictor
    from hscode.scoring.model_ref import resolve_model

    source = load_settings(environ={**os.environ, "HSCODE_PATHS__HOME": str(source_home)})
    model = resolve_model(Catalog.from_settings(source))
    backend = "postgresql" if pg_url else "duckdb"
    home = source.data_dir / "bench" / f"rows_{rows}_{backend}"
    env = build_catalog(source_home, home, rows, pg_url)
    catalog = Catalog.from_settings(load_settings(environ=env))
    # the bench home scores with a copy of the source home's model
    (catalog.models / model.name).mkdir(parents=True, exist_ok=True)
    shutil.copytree(model.path, catalog.models / model.name / model.path.name)
    out: dict[str, Any] = {"rows": rows, "warehouse": backend,
                           "model": f"{model.name} {model.version}", "master": master,
                           "cpus": os.cpu_count()}
    chunk = load_settings(environ=env).scoring.batch_rows  # as the score job hands them over
    predictor = load_predictor(model.path)

    def raw_predict(texts: list[str]) -> float:
        start = time.perf_counter()
        for i in range(0, len(texts), chunk):  # 1M rows x 1,753 codes would be 14 GB
            predictor.predict_proba(texts[i:i + chunk], batch_size=1024)
        return time.perf_counter() - start

    # raw predict is timed right before the score job and right after the publish, and the
    # two averaged: this machine's speed drifts by a third within an evening, and one
    # reading taken after the jobs moved the ratio by 0.1 on its own
    raw_s = []
    for job in JOBS:
        if job == "score_catalog":
            texts = (pq.ParquetFile(next(catalog.partition(catalog.scoring_set, DS)
                                         .glob("*.parquet")))
                     .read(columns=["text"]).column("text").to_pylist()[:raw_sample])
            predictor.predict_proba(texts[:2048])  # warm-up (graph tracing)
            with PeakRSS() as mem:
                raw_s.append(raw_predict(texts))
        run_job(job, env, master, out, home / "jobs.log")
    raw_s.append(raw_predict(texts))
    if one_process:
        run_one_process(env, master, one_process, out, home / "jobs.log")
        raw_s.append(raw_predict(texts))
    published = json.loads((catalog.run_dir(DS) / "publish_predictions.json").read_text())
    n = out["scored_rows"] = published["predicted_rows"]
    out["extracted_with"] = json.loads(
        (catalog.run_dir(DS) / "extract_products.json").read_text()).get("extracted_with", "export")
    out["raw_predict_s"] = round((raw_s[0] + raw_s[1]) / 2, 2)
    out["raw_predict_s_before_after"] = [round(t, 2) for t in raw_s]
    out["raw_predict_peak_rss_gb"] = round(mem.peak / 2**30, 2)
    out["raw_predict_rows"] = len(texts)
    raw_rate = len(texts) / out["raw_predict_s"]
    out["raw_predict_rows_per_s"] = round(raw_rate)
    score_publish = out["score_s"] + out["publish_s"]
    e2e = out["extract_s"] + out["clean_s"] + score_publish
    out["score_publish_rows_per_s"] = round(n / score_publish)
    out["end_to_end_s"] = round(e2e, 1)
    out["end_to_end_rows_per_s"] = round(n / e2e)
    out["ratio_score_publish_to_raw"] = round(n / score_publish / raw_rate, 3)
    out["ratio_end_to_end_to_raw"] = round(n / e2e / raw_rate, 3)
    out["max_job_peak_rss_gb"] = max(out[f"{j.split('_')[0]}_peak_rss_gb"] for j in JOBS)
    if one_process:  # against the raw readings right before and after it
        rate = len(texts) / ((raw_s[1] + raw_s[2]) / 2)
        first = sum(out["one_process_job_s"][0].values())
        startup = out["one_process_s"] - sum(sum(t.values()) for t in out["one_process_job_s"])
        # the first night from a cold process, its interpreter start included
        out["ratio_one_process_to_raw"] = round(n / (first + startup) / rate, 3)
        out["one_process_to_separate_jobs"] = round((first + startup) / e2e, 3)
        if one_process > 1:  # the later nights, in the warm JVM: a one-process backfill
            warm = [sum(t.values()) for t in out["one_process_job_s"][1:]]
            out["ratio_one_process_warm_night_to_raw"] = round(
                n / (sum(warm) / len(warm)) / rate, 3)
    if not keep:
        shutil.rmtree(home / "data", ignore_errors=True)  # 10M rows leave ~GBs of Parquet
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, action="append", help="catalog size (repeatable)")
    p.add_argument("--home", type=Path, default=Path.cwd(),
                   help="project home with the seeded warehouse and a trained model")
    p.add_argument("--master", default="local[*]")
    p.add_argument("--pg-url", help="a PostgreSQL server (admin URL): bench on a fresh "
                   "database there instead of DuckDB")
    p.add_argument("--raw-sample", type=int, default=1_000_000,
                   help="texts the raw-predict baseline runs on (a rate: a sample suffices)")
    p.add_argument("--keep", action="store_true", help="keep each size's bench home")
    p.add_argument("--one-process", action="store_true",
                   help="also run the four jobs in one process (one JVM) and compare")
    p.add_argument("--one-process-nights", type=int, default=1,
                   help="with --one-process: that many dates in a row in the one process "
                        "(the later ones warm: a one-process backfill)")
    p.add_argument("--one-process-child", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one_process_child:
        one_process_child(args.master, args.one_process_nights, args.one_process_child)
        return 0
    results = []
    for rows in args.rows or [55371]:
        res = bench_one(args.home.resolve(), rows, args.master, args.pg_url, args.raw_sample,
                        args.keep, args.one_process_nights if args.one_process else 0)
        results.append(res)
        with (REPO / "bench" / "results.jsonl").open("a") as f:
            f.write(json.dumps({"bench": "score_throughput",
                                "at": time.strftime("%Y-%m-%dT%H:%M:%S"), **res}) + "\n")
        print(json.dumps(res, indent=2), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
