"""The warehouse's tables, declared once: columns, types, keys and partitioning.

Table and column names are fixed here and validated as plain identifiers, so SQL built from
them never contains text that came from data or users.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyarrow as pa

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# logical type -> (DuckDB type, PostgreSQL type, Arrow type)
_TYPES: dict[str, tuple[str, str, pa.DataType]] = {
    "text": ("VARCHAR", "TEXT", pa.string()),
    "int": ("INTEGER", "INTEGER", pa.int32()),
    "bigint": ("BIGINT", "BIGINT", pa.int64()),
    "double": ("DOUBLE", "DOUBLE PRECISION", pa.float64()),
    "bool": ("BOOLEAN", "BOOLEAN", pa.bool_()),
    "date": ("DATE", "DATE", pa.date32()),
    "timestamp": ("TIMESTAMP", "TIMESTAMP", pa.timestamp("us")),
}

_SPARK_TYPES = {"text": "string", "int": "int", "bigint": "bigint", "double": "double",
                "bool": "boolean", "date": "date", "timestamp": "timestamp"}


def check_identifier(name: str) -> str:
    """Return ``name`` if it is a safe lower-case SQL identifier, else raise ``ValueError``."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a valid identifier: {name!r}")
    return name


def ident(name: str) -> str:
    """A validated identifier, double-quoted for SQL."""
    return f'"{check_identifier(name)}"'


def idents(names: list[str] | tuple[str, ...]) -> str:
    """Comma-separated quoted identifiers."""
    return ", ".join(ident(n) for n in names)


@dataclass(frozen=True)
class Column:
    """One column: name, logical type (a key of ``_TYPES``) and nullability."""

    name: str
    type: str
    nullable: bool = True

    def __post_init__(self) -> None:
        check_identifier(self.name)
        if self.type not in _TYPES:
            raise ValueError(f"unknown column type {self.type!r} for {self.name}")

    @property
    def arrow_type(self) -> pa.DataType:
        return _TYPES[self.type][2]


@dataclass(frozen=True)
class Table:
    """A warehouse table. ``partition_by`` names the column a run replaces (e.g. ``ds``)."""

    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    partition_by: str | None = None
    description: str = ""

    def __post_init__(self) -> None:
        check_identifier(self.name)
        names = {c.name for c in self.columns}
        for key in (*self.primary_key, *([self.partition_by] if self.partition_by else [])):
            if key not in names:
                raise ValueError(f"{self.name}: key column {key!r} is not a column")

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def arrow_schema(self) -> pa.Schema:
        return self.arrow_schema_for()

    def arrow_schema_for(self, lenient: bool = False) -> pa.Schema:
        """The Arrow schema; ``lenient`` makes every column nullable (see :meth:`conform`)."""
        return pa.schema(
            [pa.field(c.name, c.arrow_type, nullable=lenient or c.nullable)
             for c in self.columns]
        )

    def ddl(self, dialect: str) -> str:
        """``CREATE TABLE IF NOT EXISTS`` statement for ``duckdb`` or ``postgresql``."""
        index = {"duckdb": 0, "postgresql": 1}[dialect]
        parts = [
            f'{ident(c.name)} {_TYPES[c.type][index]}{"" if c.nullable else " NOT NULL"}'
            for c in self.columns
        ]
        if self.primary_key:
            parts.append(f"PRIMARY KEY ({idents(self.primary_key)})")
        return f"CREATE TABLE IF NOT EXISTS {ident(self.name)} (\n  " + ",\n  ".join(parts) + "\n)"

    def add_column_ddl(self, column: str, dialect: str) -> str:
        """``ALTER TABLE ... ADD COLUMN IF NOT EXISTS`` for a nullable column added to the
        table after warehouses were created with it.

        Raises:
            ValueError: for a NOT NULL column (old rows would have no value for it).
        """
        c = next(c for c in self.columns if c.name == column)
        if not c.nullable:
            raise ValueError(f"{self.name}.{column} is NOT NULL: cannot be added in place")
        index = {"duckdb": 0, "postgresql": 1}[dialect]
        return (f"ALTER TABLE {ident(self.name)} ADD COLUMN IF NOT EXISTS {ident(c.name)} "
                f"{_TYPES[c.type][index]}")

    def spark_ddl(self) -> str:
        """The columns as a Spark DDL schema string (``name type, ...``)."""
        return ", ".join(f"{c.name} {_SPARK_TYPES[c.type]}" for c in self.columns)

    def select_sql(self, ordered: bool = True) -> str:
        """``SELECT`` of all columns in declared order, sorted by the primary key (tables
        without one: by every column, so that two reads of the same rows are equal).

        ``ordered=False``: in storage order (a bulk export that need not sort).
        """
        select = f"SELECT {idents(self.column_names)} FROM {ident(self.name)}"
        return f"{select} ORDER BY {idents(self.primary_key or self.column_names)}" if ordered \
            else select

    def conform(self, data: pa.Table | pa.RecordBatch, lenient: bool = False
                ) -> pa.Table | pa.RecordBatch:
        """Select and cast ``data`` (a table or one batch of a stream) to this table's
        schema; raise on missing columns.

        ``lenient`` keeps nulls in NOT NULL columns (a source that breaks its own
        constraints: the caller quarantines those rows instead of failing on them).
        """
        missing = [c for c in self.column_names if c not in data.column_names]
        if missing:
            raise ValueError(f"{self.name}: data lacks columns {missing}")
        return data.select(self.column_names).cast(self.arrow_schema_for(lenient))


