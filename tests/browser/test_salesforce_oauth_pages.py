"""A real browser signs in on the Salesforce sandbox's login page and consents, landing on a
loopback callback server that receives the code; the plugin then exchanges it."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from eventsync_salesforce import plugin

CALLBACK_PATH = "/console/oauth/callback"


class Callback:
    """A loopback HTTP server standing in for the console's OAuth callback."""

    def __init__(self) -> None:
        self.received: list[dict[str, list[str]]] = []
        received = self.received

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server naming
                parts = urlsplit(self.path)
                if parts.path != CALLBACK_PATH:
                    self.send_response(404)
                    self.end_headers()
                    return
                received.append(parse_qs(parts.query))
                body = b"<!doctype html><title>Callback</title><h1>Signed in</h1>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}{CALLBACK_PATH}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Any]:
    """A Salesforce sandbox with its default console app and user."""
    handle = plugin.start_sandbox("salesforce", {})
    yield handle
    handle.stop()


@pytest.fixture
def callback() -> Iterator[Callback]:
    """The loopback callback server."""
    server = Callback()
    yield server
    server.stop()


def test_browser_signs_in_consents_and_the_callback_gets_the_code(
    sandbox, callback, page, screenshot
):
    oauth = sandbox.info()["oauth"]
    table = {
        "login_url": sandbox.url,
        "client_id": oauth["console_app"]["client_id"],
        "ca_bundle": sandbox.ca_bundle,
    }
    start = plugin.oauth_start("salesforce", table, callback.url, "browser-state")
    page.goto(start.url)
    page.get_by_role("button", name="Log In").wait_for()
    screenshot("salesforce-oauth-login")
    page.fill("#username", oauth["username"])
    page.fill("#password", "not-the-password")
    page.get_by_role("button", name="Log In").click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert "check your username and password" in alert.inner_text()
    page.fill("#password", oauth["password"])
    page.get_by_role("button", name="Log In").click()
    page.get_by_role("heading", name="Allow Access?").wait_for()
    assert "Manage user data via APIs (api)" in page.content()
    screenshot("salesforce-oauth-consent")
    page.get_by_role("button", name="Allow").click()
    page.get_by_role("heading", name="Signed in").wait_for()

    [query] = callback.received
    assert query["state"] == ["browser-state"]
    grant = plugin.oauth_finish(
        "salesforce", table, callback.url, query["code"][0], start.verifier, {}
    )
    assert grant.account == f"{oauth['username']} on {sandbox.info()['org_id']}"
    assert grant.settings["grant"] == "refresh_token"
