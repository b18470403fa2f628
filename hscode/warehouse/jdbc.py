"""PostgreSQL read by Spark's JDBC source: every executor reads its own share of a table.

The extract's parallel path: ``numPartitions`` hash predicates on the key split the table
into disjoint shares (a row whose key is null lands in exactly one of them), each read by
one Spark task over its own connection, ``fetchsize`` rows per round trip. The driver is
PostgreSQL's JDBC jar (Debian's ``libpostgresql-jdbc-java``, installed by
``scripts/install.sh``), handed to Spark as ``spark.jars``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from hscode.warehouse.schema import Table, ident, idents

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from hscode.config import WarehouseSettings

DRIVER = "org.postgresql.Driver"
_SPARK_TYPE = {"text": "string", "bool": "boolean", "timestamp": "timestamp_ntz"}


def jdbc_url(url: str, environ: dict[str, str] | None = None) -> tuple[str, dict[str, str]]:
    """A libpq URL as a JDBC URL plus connection properties (user, password).

    The password comes from the URL or ``PGPASSWORD`` (the JDBC driver does not read
    ``~/.pgpass``); query options (``sslmode``, ``options=-csearch_path%3D...``) pass through.

    Raises:
        ValueError: for a URL that is not ``postgresql://`` / ``postgres://``.
    """
    env = os.environ if environ is None else environ
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError(f"JDBC extract needs a postgresql:// warehouse URL, got {parts.scheme}://")
    host = parts.hostname or env.get("PGHOST", "localhost")
    port = parts.port or int(env.get("PGPORT", "5432"))
    database = parts.path.lstrip("/") or env.get("PGDATABASE", "postgres")
    props = {"user": unquote(parts.username or env.get("PGUSER", "postgres"))}
    password = unquote(parts.password) if parts.password else env.get("PGPASSWORD")
    if password:
        props["password"] = password
    query = f"?{parts.query}" if parts.query else ""
    return f"jdbc:postgresql://{host}:{port}/{database}{query}", props


def hash_predicates(key: str, shares: int) -> list[str]:
    """``shares`` WHERE clauses that split a table's rows by a hash of ``key``: disjoint,
    together every row (null keys hash as the empty string)."""
    hashed = f"(hashtext(coalesce({ident(key)}, ''))::bigint + 2147483648)"
    return [f"mod({hashed}, {shares}) = {i}" for i in range(shares)]


def read_table(spark: SparkSession, table: Table, url: str, cfg: WarehouseSettings
               ) -> DataFrame:
    """``table``'s declared columns, read in ``cfg.jdbc_partitions`` parallel shares.

    Columns come back typed as Spark reads the exported Parquet file (timestamps without
    a time zone: ``timestamp_ntz``), so both extract paths give the same snapshot.

    Raises:
        FileNotFoundError: when the JDBC driver jar is not where ``cfg.jdbc_jar`` says.
    """
    check_driver(cfg.jdbc_jar)
    target, props = jdbc_url(url)
    key = table.primary_key[0] if table.primary_key else table.column_names[0]
    query = f"(SELECT {idents(table.column_names)} FROM {ident(table.name)}) AS src"
    df = spark.read.jdbc(
        target, query, predicates=hash_predicates(key, cfg.jdbc_partitions),
        properties={**props, "driver": DRIVER, "fetchsize": str(cfg.jdbc_fetchsize),
                    "preferTimestampNTZ": "true"})
    return df.select(*(df[c.name].cast(_SPARK_TYPE.get(c.type, c.type)).alias(c.name)
                       for c in table.columns))


def check_driver(jar: Path) -> Path:
    """The JDBC jar, or a clear error saying how to install it."""
    if not jar.is_file():
        raise FileNotFoundError(
            f"PostgreSQL JDBC driver not found at {jar}: run scripts/install.sh (installs "
            "Debian's libpostgresql-jdbc-java) or set warehouse.jdbc_jar")
    return jar