PRODUCT_MASTER = Table(
    name="product_master",
    description="Product master data: descriptions and the currently assigned HS code.",
    columns=(
        Column("product_id", "text", nullable=False),
        Column("short_description", "text"),
        Column("medium_description", "text"),
        Column("etim_class", "text"),
        Column("region", "text"),
        Column("hs_code", "text"),
        Column("assurance_level", "int"),
        Column("updated_at", "timestamp"),
    ),
    primary_key=("product_id",),
)

HS_NOMENCLATURE = Table(
    name="hs_nomenclature",
    description="Harmonized System 2022: chapters (2), headings (4), subheadings (6).",
    columns=(
        Column("code", "text", nullable=False),
        Column("level", "int", nullable=False),
        Column("description", "text"),
        Column("parent", "text"),
        Column("section", "text"),
    ),
    primary_key=("code",),
)

HS_SECTIONS = Table(
    name="hs_sections",
    description="The 21 sections of the Harmonized System.",
    columns=(Column("section", "text", nullable=False), Column("name", "text")),
    primary_key=("section",),
)

SEED_REJECTS = Table(
    name="seed_rejects",
    description="Source rows the seed could not load, with the reason and the raw values.",
    columns=(
        Column("source_file", "text", nullable=False),
        Column("source_row", "bigint", nullable=False),
        Column("reason", "text", nullable=False),
        Column("raw_code", "text"),
        Column("raw_description", "text"),
        Column("raw_assurance_level", "text"),
    ),
)

HS_PREDICTIONS = Table(
    name="hs_predictions",
    description="Nightly predicted HS codes, one row per scored product and run date.",
    columns=(
        Column("ds", "date", nullable=False),
        Column("product_id", "text", nullable=False),
        Column("predicted_hs6", "text", nullable=False),
        Column("probability", "double", nullable=False),
        Column("predicted_hs4", "text", nullable=False),
        # the heading's summed probability: an HS4 answer where the HS6 one is unsure
        Column("hs4_probability", "double"),
        Column("predicted_hs2", "text", nullable=False),
        Column("top2_hs6", "text"),
        Column("top2_probability", "double"),
        Column("top3_hs6", "text"),
        Column("top3_probability", "double"),
        Column("confidence_band", "text", nullable=False),
        Column("needs_review", "bool", nullable=False),
        Column("assigned_hs_code", "text"),
        Column("assigned_hs6", "text"),
        Column("agrees_with_assigned", "bool"),
        Column("review_reason", "text"),
        Column("model_name", "text", nullable=False),
        Column("model_version", "text", nullable=False),
    ),
    primary_key=("ds", "product_id"),
    partition_by="ds",
)

