"""The browser fixture itself: Debian's Chromium loads a page served on loopback, a click
changes it, and a screenshot is a real PNG."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

PAGE = b"""<!doctype html><title>fixture</title>
<button id="go" onclick="document.getElementById('out').textContent='clicked'">Go</button>
<p id="out">waiting</p>"""


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def served() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_chromium_loads_clicks_and_screenshots(page, served, tmp_path) -> None:
    page.goto(served)
    page.get_by_role("button", name="Go").click()
    page.wait_for_function("document.getElementById('out').textContent === 'clicked'")
    # Into the test's own folder: `make screenshots` collects only the console's screens.
    path = tmp_path / "fixture.png"
    page.screenshot(path=str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
