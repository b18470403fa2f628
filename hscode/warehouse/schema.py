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

    def select_sql(self) -> str:
        """``SELECT`` of all columns in declared order, sorted by the primary key (tables
        without one: by every column, so that two reads of the same rows are equal)."""
        order = idents(self.primary_key or self.column_names)
        return f"SELECT {idents(self.column_names)} FROM {ident(self.name)} ORDER BY {order}"

    def conform(self, data: pa.Table, lenient: bool = False) -> pa.Table:
        """Select and cast ``data`` to this table's schema; raise on missing columns.

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

ALL_TABLES: tuple[Table, ...] = (PRODUCT_MASTER, HS_NOMENCLATURE, HS_SECTIONS, SEED_REJECTS,
                                 HS_PREDICTIONS, HS_UNSCORABLE, HS_SCORING_RUNS, HS_DRIFT)
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


HS_REVIEW_QUEUE = View(
    name="hs_review_queue",
    description="Predictions a person should look at: under the review threshold or "
                "disputing the assigned code (with the predicted code's description).",
    sql=(f"SELECT p.*, n.{ident('description')} AS predicted_description "
         f"FROM {ident(HS_PREDICTIONS.name)} p LEFT JOIN {ident(HS_NOMENCLATURE.name)} n "
         f"ON n.{ident('code')} = p.{ident('predicted_hs6')} "
         f"WHERE p.{ident('needs_review')} OR p.{ident('agrees_with_assigned')} = FALSE"),
)

ALL_VIEWS: tuple[View, ...] = (HS_REVIEW_QUEUE,)