HS_UNSCORABLE = Table(
    name="hs_unscorable",
    description="Catalog products of a run date that could not be scored, with the reason.",
    columns=(
        Column("ds", "date", nullable=False),
        Column("product_id", "text"),
        Column("reason", "text", nullable=False),
        Column("raw_text", "text"),
    ),
    partition_by="ds",
)

HS_SCORING_RUNS = Table(
    name="hs_scoring_runs",
    description="One row per published run date: model, counts, review threshold and its "
                "precision and coverage on the test split.",
    columns=(
        Column("ds", "date", nullable=False),
        Column("model_name", "text", nullable=False),
        Column("model_version", "text", nullable=False),
        Column("catalog_rows", "bigint", nullable=False),
        Column("predicted_rows", "bigint", nullable=False),
        Column("unscorable_rows", "bigint", nullable=False),
        Column("review_rows", "bigint", nullable=False),
        Column("disagreeing_rows", "bigint", nullable=False),
        Column("review_threshold", "double", nullable=False),
        Column("holdout_precision", "double"),
        Column("holdout_coverage", "double"),
        # the threshold's figures on the test split (95% Wilson interval) and where it was
        # chosen (calibration split; fixed; holdout for artifacts without a calibration split)
        Column("holdout_precision_low", "double"),
        Column("holdout_precision_high", "double"),
        Column("holdout_rows", "bigint"),
        Column("threshold_chosen_on", "text"),
        Column("published_at", "timestamp", nullable=False),
    ),
    primary_key=("ds",),
    partition_by="ds",
)

HS_DRIFT = Table(
    name="hs_drift",
    description="Per run date: drift of predicted codes and confidence vs. the training data.",
    columns=(
        Column("ds", "date", nullable=False),
        Column("metric", "text", nullable=False),
        Column("value", "double", nullable=False),
        Column("threshold", "double", nullable=False),
        Column("breached", "bool", nullable=False),
        Column("model_version", "text", nullable=False),
    ),
    primary_key=("ds", "metric"),
    partition_by="ds",
)

HS_CODE_REVIEWS = Table(
    name="hs_code_reviews",
    description="Reviewers' decisions, append-only: the latest per product counts while the "
                "product's text and assigned code are as they were when it was reviewed.",
    columns=(
        Column("review_id", "text", nullable=False),  # digest of the decision: re-imports skip it
        Column("product_id", "text", nullable=False),
        Column("decision", "text", nullable=False),  # confirmed / corrected / not_classifiable
        Column("decided_hs6", "text"),  # null only for not_classifiable
        Column("reviewer", "text", nullable=False),
        Column("decided_at", "timestamp", nullable=False),
        Column("note", "text"),
        # what was reviewed: the product as it was (see PRODUCT_FINGERPRINT) and the newest
        # prediction of it on or before the decision
        Column("product_fingerprint", "text", nullable=False),
        Column("assigned_hs6", "text"),
        Column("reviewed_ds", "date"),
        Column("reviewed_hs6", "text"),
        Column("reviewed_probability", "double"),
        Column("reviewed_model_version", "text"),
        Column("source", "text", nullable=False),  # import:<file> / page / sql
        Column("recorded_at", "timestamp", nullable=False),
    ),
    primary_key=("review_id",),
)

