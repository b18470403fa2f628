"""Great Expectations gates: validate a Spark DataFrame against a stored suite.

Suites live as JSON in ``expectations/`` (the source of truth, reviewed like code). A gate
validates inside the running Spark job, writes the result and Data Docs (HTML) under the
run's report folder, and raises :class:`QualityGateError` with a readable summary when an
expectation fails, so the job exits non-zero before anything downstream is written.
Values that depend on the run (row-count bounds, trusted levels) are suite parameters
(``{"$PARAMETER": name}``) supplied at validation time.

Membership in the HS nomenclature (5,600+ subheadings) is not a ``value_set``: GX builds a
Spark literal per value and copies the list through every expectation's configuration, about
10 s per column on any catalog size. :func:`with_unknown_codes` joins the codes once
(broadcast) and the suites expect the ``<column>_unknown`` columns to be null; a failure
still names the offending codes.

**Engines.** GX computes a suite's metrics in Spark (one or more Spark jobs per expectation,
and a query for the unexpected examples of each) or, on a frame collected to pandas, in this
process. A gate on at most ``quality.pandas_max_rows`` rows takes pandas
(``quality.engine: auto``, :func:`gate_engine`): the same suite and verdict (tested on the
same bad rows through both), ~1 s instead of 3-13 s at 55k rows, where a small catalog's night
is mostly fixed costs; above it the rows never leave Spark, so a gate's memory stays bounded.
"""

from __future__ import annotations

import importlib
import json
import logging
import sys
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from hscode.config import QualitySettings

log = logging.getLogger(__name__)

ENGINES = ("spark", "pandas")


def import_gx_in_background() -> None:
    """Start importing Great Expectations in a daemon thread: ~3.5 s of a cold process,
    spent while the job's first Spark work runs (call it after the SparkSession exists, so
    the two threads do not import pyspark at once); the gate's own import then finds it
    done or waits on Python's import lock for the rest."""
    if "great_expectations" not in sys.modules:
        threading.Thread(target=importlib.import_module, args=("great_expectations",),
                         name="import-great-expectations", daemon=True).start()


def gate_engine(quality: QualitySettings, rows: int) -> str:
    """Where a gate on ``rows`` rows computes its metrics: ``quality.engine`` when it names
    one, else (``auto``) pandas up to ``quality.pandas_max_rows`` rows and Spark above."""
    if quality.engine != "auto":
        return quality.engine
    return "pandas" if rows <= quality.pandas_max_rows else "spark"


@dataclass
class GateResult:
    """Outcome of one validation."""

    suite: str
    success: bool
    evaluated: int
    failures: list[str] = field(default_factory=list)
    docs_index: Path | None = None
    result_file: Path | None = None
    engine: str = "spark"

    @property
    def docs_link(self) -> str | None:
        """The Data Docs index as a string for job summaries; ``None`` when not built."""
        return str(self.docs_index) if self.docs_index else None

    def summary(self) -> str:
        head = (f"GX suite '{self.suite}': {'passed' if self.success else 'FAILED'} "
                f"({self.evaluated - len(self.failures)}/{self.evaluated} expectations met)")
        lines = [head, *(f"  - {f}" for f in self.failures)]
        if self.docs_index:
            lines.append(f"  Data Docs: {self.docs_index}")
        return "\n".join(lines)


class QualityGateError(RuntimeError):
    """A dataset failed its quality gate."""

    def __init__(self, result: GateResult) -> None:
        super().__init__(result.summary())
        self.result = result


def with_unknown_codes(df: DataFrame, codes: DataFrame, columns: Sequence[str]) -> DataFrame:
    """Add ``<column>_unknown`` for each of ``columns``: the code when it is not in
    ``codes`` (one column ``code``), else null (null codes stay null: a missing code is a
    separate expectation). Rows are neither added nor dropped.
    """
    from pyspark.sql import functions as F

    known = codes.select(F.col("code").alias("_known_code")).distinct()
    for column in columns:
        flag = known.select(F.col("_known_code").alias(f"_{column}_known"))
        df = (df.join(F.broadcast(flag), df[column] == flag[f"_{column}_known"], "left")
              .withColumn(f"{column}_unknown",
                          F.when(F.col(f"_{column}_known").isNull(), F.col(column)))
              .drop(f"_{column}_known"))
    return df


