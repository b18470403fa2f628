"""A real browser for the tests: Debian's Chromium, headless, driven by Playwright.

Playwright's own browser download cannot be fetched on these machines, so it drives the
system browser (``HSCODE_CHROMIUM``, else ``chromium`` on PATH; ``make test`` installs
Debian's package). Each page visit returns what a person would notice: images that did not
load, requests that failed, and the page's text; a full-page screenshot is saved under
:data:`SHOTS` (``HSCODE_TEST_SCREENSHOTS``, default ``test-artifacts/`` in the checkout).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHOTS = Path(os.environ.get("HSCODE_TEST_SCREENSHOTS", REPO / "test-artifacts"))
# without the background-networking flags Chromium keeps dialling Google on a closed network
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]
BROKEN_IMAGES = """() => [...document.images]
    .filter(i => !i.complete || i.naturalWidth === 0).map(i => i.currentSrc || i.src)"""


def chromium_path() -> str:
    """The Chromium executable, or a clear error naming how to install it."""
    found = os.environ.get("HSCODE_CHROMIUM") or shutil.which("chromium") \
        or shutil.which("chromium-browser")
    if not found:
        raise RuntimeError("no Chromium found: `apt-get install chromium` (make test does it "
                           "as root) or set HSCODE_CHROMIUM")
    return found


@dataclass
class Visit:
    """What one page showed."""

    url: str
    screenshot: Path
    text: str
    broken_images: list[str]
    failed_requests: list[str] = field(default_factory=list)


class Browser:
    """One headless Chromium; :meth:`visit` opens a page in a fresh tab."""

    def __init__(self, browser, **context) -> None:
        self._browser = browser
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000}, **context)

    def with_context(self, **context) -> Browser:
        """The same browser in a new context (e.g. ``http_credentials``, fresh cookies)."""
        return Browser(self._browser, **context)

    def visit(self, url: str, shot: str, wait_for: str | None = None,
              timeout_ms: float = 30_000) -> Visit:
        """Open ``url``, wait for the network to settle (and for ``wait_for``, a text or a
        CSS selector prefixed ``css=``), save ``SHOTS/<shot>.png`` and report."""
        page = self.context.new_page()
        failed: list[str] = []
        # a redirect aborts the request it replaces; a 401 before logging in is the login
        page.on("requestfailed", lambda r: "ERR_ABORTED" not in (r.failure or "")
                and failed.append(f"{r.url} ({r.failure})"))
        page.on("response", lambda r: r.status >= 400 and r.status != 401
                and failed.append(f"{r.url} ({r.status})"))
        page.goto(url, wait_until="networkidle", timeout=timeout_ms)
        if wait_for:
            target = page.locator(wait_for[4:]) if wait_for.startswith("css=") \
                else page.get_by_text(wait_for).first
            target.wait_for(timeout=timeout_ms)
            page.wait_for_load_state("networkidle", timeout=timeout_ms)
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{shot}.png"
        page.screenshot(path=str(path), full_page=True)
        visit = Visit(url=page.url, screenshot=path, text=page.inner_text("body"),
                      broken_images=page.evaluate(BROKEN_IMAGES), failed_requests=failed)
        self.page = page
        return visit

    def login(self, base_url: str, username: str, password: str) -> Visit:
        """Sign in on Airflow's login page (the simple auth manager's form)."""
        visit = self.visit(f"{base_url}/", "airflow-login", wait_for="Sign in")
        page = self.page
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(lambda url: "/auth/login" not in url, timeout=30_000)
        return visit


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless system Chromium for the duration of the block."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), headless=True,
                                     args=FLAGS)
        try:
            yield Browser(browser)
        finally:
            browser.close()