HS_REVIEW_REJECTS = Table(
    name="hs_review_rejects",
    description="Review rows an import refused, with the reason and the raw values; an "
                "import's rejects are replaced when the same file is imported again.",
    columns=(
        Column("import_id", "text", nullable=False),  # digest of the file's contents
        Column("source", "text", nullable=False),
        Column("source_row", "bigint", nullable=False),
        Column("reason", "text", nullable=False),
        Column("raw_product_id", "text"),
        Column("raw_decision", "text"),
        Column("raw_hs6", "text"),
        Column("raw_reviewer", "text"),
        Column("raw_decided_at", "text"),
        Column("rejected_at", "timestamp", nullable=False),
    ),
    primary_key=("import_id", "source_row"),
)

ALL_TABLES: tuple[Table, ...] = (PRODUCT_MASTER, HS_NOMENCLATURE, HS_SECTIONS, SEED_REJECTS,
                                 HS_PREDICTIONS, HS_UNSCORABLE, HS_SCORING_RUNS, HS_DRIFT,
                                 HS_CODE_REVIEWS, HS_REVIEW_REJECTS)
TABLES: dict[str, Table] = {t.name: t for t in ALL_TABLES}


@dataclass(frozen=True)
class View:
    """A view over the tables; ``sql`` is fixed here (no text from data or users)."""

    name: str
    sql: str
    description: str = ""

    def ddl(self) -> str:
        """``CREATE OR REPLACE VIEW`` (same syntax on DuckDB and PostgreSQL)."""
        return f"CREATE OR REPLACE VIEW {ident(self.name)} AS {self.sql}"


def product_fingerprint(alias: str) -> str:
    """SQL (DuckDB and PostgreSQL alike) for the digest of what a reviewer saw of a
    ``product_master`` row ``alias``: its texts, ETIM class and assigned code. A review
    stops counting when it changes."""
    parts = [f"COALESCE({alias}.{ident(c)}, '')" for c in
             ("short_description", "medium_description", "etim_class", "hs_code")]
    return "md5(" + " || chr(31) || ".join(parts) + ")"


_REVIEW_COLUMNS = idents(HS_CODE_REVIEWS.column_names)

HS_CURRENT_REVIEWS = View(
    name="hs_current_reviews",
    description="The latest review of each product whose text and assigned code have not "
                "changed since (a changed product needs a new review).",
    sql=(f"SELECT {_REVIEW_COLUMNS} FROM (SELECT r.*, row_number() OVER (PARTITION BY "
         f"r.{ident('product_id')} ORDER BY r.{ident('decided_at')} DESC, "
         f"r.{ident('review_id')} DESC) AS {ident('latest')} "
         f"FROM {ident(HS_CODE_REVIEWS.name)} r JOIN {ident(PRODUCT_MASTER.name)} m "
         f"ON m.{ident('product_id')} = r.{ident('product_id')} "
         f"AND {product_fingerprint('m')} = r.{ident('product_fingerprint')}) t "
         f"WHERE {ident('latest')} = 1"),
)

HS_REVIEW_QUEUE = View(
    name="hs_review_queue",
    description="Predictions a person should look at: under the review threshold or "
                "disputing the assigned code (with the predicted code's description), "
                "unless a reviewer has decided the product as it is now.",
    sql=(f"SELECT p.*, n.{ident('description')} AS predicted_description "
         f"FROM {ident(HS_PREDICTIONS.name)} p LEFT JOIN {ident(HS_NOMENCLATURE.name)} n "
         f"ON n.{ident('code')} = p.{ident('predicted_hs6')} "
         f"WHERE (p.{ident('needs_review')} OR p.{ident('agrees_with_assigned')} = FALSE) "
         f"AND NOT EXISTS (SELECT 1 FROM {ident(HS_CURRENT_REVIEWS.name)} c "
         f"WHERE c.{ident('product_id')} = p.{ident('product_id')})"),
)

