"""Benchmark: nightly scoring end to end vs. the model's raw ``predict``, same run, same data.

    .venv/bin/python bench/score_throughput.py --rows 55371 --rows 1000000

Needs a trained model and a seeded warehouse in the project home (``make run`` does both).
For each size it builds a catalog in a separate bench home (the real product master repeated
with new ids), then in ONE process measures

* **raw predict**: ``model.predict`` on the cleaned texts in the driver (the baseline);
* **score + publish**: ``score_catalog`` (Spark ``mapInPandas``, Arrow batches) and
  ``publish_predictions`` (gate + atomic DuckDB write);
* **end to end**: extract -> clean -> score -> publish, warehouse table to warehouse table;

and reports rows/s, the ratio to raw predict and the peak resident memory of the whole
process tree (driver, JVM, Python workers) sampled every 0.2 s. Results are appended to
``bench/results.jsonl`` and printed as a table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import threading
import time
from argparse import Namespace
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DS = "2026-11-01"


class PeakRSS:
    """Peak resident memory of this process and all its children, sampled in a thread."""

    def __init__(self, interval_s: float = 0.2) -> None:
        import psutil

        self.proc, self.interval, self.peak = psutil.Process(), interval_s, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        import psutil

        total = 0
        for p in [self.proc, *self.proc.children(recursive=True)]:
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


@contextmanager
def timed(out: dict[str, Any], name: str) -> Iterator[None]:
    with PeakRSS() as mem:
        start = time.perf_counter()
        yield
        out[f"{name}_s"] = round(time.perf_counter() - start, 2)
    out[f"{name}_peak_rss_gb"] = round(mem.peak / 2**30, 2)


def build_catalog(source_home: Path, bench_home: Path, rows: int) -> Any:
    """A bench home whose warehouse holds ``rows`` products (the real ones, repeated)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from hscode.config import load_settings
    from hscode.warehouse import warehouse_from_settings
    from hscode.warehouse.schema import HS_NOMENCLATURE, HS_SECTIONS, PRODUCT_MASTER

    src = load_settings(environ={**os.environ, "HSCODE_PATHS__HOME": str(source_home)})
    if bench_home.exists():
        shutil.rmtree(bench_home)
    env = {**os.environ, "HSCODE_PATHS__HOME": str(bench_home),
           "HSCODE_PATHS__SOURCE_DIR": str(src.home / src.paths.source_dir),
           "HSCODE_WAREHOUSE__URL": "duckdb:///warehouse.duckdb"}
    settings = load_settings(environ=env)
    with warehouse_from_settings(src) as wh:
        pm = wh.read_table(PRODUCT_MASTER)
        ref = {t: wh.read_table(t) for t in (HS_NOMENCLATURE, HS_SECTIONS)}
    copies = -(-rows // pm.num_rows)
    parts = []
    for i in range(copies):
        ids = pc.binary_join_element_wise(pa.scalar(f"R{i:03d}-"), pm.column("product_id"), "")
        parts.append(pm.set_column(0, "product_id", ids))
    catalog = pa.concat_tables(parts).slice(0, rows)
    with warehouse_from_settings(settings) as wh:
        wh.ensure_schema()
        for table, data in ref.items():
            wh.replace_table(table, data)
        wh.replace_table(PRODUCT_MASTER, catalog)
    return settings


def bench_one(source_home: Path, rows: int, master: str) -> dict[str, Any]:
    import pandas as pd

    from hscode.catalog import Catalog
    from hscode.config import load_settings
    from hscode.predictor import load_predictor
    from hscode.scoring.model_ref import resolve_model
    from hscode.spark import build_spark
    from jobs import clean_products, extract_products, publish_predictions, score_catalog

    source = load_settings(environ={**os.environ, "HSCODE_PATHS__HOME": str(source_home)})
    model = resolve_model(Catalog.from_settings(source))
    settings = build_catalog(source_home, source.data_dir / "bench" / f"rows_{rows}", rows)
    # the bench home scores with a copy of the source home's model
    catalog = Catalog.from_settings(settings)
    (catalog.models / model.name).mkdir(parents=True, exist_ok=True)
    shutil.copytree(model.path, catalog.models / model.name / model.path.name)
    build_spark(settings, master, "hscode-bench")
    args = Namespace(ds=DS, master=master, config=None, model_version=None, validate_only=False)
    out: dict[str, Any] = {"rows": rows, "model": f"{model.name} {model.version}",
                           "master": master, "cpus": os.cpu_count()}

    def step(name: str, fn: Callable[[], Any]) -> Any:
        with timed(out, name):
            return fn()

    step("extract", lambda: extract_products.run(args, settings))
    step("clean", lambda: clean_products.run(args, settings))
    scored = step("score", lambda: score_catalog.run(args, settings))
    step("publish", lambda: publish_predictions.run(args, settings))
    out["scored_rows"] = scored["scoring_rows"]
    texts = pd.read_parquet(catalog.partition(catalog.scoring_set, DS), columns=["text"])["text"]
    predictor = load_predictor(model.path)
    predictor.predict_proba(texts.iloc[:2048].tolist())  # warm-up (graph tracing)
    step("raw_predict", lambda: predictor.predict_proba(texts.tolist(), batch_size=1024))
    n = out["scored_rows"]
    out["raw_predict_rows_per_s"] = round(n / out["raw_predict_s"])
    score_publish = out["score_s"] + out["publish_s"]
    e2e = out["extract_s"] + out["clean_s"] + score_publish
    out["score_publish_rows_per_s"] = round(n / score_publish)
    out["end_to_end_s"] = round(e2e, 1)
    out["end_to_end_rows_per_s"] = round(n / e2e)
    out["ratio_score_publish_to_raw"] = round(out["score_publish_rows_per_s"]
                                              / out["raw_predict_rows_per_s"], 3)
    out["ratio_end_to_end_to_raw"] = round(out["end_to_end_rows_per_s"]
                                           / out["raw_predict_rows_per_s"], 3)
    out["peak_rss_gb"] = max(v for k, v in out.items() if k.endswith("_peak_rss_gb"))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, action="append", help="catalog size (repeatable)")
    p.add_argument("--home", type=Path, default=Path.cwd(),
                   help="project home with the seeded warehouse and a trained model")
    p.add_argument("--master", default="local[*]")
    args = p.parse_args(argv)
    results = []
    for rows in args.rows or [55371]:
        res = bench_one(args.home.resolve(), rows, args.master)
        results.append(res)
        with (REPO / "bench" / "results.jsonl").open("a") as f:
            f.write(json.dumps({"bench": "score_throughput",
                                "at": time.strftime("%Y-%m-%dT%H:%M:%S"), **res}) + "\n")
        print(json.dumps(res, indent=2), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
