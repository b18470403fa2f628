"""The ``hscode`` command line for people: ``hscode --help`` lists the commands.

This module holds the app, the options the commands share and the commands on the warehouse
and the stack (config, seed, tables, submit, doctor); the pipeline's runs
(:mod:`hscode.commands.pipeline`), the models' commands (:mod:`hscode.commands.models`) and
the review commands (:mod:`hscode.review.cli`) register on the same app.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table as RichTable

app = typer.Typer(
    help="hscode: assign HS customs codes to a product catalog (batch pipeline).",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",  # docstrings' paragraphs are reflowed to the terminal
)
console = Console(stderr=True)

ConfigOpt = Annotated[
    Optional[Path],
    typer.Option("--config", "-c", help="YAML file layered over the defaults.",
                 exists=True, dir_okay=False),
]
WarehouseOpt = Annotated[
    Optional[str],
    typer.Option("--warehouse-url", help="Override warehouse.url (duckdb:/// or postgresql://)."),
]


def settings_from_options(config: Path | None, warehouse_url: str | None = None):
    """The settings a command runs with: defaults, ``--config``, the environment and
    ``--warehouse-url`` (refused when it carries a password)."""
    from hscode.config import load_settings, refuse_password

    settings = load_settings(config)
    if warehouse_url:
        refuse_password(warehouse_url, "--warehouse-url")
        settings = settings.model_copy(
            update={"warehouse": settings.warehouse.model_copy(update={"url": warehouse_url})}
        )
    return settings


VERBOSE = {"on": False}  # `hscode --verbose`: DAG runs stream their whole output


@app.callback()
def _main(verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", help="Debug logging; DAG runs stream every task's log.")] = False
          ) -> None:
    VERBOSE["on"] = verbose
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@app.command()
def config(config: ConfigOpt = None, warehouse_url: WarehouseOpt = None) -> None:
    """Print the resolved configuration (defaults + file + environment) as JSON."""
    settings = settings_from_options(config, warehouse_url)
    from hscode.config import redact_url

    out = json.loads(settings.model_dump_json())
    out["warehouse"]["url"] = redact_url(out["warehouse"]["url"])
    out["resolved"] = {"home": str(settings.home), "data_dir": str(settings.data_dir),
                       "warehouse_url": settings.warehouse_display}
    typer.echo(json.dumps(out, indent=2))


@app.command()
def seed(
    config: ConfigOpt = None,
    warehouse_url: WarehouseOpt = None,
    declarations: Annotated[
        Optional[Path],
        typer.Option(help="Source CSV (default: sources.declarations_csv).",
                     exists=True, dir_okay=False),
    ] = None,
) -> None:
    """Load the demo declarations and the HS nomenclature into the warehouse (idempotent)."""
    from hscode.seed import seed_warehouse
    from hscode.warehouse import warehouse_from_settings

    settings = settings_from_options(config, warehouse_url)
    with console.status("seeding") as status, warehouse_from_settings(settings) as wh:
        report = seed_warehouse(settings, wh, declarations,
                                step=lambda msg: status.update(f"seed: {msg}"))
    table = RichTable(title=f"seed -> {settings.warehouse_display}")
    table.add_column("what")
    table.add_column("rows", justify="right")
    table.add_row("source rows read", str(report.rows_read))
    table.add_row("product_master", str(report.loaded))
    for reason, n in sorted(report.rejected.items()):
        table.add_row(f"rejected: {reason}", str(n))
    table.add_row("hs_nomenclature", str(report.nomenclature_rows))
    table.add_row("hs_sections", str(report.section_rows))
    console.print(table)


@app.command()
def tables(config: ConfigOpt = None, warehouse_url: WarehouseOpt = None) -> None:
    """Show the warehouse's tables and their row counts."""
    from hscode.warehouse import ALL_TABLES, warehouse_from_settings

    settings = settings_from_options(config, warehouse_url)
    out = RichTable(title=settings.warehouse_display)
    out.add_column("table")
    out.add_column("rows", justify="right")
    out.add_column("description")
    with warehouse_from_settings(settings) as wh:
        wh.ensure_schema()
        for t in ALL_TABLES:
            out.add_row(t.name, str(wh.count(t)), t.description)
    console.print(out)


DsOpt = Annotated[str, typer.Option("--ds", help="Run date YYYY-MM-DD (default: today, UTC).")]


def utc_today() -> str:
    """Today's date in UTC, the default ``--ds``."""
    import datetime as dt

    return dt.datetime.now(dt.UTC).date().isoformat()


@app.command()
def submit(
    job: Annotated[str, typer.Argument(help="A job in jobs/: extract_products, clean_products, "
                                            "prepare_training, score_catalog, "
                                            "publish_predictions, check_drift")],
    ds: DsOpt = "",
    master: Annotated[str, typer.Option(help="Spark master.")] = "local[*]",
    config: ConfigOpt = None,
) -> None:
    """Run one Spark job for a date through spark-submit."""
    from hscode.catalog import parse_ds
    from hscode.submit import submit as run

    job_args = ["--config", str(config.resolve())] if config else []
    code = run(job, parse_ds(ds or utc_today()).isoformat(), master, job_args)
    if code:
        raise typer.Exit(code)


@app.command()
def doctor(
    horovod: Annotated[bool, typer.Option(help="Also train on 2 Horovod ranks (~20 s).")] = True,
) -> None:
    """Check the installed stack: versions, Java, silent-exit imports, Horovod averaging."""
    from hscode.doctor import run_all

    with console.status("checking the stack"):
        checks = run_all(horovod=horovod)
    for c in checks:
        console.print(f"[{'green' if c.ok else 'red'}]{'ok ' if c.ok else 'FAIL'}[/] {c.name}: "
                      f"{c.detail}")
    if not all(c.ok for c in checks):
        raise typer.Exit(1)


def _subcommands() -> None:
    """Register the commands kept in their own modules (they import this module's ``app``)."""
    import importlib

    from hscode.review.cli import review_app

    for module in ("hscode.commands.pipeline", "hscode.commands.models"):
        importlib.import_module(module)  # their @app.command()s register on import

    app.add_typer(review_app, name="review")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    # ``python -m hscode.cli`` runs this file as ``__main__``, a second copy of the module; the
    # review commands import ``hscode.cli``, so run that module's app (as ``python -m hscode``
    # and the console script do), not this copy's
    from hscode.cli import main as package_main

    package_main()
else:
    _subcommands()