# The answer per product and date: a current review decided by the end of that date, else
# the model's code where it needs no review, else the catalog's assigned code, else the
# model's (unsure) code.
_DECIDED = f"SELECT d.{ident('ds')}, c.*, row_number() OVER (PARTITION BY d.{ident('ds')}, " \
    f"c.{ident('product_id')} ORDER BY c.{ident('decided_at')} DESC) AS {ident('latest')} " \
    f"FROM {ident(HS_CURRENT_REVIEWS.name)} c JOIN (SELECT DISTINCT {ident('ds')} FROM " \
    f"{ident(HS_PREDICTIONS.name)}) d ON c.{ident('decided_at')} < d.{ident('ds')} + " \
    "INTERVAL '1 day'"
HS_PRODUCT_CODES = View(
    name="hs_product_codes",
    description="One HS6 per product and run date: the reviewed code where a reviewer "
                "decided it, else the model's or the assigned code; the model's answer beside.",
    sql=(f"SELECT p.{ident('ds')}, p.{ident('product_id')}, "
         f"CASE WHEN r.{ident('decision')} IS NOT NULL THEN r.{ident('decided_hs6')} "
         f"WHEN NOT p.{ident('needs_review')} THEN p.{ident('predicted_hs6')} "
         f"WHEN p.{ident('assigned_hs6')} IS NOT NULL THEN p.{ident('assigned_hs6')} "
         f"ELSE p.{ident('predicted_hs6')} END AS {ident('final_hs6')}, "
         f"CASE WHEN r.{ident('decision')} IS NOT NULL THEN 'review' "
         f"WHEN NOT p.{ident('needs_review')} THEN 'model' "
         f"WHEN p.{ident('assigned_hs6')} IS NOT NULL THEN 'assigned' "
         f"ELSE 'model' END AS {ident('source')}, "
         f"r.{ident('decision')} AS {ident('review_decision')}, r.{ident('reviewer')}, "
         f"r.{ident('decided_at')}, p.{ident('predicted_hs6')}, p.{ident('probability')}, "
         f"p.{ident('needs_review')}, p.{ident('assigned_hs6')}, p.{ident('model_version')} "
         f"FROM {ident(HS_PREDICTIONS.name)} p LEFT JOIN ({_DECIDED}) r "
         f"ON r.{ident('ds')} = p.{ident('ds')} AND r.{ident('product_id')} = "
         f"p.{ident('product_id')} AND r.{ident('latest')} = 1"),
)

def _count_if(condition: str) -> str:
    return f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)"


_R = {c: f"r.{ident(c)}" for c in ("decision", "decided_hs6", "reviewed_hs6", "review_id")}
_CONFIRMED = _count_if(f"{_R['decided_hs6']} = {_R['reviewed_hs6']}")
_CORRECTED = _count_if(f"{_R['decided_hs6']} <> {_R['reviewed_hs6']}")
_UNCLASSIFIABLE = _count_if(f"{_R['decision']} = 'not_classifiable'")
HS_SCORING_RUN_REVIEWS = View(
    name="hs_scoring_run_reviews",
    description="Per published night and model version: how many of its predictions "
                "reviewers later confirmed, corrected or found not classifiable.",
    sql=(f"SELECT s.{ident('ds')}, s.{ident('model_version')}, "
         f"COUNT({_R['review_id']}) AS {ident('reviewed')}, "
         f"{_CONFIRMED} AS {ident('confirmed')}, {_CORRECTED} AS {ident('corrected')}, "
         f"{_UNCLASSIFIABLE} AS {ident('not_classifiable')} "
         f"FROM {ident(HS_SCORING_RUNS.name)} s LEFT JOIN {ident(HS_CODE_REVIEWS.name)} r "
         f"ON r.{ident('reviewed_ds')} = s.{ident('ds')} AND r.{ident('reviewed_model_version')}"
         f" = s.{ident('model_version')} GROUP BY s.{ident('ds')}, s.{ident('model_version')}"),
)

ALL_VIEWS: tuple[View, ...] = (HS_CURRENT_REVIEWS, HS_REVIEW_QUEUE, HS_PRODUCT_CODES,
                               HS_SCORING_RUN_REVIEWS)
