"""Browser fixtures: Playwright's sync API driving Debian's Chromium (``make browser`` installs it).

Playwright's own browser download cannot reach its host from the machines this project runs on,
so the browser is the system package, launched with the flags a closed network needs (no
background networking, no component updates, no QUIC). Each test gets a fresh context; screenshots
go to ``$EVENTSYNC_SCREENSHOTS`` when it is set (``make screenshots`` points it at
``docs/screenshots``) and to the test's temporary folder otherwise.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("EVENTSYNC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/browser carries the ``browser`` marker."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """One headless Chromium for the worker's session. A missing browser fails, never skips:
    ``make test`` installs it, so its absence is a broken set-up."""
    from playwright.sync_api import sync_playwright

    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.fail(f"{CHROMIUM} not found: run `make browser` (installs Debian's chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    """A page in a fresh browser context (own cookies and storage), closed after the test.
    Actions and waits time out after 30 s: generous on a loaded machine, never a sleep. The
    context trusts the sandboxes' own test CA (Chromium takes no CA bundle; ignoring HTTPS
    errors is the one way), as every page these tests open is a local sandbox or console."""
    context = browser.new_context(  # type: ignore[attr-defined]
        viewport={"width": 1280, "height": 900}, ignore_https_errors=True
    )
    context.set_default_timeout(30_000)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def screenshot(page: object, tmp_path: Path) -> Callable[[str], Path]:
    """``screenshot("name")`` saves the page as ``name.png`` (full page) and returns the path."""
    folder = Path(os.environ.get("EVENTSYNC_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> Path:
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
        return path

    return take
