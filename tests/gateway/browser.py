"""The dashboard in a real browser: Debian's chromium driven by Playwright (never a browser
Playwright downloads). Page errors are collected so a test can assert there were none."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Generous: a loaded 2-core machine runs Kafka, Redis, the sink and chromium at once.
TIMEOUT_MS = 30_000


@contextmanager
def browser_page(errors: list[str] | None = None) -> Iterator[Page]:
    """A fresh page; uncaught page errors go to ``errors``."""
    if not CHROMIUM.exists():
        pytest.fail("chromium is missing: apt-get install -y chromium")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(TIMEOUT_MS)
            if errors is not None:
                page.on("pageerror", lambda exc: errors.append(str(exc)))
            yield page
        finally:
            browser.close()