def validation_file(report_dir: Path, suite: str) -> Path:
    """Where a gate keeps the result of ``suite`` for a run (``report_dir``)."""
    return report_dir / f"validation_{suite}.json"


def load_suite_dict(path: Path) -> dict[str, Any]:
    """Read a suite JSON file (``{"name": ..., "expectations": [...]}``)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or "name" not in data or "expectations" not in data:
        raise ValueError(f"{path}: not an expectation suite (needs name and expectations)")
    return data


def _describe(res: Any) -> str:
    cfg = res.expectation_config
    kwargs = {k: v for k, v in cfg.kwargs.items() if k not in ("batch_id", "value_set")}
    r = res.result or {}
    bits = [f"{cfg.type}({', '.join(f'{k}={v}' for k, v in kwargs.items())})"]
    if "observed_value" in r:
        bits.append(f"observed {r['observed_value']}")
    if r.get("unexpected_count") is not None:
        bits.append(f"{r['unexpected_count']} unexpected ({r.get('unexpected_percent', 0):.1f}%)"
                    f", e.g. {r.get('partial_unexpected_list', [])[:5]}")
    if res.exception_info and res.exception_info.get("raised_exception"):
        bits.append(f"error: {res.exception_info.get('exception_message')}")
    return "; ".join(bits)


def validate_dataframe(
    df: DataFrame, suite_file: Path, report_dir: Path, parameters: dict[str, Any] | None = None,
    data_docs: bool = True, data_fingerprint: str | None = None, engine: str = "spark",
) -> GateResult:
    """Validate ``df`` against the suite in ``suite_file``; keep results and Data Docs.

    Args:
        df: The Spark DataFrame to validate (not collected; GX computes metrics in Spark).
        suite_file: Suite JSON.
        report_dir: The run's report folder; the GX project, Data Docs and a JSON summary
            ``validation_<suite>.json`` are written below it.
        parameters: Values for the suite's ``$PARAMETER`` placeholders.
        data_docs: Also build the HTML Data Docs (``quality.data_docs``); without them
            ``docs_index`` is ``None``.
        data_fingerprint: The validated files' :func:`hscode.files.fingerprint`, kept in the
            result so a later job can tell it validated exactly the files it is handed
            (:func:`recorded_pass`).
        engine: ``spark`` (metrics computed by Spark jobs) or ``pandas`` (``df`` collected
            first: only for frames known to be small, see :func:`gate_engine`).

    Raises:
        ValueError: for an unknown engine.
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown gate engine {engine!r}: one of {ENGINES}")
    import great_expectations as gx
    from great_expectations.core.expectation_suite import ExpectationSuite

    suite_dict = load_suite_dict(suite_file)
    name = suite_dict["name"]
    report_dir.mkdir(parents=True, exist_ok=True)
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="file", project_root_dir=str(report_dir))
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    suite = ctx.suites.add_or_update(ExpectationSuite(**suite_dict))
    if engine == "pandas":
        data: Any = _to_pandas(df)
        source = ctx.data_sources.add_or_update_pandas("pandas")
    else:
        data, source = df, ctx.data_sources.add_or_update_spark("spark")
    asset = next((a for a in source.assets if a.name == name), None) or \
        source.add_dataframe_asset(name)
    batch = next((b for b in asset.batch_definitions if b.name == "whole"), None) or \
        asset.add_batch_definition_whole_dataframe("whole")
    vd = ctx.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=name, data=batch, suite=suite))
    # the unexpected values (SUMMARY) cost a scan per expectation (1M predictions: 12-23 s
    # vs 7-9 s for pass/fail alone): gathered when Data Docs will show them, or on failure
    def check(result_format: str) -> Any:
        checkpoint = ctx.checkpoints.add_or_update(gx.Checkpoint(
            name=name, validation_definitions=[vd], result_format=result_format, actions=[]))
        with warnings.catch_warnings():  # GX's pandas regex check is str.contains on a group
            warnings.filterwarnings("ignore", "This pattern is interpreted as a regular")
            return checkpoint.run(batch_parameters={"dataframe": data},
                                  expectation_parameters=parameters or {})

    run = check("SUMMARY" if data_docs else "BOOLEAN_ONLY")
    if not run.success and not data_docs:  # say what failed, with examples
        run = check("SUMMARY")
    if data_docs:
        # the whole site: GX's UpdateDataDocsAction left the validation pages unwritten
        # (validations/ empty, the index listing suites only); a full build writes them
        ctx.build_data_docs()
    results = next(iter(run.run_results.values())).results
    failures = [_describe(r) for r in results if not r.success]
    sites = ctx.get_docs_sites_urls() if data_docs else []
    docs = Path(sites[0]["site_url"].removeprefix("file://")) if sites else None
    result = GateResult(suite=name, success=bool(run.success), evaluated=len(results),
                        failures=failures, docs_index=docs,
                        result_file=validation_file(report_dir, name), engine=engine)
    result.result_file.write_text(json.dumps(
        {"suite": name, "success": result.success, "evaluated": result.evaluated,
         "engine": result.engine,
         "failures": failures, "parameters": {k: v for k, v in (parameters or {}).items()
                                              if not isinstance(v, list)},
         "data_docs": result.docs_link, "data_fingerprint": data_fingerprint}, indent=2),
        encoding="utf-8")
    log.info(result.summary())
    return result


