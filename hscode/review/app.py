"""The review page: compliance analysts work the queue and decide codes.

``hscode review serve`` starts it (FastAPI under uvicorn) on ``review.host``/``review.port``
(localhost by default). Every page needs a reviewer (HTTP basic login against
``review.reviewers_file``, or the identity header an authenticating proxy sets); a decision
is recorded under that name, through the same validation as an import, and refused
without a valid form token. Templates escape everything they show: product texts are
untrusted input.
"""

# no `from __future__ import annotations`: FastAPI must read the dependencies of the
# routes below, which are local to create_app, from their evaluated annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

import pandas as pd
from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from jinja2 import Environment, FileSystemLoader, select_autoescape

from hscode.config import Settings
from hscode.review.decisions import validate
from hscode.review.identity import REVIEWER, CsrfTokens, check_login, load_reviewers
from hscode.review.search import Entry, search_codes
from hscode.review.store import known, record
from hscode.warehouse import warehouse_from_settings
from hscode.warehouse.reviews import (
    latest_run_date,
    nomenclature,
    product_fingerprints,
    queue_page,
)

TEMPLATES = Path(__file__).resolve().parent / "templates"
REALM = {"WWW-Authenticate": 'Basic realm="hscode review"'}
REASONS = {  # a rejected decision, as the page says it
    "unknown_code": "that code is not an HS 2022 subheading",
    "malformed_code": "a code has 6, 8 or 10 digits",
    "missing_code": "pick or type a code",
    "code_with_not_classifiable": "leave the code empty for 'not classifiable'",
    "confirmed_code_is_not_the_prediction": "accepting keeps the model's code",
    "unknown_product": "no such product",
    "note_too_long": "the note is too long",
}
# what a redirect after a decision may carry back: a reject reason's code, a product id;
# anything else in a crafted link is not shown (no text of a stranger's on the page)
REASON_CODE = re.compile(r"[a-z_]{1,40}")


def create_app(settings: Settings, tokens: CsrfTokens | None = None) -> FastAPI:
    """The review application for ``settings``' warehouse and reviewers."""
    app = FastAPI(title="hscode review", docs_url=None, redoc_url=None, openapi_url=None)
    pages = Environment(loader=FileSystemLoader(TEMPLATES),
                        autoescape=select_autoescape(["html"]))
    tokens = tokens or CsrfTokens()
    cfg = settings.review
    reviewers_file = settings.data_dir / cfg.reviewers_file
    basic = HTTPBasic(auto_error=False)
    cache: dict[str, object] = {}

    def reviewer(request: Request,
                 credentials: Annotated[HTTPBasicCredentials | None, Depends(basic)]) -> str:
        if cfg.identity_header:
            name = request.headers.get(cfg.identity_header, "").strip()
            if not REVIEWER.match(name):
                raise HTTPException(401, f"no reviewer in the {cfg.identity_header} header")
            return name
        if credentials and check_login(load_reviewers(reviewers_file), credentials.username,
                                       credentials.password):
            return credentials.username
        raise HTTPException(401, "log in as a reviewer (hscode review add-reviewer)",
                            headers=REALM)

    def codes() -> tuple[list[Entry], dict[str, str], frozenset[str]]:
        if "entries" not in cache:
            with warehouse_from_settings(settings) as wh:
                wh.ensure_schema()  # a warehouse not yet seeded shows an empty queue
                entries = [(c, int(lv), d or "") for c, lv, d in nomenclature(wh)]
            cache["entries"] = entries
            cache["described"] = {c: d for c, _, d in entries}
            cache["hs6"] = frozenset(c for c, lv, _ in entries if lv == 6)
        return cache["entries"], cache["described"], cache["hs6"]  # type: ignore[return-value]

    @app.get("/", response_class=HTMLResponse)
    def queue(who: Annotated[str, Depends(reviewer)], ds: str = "", page: int = 1,
              q: str = "", done: str = "", error: str = "") -> HTMLResponse:
        entries, described, _ = codes()
        page = max(page, 1)
        try:
            chosen = dt.date.fromisoformat(ds) if ds else None
        except ValueError as exc:
            raise HTTPException(400, "ds is a date: YYYY-MM-DD") from exc
        with warehouse_from_settings(settings) as wh:
            day = chosen or latest_run_date(wh)
            total, rows = queue_page(wh, day, cfg.page_size, (page - 1) * cfg.page_size) \
                if day else (0, [])
            done = done if done and product_fingerprints(wh, done) else ""  # a real product
        for row in rows:
            row["candidates"] = [
                (row[c], row[p], described.get(row[c] or "", "")) for c, p in
                (("predicted_hs6", "probability"), ("top2_hs6", "top2_probability"),
                 ("top3_hs6", "top3_probability")) if row[c]]
            row["assigned_description"] = described.get(row["assigned_hs6"] or "", "")
        html = pages.get_template("queue.html").render(
            reviewer=who, ds=day, rows=rows, total=total, page=page,
            pages=max(1, -(-total // cfg.page_size)), query=q,
            found=search_codes(entries, q), done=done,
            error=REASONS.get(error, error) if REASON_CODE.fullmatch(error) else "",
            csrf=tokens.issue(who))
        return HTMLResponse(html)

    @app.post("/decide")
    def decide(who: Annotated[str, Depends(reviewer)], product_id: Annotated[str, Form()],
               decision: Annotated[str, Form()], hs6: Annotated[str, Form()] = "",
               typed_hs6: Annotated[str, Form()] = "", note: Annotated[str, Form()] = "",
               csrf: Annotated[str, Form()] = "", ds: Annotated[str, Form()] = "",
               page: Annotated[int, Form()] = 1) -> RedirectResponse:
        if not tokens.valid(who, csrf):
            raise HTTPException(403, "stale or missing form token: reload the page")
        _, _, hs6_codes = codes()
        code = "" if decision == "confirmed" else (typed_hs6.strip() or hs6.strip())
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
        raw = pd.DataFrame([{"product_id": product_id, "decision": decision, "hs6": code,
                             "reviewer": who, "decided_at": now.isoformat(), "note": note}])
        with warehouse_from_settings(settings) as wh:
            outcome = validate(raw, known(wh, product_id, hs6_codes), "page", now)
            if len(outcome.accepted):
                record(wh, outcome)
        back = {"ds": ds, "page": page}
        if len(outcome.rejected):
            back["error"] = outcome.rejected["reason"].iloc[0]
        else:
            back["done"] = product_id
        return RedirectResponse(f"/?{urlencode(back)}", status_code=303)

    return app


def serve(settings: Settings, host: str | None = None, port: int | None = None) -> None:
    """Run the page under uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(create_app(settings), host=host or settings.review.host,
                port=port or settings.review.port, log_level="info")
