"""``hscode review ...``: record reviewers' decisions (``import``) and serve the review page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table as RichTable

from hscode.cli import ConfigOpt, WarehouseOpt, console, settings_from_options

review_app = typer.Typer(help="Reviewers' decisions: import a spreadsheet, serve the page.",
                         no_args_is_help=True, rich_markup_mode="markdown")


@review_app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="CSV: product_id, decision (confirmed / "
                                               "corrected / not_classifiable), hs6, reviewer,"
                                               " decided_at, note.", exists=True,
                                         dir_okay=False)],
    reviewer: Annotated[Optional[str], typer.Option(
        help="Who decided the rows that name no reviewer.")] = None,
    config: ConfigOpt = None, warehouse_url: WarehouseOpt = None,
) -> None:
    """Record a reviewer's spreadsheet in one transaction.

    Bad rows go to hs_review_rejects with their reason; rows already recorded are skipped.
    """
    from hscode.review.store import import_file
    from hscode.warehouse import warehouse_from_settings
    from hscode.warehouse.reviews import import_rejects

    settings = settings_from_options(config, warehouse_url)
    with warehouse_from_settings(settings) as wh:
        try:
            report = import_file(wh, file, reviewer)
        except ValueError as exc:
            console.print(f"[red]review import refused[/]: {exc}")
            raise typer.Exit(2) from exc
        rejects = import_rejects(wh, report.import_id, limit=20)
    console.print(report.summary())
    if rejects:
        out = RichTable(title=f"rejected rows (hs_review_rejects, import_id "
                              f"{report.import_id})")
        for col in ("row", "reason", "product_id", "hs6"):
            out.add_column(col)
        for row in rejects:
            out.add_row(*(str(v or "") for v in row[:4]))
        console.print(out)


@review_app.command("add-reviewer")
def add_reviewer_(
    name: Annotated[str, typer.Argument(help="The reviewer's login (recorded on decisions).")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True,
                                          confirmation_prompt=True,
                                          help="Asked for when not given.")],
    config: ConfigOpt = None,
) -> None:
    """Add (or reset) a reviewer's login for the review page."""
    from hscode.review.identity import add_reviewer

    settings = settings_from_options(config)
    path = settings.data_dir / settings.review.reviewers_file
    try:
        add_reviewer(path, name, password)
    except ValueError as exc:
        console.print(f"[red]refused[/]: {exc}")
        raise typer.Exit(2) from exc
    console.print(f"reviewer {name} can log in to the review page ({path})")


@review_app.command("serve")
def serve_(
    host: Annotated[Optional[str], typer.Option(help="Address to listen on "
                                                     "(review.host: 127.0.0.1).")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port (review.port: 8765).")] = None,
    config: ConfigOpt = None, warehouse_url: WarehouseOpt = None,
) -> None:
    """Serve the review page.

    The queue by priority; decisions are recorded under the logged-in reviewer.
    """
    from hscode.review.app import serve
    from hscode.review.identity import load_reviewers

    settings = settings_from_options(config, warehouse_url)
    cfg = settings.review
    if not cfg.identity_header and not load_reviewers(settings.data_dir / cfg.reviewers_file):
        console.print("[yellow]no reviewer can log in yet[/]: `hscode review add-reviewer "
                      "NAME` first")
    console.print(f"review page: http://{host or cfg.host}:{port or cfg.port}/ "
                  f"({settings.warehouse_display})")
    serve(settings, host, port)
