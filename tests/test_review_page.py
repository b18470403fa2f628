"""The review page in a real browser: a reviewer logs in, works the queue, and the
decisions land in hs_code_reviews; what the page shows is escaped."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hscode.review.search import search_codes
from tests.conftest import make_settings
from tests.test_review import _seed

PASSWORD = "correct horse battery"
XSS = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>usb charger'
NOMENCLATURE = [("3924", 4, "Tableware and kitchenware, of plastics"),
                ("392410", 6, "Tableware and kitchenware"),
                ("392490", 6, "Other household articles, of plastics"),
                ("850440", 6, "Static converters")]


@pytest.mark.unit
def test_the_nomenclature_search_finds_codes_by_prefix_and_descriptions_by_every_word() -> None:
    assert [e[0] for e in search_codes(NOMENCLATURE, "3924.1")] == ["392410"]
    assert [e[0] for e in search_codes(NOMENCLATURE, "of PLASTICS")] == ["392490", "3924"]
    assert search_codes(NOMENCLATURE, "plastics converters") == []
    assert search_codes(NOMENCLATURE, "  ") == []
    assert len(search_codes(NOMENCLATURE, "3", limit=2)) == 2


@pytest.mark.unit
def test_reviewer_logins_check_passwords_and_refuse_weak_ones(tmp_path: Path) -> None:
    from hscode.review.identity import CsrfTokens, add_reviewer, check_login, load_reviewers

    path = tmp_path / "reviewers.json"
    add_reviewer(path, "ana", PASSWORD)
    reviewers = load_reviewers(path)
    assert check_login(reviewers, "ana", PASSWORD)
    assert not check_login(reviewers, "ana", PASSWORD + "!")
    assert not check_login(reviewers, "bob", PASSWORD)
    assert PASSWORD not in path.read_text() and path.stat().st_mode & 0o077 == 0
    for name, password in (("ana smith", PASSWORD), ("<b>", PASSWORD), ("ana", "short")):
        with pytest.raises(ValueError):
            add_reviewer(path, name, password)
    tokens = CsrfTokens(b"k" * 32)
    assert tokens.valid("ana", tokens.issue("ana")) and not tokens.valid("bob", tokens.issue("ana"))


@pytest.fixture
def served(tmp_path: Path) -> Iterator[dict]:
    """The page on a free localhost port over a small seeded DuckDB warehouse, three
    products in its queue (one of them with a hostile text) and one reviewer."""
    import uvicorn

    from hscode.review.app import create_app
    from hscode.review.identity import add_reviewer
    from hscode.warehouse import warehouse_from_settings

    settings = make_settings(tmp_path)
    with warehouse_from_settings(settings) as wh:
        _seed(wh)
        wh.execute("UPDATE hs_predictions SET needs_review = TRUE WHERE product_id = 'p2'")
        wh.execute("UPDATE product_master SET short_description = ? WHERE product_id = 'p2'",
                   [XSS])
    add_reviewer(settings.data_dir / settings.review.reviewers_file, "ana", PASSWORD)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive()
        time.sleep(0.05)
    yield {"url": f"http://127.0.0.1:{port}", "settings": settings}
    server.should_exit = True
    thread.join(10)


def _reviews(settings) -> list[tuple]:
    from hscode.warehouse import warehouse_from_settings

    with warehouse_from_settings(settings) as wh:
        return wh.execute("SELECT product_id, decision, decided_hs6, reviewer, source, "
                          "reviewed_hs6 FROM hs_code_reviews ORDER BY product_id")


@pytest.mark.integration
def test_the_page_refuses_anyone_without_a_login_or_a_form_token(served: dict) -> None:
    import httpx

    url = served["url"]
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, auth=("ana", "wrong password")).status_code == 401
    assert httpx.get(f"{url}/?ds=yesterday", auth=("ana", PASSWORD)).status_code == 400
    # a crafted link cannot put its own words on the page, nor claim a decision was recorded
    spoofed = httpx.get(f"{url}/", auth=("ana", PASSWORD), params={
        "error": "session expired: call +1 555 0100", "done": "your whole catalog"})
    assert spoofed.status_code == 200 and 'id="flash"' not in spoofed.text
    assert "session expired" not in spoofed.text and "whole catalog" not in spoofed.text
    shown = httpx.get(f"{url}/", auth=("ana", PASSWORD),
                      params={"error": "unknown_code", "done": "p1"}).text
    assert "not an HS 2022 subheading" in shown and "decision on product <b>p1</b>" in shown
    form = {"product_id": "p1", "decision": "confirmed"}
    assert httpx.post(f"{url}/decide", data=form).status_code == 401
    forged = httpx.post(f"{url}/decide", data={**form, "csrf": "0" * 64},
                        auth=("ana", PASSWORD))
    assert forged.status_code == 403
    assert _reviews(served["settings"]) == []


@pytest.mark.integration
def test_a_reviewer_decides_three_products_in_the_browser(served: dict, browser) -> None:
    tab = browser.with_context(http_credentials={"username": "ana", "password": PASSWORD})
    first = tab.visit(served["url"], "review-queue", wait_for="css=#queue")
    page = tab.page
    assert "3 products to review" in first.text and first.failed_requests == []
    order = page.locator("tr.item").evaluate_all("rows => rows.map(r => r.dataset.product)")
    assert order[-1] == "p2"  # agreeing (no assigned code) after the two disputes
    # the hostile text is shown as text and ran nothing
    assert XSS in page.locator("tr[data-product=p2] td.text").inner_text()
    assert page.evaluate("window.pwned") is None

    def row(product: str):
        return page.locator(f"tr[data-product={product}]")

    row("p3").get_by_role("button", name="Accept the model's code").click()
    page.wait_for_url("**done=p3**")
    row("p1").get_by_label("the assigned 392410").check()
    row("p1").get_by_label("note").fill("bowls are tableware")
    row("p1").get_by_role("button", name="Set the picked or typed code").click()
    page.wait_for_url("**done=p1**")
    # a code that does not exist is refused with the reason, nothing recorded
    row("p2").get_by_label("or type a code").fill("999999")
    row("p2").get_by_role("button", name="Set the picked or typed code").click()
    page.wait_for_url("**error=unknown_code**")
    assert "not an HS 2022 subheading" in page.locator("#flash").inner_text()
    # the search finds the right subheading; the reviewer types it
    page.get_by_label("Search the HS 2022 nomenclature").fill("3924")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**q=3924**")
    found = page.locator("#found").inner_text()
    tab.visit(page.url, "review-search")
    assert "392490" in found and "850440" not in found
    row("p2").get_by_label("or type a code").fill("3924.90")
    row("p2").get_by_role("button", name="Set the picked or typed code").click()
    page.wait_for_url("**done=p2**")
    after = tab.visit(page.url, "review-after-three-decisions")
    assert "0 products to review" in after.text
    assert _reviews(served["settings"]) == [
        ("p1", "corrected", "392410", "ana", "page", "392490"),
        ("p2", "corrected", "392490", "ana", "page", "850440"),
        ("p3", "confirmed", "392410", "ana", "page", "392410"),
    ]
