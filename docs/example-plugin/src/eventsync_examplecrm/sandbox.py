"""A tiny in-memory "ExampleCRM" HTTP API, so the plugin can be tested over real sockets.

Endpoints: ``GET /schema``, ``GET /contacts?id=...``, ``POST /contacts`` (a JSON list; answers
one result per record). Every call needs ``Authorization: Bearer <key>``.
"""

from __future__ import annotations

import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from eventsync.models import SystemSettings

API_KEY = "example-key"
SCHEMA = {"Contact": {"Email": "email", "LastName": "string"}}


class _Handler(BaseHTTPRequestHandler):
    contacts: dict[str, dict] = {}
    ids = itertools.count(1)

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self) -> bool:
        if self.headers.get("Authorization") == f"Bearer {API_KEY}":
            return True
        self._send(401, {"error": "invalid_key", "message": "the API key is wrong"})
        return False

    def do_GET(self) -> None:
        if not self._authorized():
            return
        url = urlsplit(self.path)
        if url.path == "/schema":
            self._send(200, SCHEMA)
        elif url.path == "/contacts":
            wanted = parse_qs(url.query).get("id", [])
            self._send(200, [{"id": i, **self.contacts[i]} for i in wanted if i in self.contacts])
        else:
            self._send(404, {"error": "not_found"})

    def do_POST(self) -> None:
        if not self._authorized():
            return
        records = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        results = []
        for record in records:
            if not record.get("LastName"):
                results.append(
                    {"ok": False, "error": "REQUIRED", "message": "LastName is required"}
                )
                continue
            new_id = f"c{next(self.ids)}"
            self.contacts[new_id] = record
            results.append({"ok": True, "id": new_id})
        self._send(200, results)


class ExampleSandbox:
    """A running ExampleCRM sandbox (the SandboxHandle of this plugin)."""

    system = "examplecrm"

    def __init__(self) -> None:
        handler = type("Handler", (_Handler,), {"contacts": {}, "ids": itertools.count(1)})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def settings(self, org: str) -> SystemSettings:
        """Working settings; the key lives in the settings' own env, not in os.environ."""
        return SystemSettings(
            "examplecrm",
            org,
            {"url": self.url, "api_key_env": "EXAMPLECRM_KEY"},
            env={"EXAMPLECRM_KEY": API_KEY},
        )

    def info(self) -> dict:
        """URL and credentials as JSON."""
        return {"url": self.url, "api_key": API_KEY}

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
