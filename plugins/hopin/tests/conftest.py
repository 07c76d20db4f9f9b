"""Fixtures: one Hopin sandbox per session over real HTTP, a fresh event per test, a webhook
receiver, and an admin-API helper. Waits are shortened through plugin options."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
import requests
from eventsync.models import SystemSettings
from eventsync_hopin import plugin
from eventsync_hopin.auth import HopinConnection
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

#: Plugin options that keep retries and polling fast in tests.
FAST = {
    "retries": 3,
    "backoff_factor": 0.01,
    "backoff_max": 0.05,
    "retry_after_max": 0.05,
    "report_poll_interval": 0.02,
    "report_timeout": 10.0,
    "timeout": 5.0,
}

SANDBOX_OPTIONS = {
    "default_page_size": 3,
    "delivery_backoff": 0.05,
    "delivery_backoff_max": 0.2,
    "report_ready_after": 0.05,
    "fault_seed": 7,
}


class Admin:
    """A thin client of the sandbox admin API."""

    def __init__(self, url: str) -> None:
        self.url = f"{url}/_admin"
        self.session = requests.Session()

    def call(self, method: str, path: str, body: Any = None, expect: int | None = None) -> Any:
        """Call an admin endpoint and return its JSON (None for 204)."""
        response = self.session.request(method, f"{self.url}{path}", json=body, timeout=10)
        if expect is not None:
            assert response.status_code == expect, response.text
        else:
            assert response.ok, response.text
        return response.json() if response.content else None

    def registration(
        self, event_id: str, ticket_id: str, email: str, **attrs_: Any
    ) -> dict[str, Any]:
        """Create a registration through the admin API."""
        body = {
            "ticketId": ticket_id,
            "email": email,
            "firstName": "Ada",
            "lastName": "Lovelace",
            **attrs_,
        }
        return self.call("POST", f"/events/{event_id}/registrations", body)["data"]

    def fault(self, **rule: Any) -> dict[str, Any]:
        """Add a fault rule."""
        return self.call("POST", "/faults", rule, expect=201)

    def counters(self) -> dict[str, int]:
        """Calls per ``METHOD /route``."""
        return self.call("GET", "/counters")["calls"]


@attrs.frozen
class Fresh:
    """A new event and ticket in the sandbox's organisation, with settings pointing at them."""

    event_id: str
    ticket_id: str
    ticket_code: str
    settings: SystemSettings
    connection: HopinConnection


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Any]:
    """The session's Hopin sandbox."""
    handle = plugin.start_sandbox("hopin", SANDBOX_OPTIONS)
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture(scope="session")
def admin(sandbox: Any) -> Admin:
    """The admin API client."""
    return Admin(sandbox.url)


@pytest.fixture(autouse=True)
def _clean_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "sandbox" in request.fixturenames:
        requests.delete(f"{request.getfixturevalue('sandbox').url}/_admin/faults", timeout=5)


def with_options(settings: SystemSettings, **options: Any) -> SystemSettings:
    """The settings with extra or changed options."""
    return attrs.evolve(settings, options={**settings.options, **options})


@pytest.fixture
def settings(sandbox: Any) -> SystemSettings:
    """Working settings for org ``acme`` (fast retries)."""
    return with_options(sandbox.settings("acme"), **FAST)


@pytest.fixture
def fresh(sandbox: Any, admin: Admin, settings: SystemSettings) -> Fresh:
    """A new event with one ticket, and a connection to it."""
    org_id = sandbox.info()["organization_id"]
    event = admin.call("POST", f"/organizations/{org_id}/events", {"name": "Test event"})["data"]
    ticket = admin.call("POST", f"/events/{event['id']}/tickets", {"name": "VIP"})["data"]
    code = ticket["attributes"]["registrationUrl"].rsplit("=", 1)[1]
    event_settings = with_options(settings, event_id=event["id"])
    connection = plugin.authenticate("hopin", event_settings)
    return Fresh(event["id"], ticket["id"], code, event_settings, connection)


class Receiver:
    """A local webhook endpoint that records deliveries and answers with scripted statuses."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.lock = threading.Lock()
        self.server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/hopin"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _app(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        with self.lock:
            status = self.statuses.pop(0) if self.statuses else 200
            self.received.append(
                {
                    "method": request.method,
                    "path": request.path,
                    "headers": dict(request.headers),
                    "body": request.get_data(),
                    "status": status,
                }
            )
        return Response("ok" if status < 300 else "nope", status=status)(environ, start_response)

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until ``predicate(received)`` is true; returns the deliveries."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                snapshot = list(self.received)
            if predicate(snapshot):
                return snapshot
            time.sleep(0.02)
        raise AssertionError(f"condition not met; received {len(self.received)} deliveries")

    def stop(self) -> None:
        """Stop the server."""
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver for one test."""
    endpoint = Receiver()
    try:
        yield endpoint
    finally:
        endpoint.stop()


@pytest.fixture
def tweak():
    """``tweak(settings, **options)``: the settings with extra or changed options."""
    return with_options