def _to_pandas(df: DataFrame) -> Any:
    """``df`` in this process (the caller vouches it is small), integers kept integers:
    ``toPandas`` makes an integer column with nulls float (a level 7 reported as 7.0)."""
    import pandas as pd
    import pyarrow as pa

    nullable = {pa.int8(): pd.Int8Dtype(), pa.int16(): pd.Int16Dtype(),
                pa.int32(): pd.Int32Dtype(), pa.int64(): pd.Int64Dtype()}
    return df.toArrow().to_pandas(types_mapper=nullable.get)


def gate(df: DataFrame, suite_file: Path, report_dir: Path,
         parameters: dict[str, Any] | None = None, data_docs: bool = True,
         data_fingerprint: str | None = None, engine: str = "spark") -> GateResult:
    """Validate and raise :class:`QualityGateError` on failure."""
    result = validate_dataframe(df, suite_file, report_dir, parameters, data_docs,
                                data_fingerprint, engine)
    if not result.success:
        raise QualityGateError(result)
    return result


def recorded_pass(report_dir: Path, suite: str, data_fingerprint: str) -> dict[str, Any] | None:
    """The kept result of ``suite`` when it passed on files with ``data_fingerprint``
    (:func:`hscode.files.fingerprint`), else ``None``: a rewritten, added or removed file,
    a failed or missing result all mean the data must be validated again."""
    path = validation_file(report_dir, suite)
    if not data_fingerprint or not path.is_file():
        return None
    result = json.loads(path.read_text(encoding="utf-8"))
    if result.get("success") and result.get("data_fingerprint") == data_fingerprint:
        return result
    return None


PREDICTED_CODES = ("predicted_hs6", "top2_hs6", "top3_hs6")


def gate_predictions(predictions: DataFrame, hs6: Sequence[str], suite_file: Path,
                     report_dir: Path, scoring_rows: int, data_docs: bool = True,
                     data_fingerprint: str | None = None, engine: str = "spark"
                     ) -> GateResult:
    """The ``predictions`` suite on a date's predictions: every predicted code a subheading
    of the nomenclature ``hs6``, as many rows as the scoring set (``scoring_rows``)."""
    from hscode.spark import codes_frame

    codes = codes_frame(predictions.sparkSession, hs6)
    checked = with_unknown_codes(predictions, codes, list(PREDICTED_CODES))
    return gate(checked, suite_file, report_dir, {"rows": scoring_rows}, data_docs,
                data_fingerprint, engine)
