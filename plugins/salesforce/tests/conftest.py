"""Fixtures: one HTTPS sandbox per session, an outbound-message receiver, REST and admin clients."""

from __future__ import annotations

import http.server
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from eventsync import backoff
from eventsync.errors import BadNotification
from eventsync.models import HttpRequest, SystemSettings
from eventsync_salesforce import plugin
from eventsync_salesforce.connection import SalesforceConnection
from eventsync_salesforce.sandbox.formclient import WebSignIn
from eventsync_salesforce.sandbox.server import SalesforceSandbox
from eventsync_salesforce.transport import PinnedSession

ORG = "acme"


class Receiver:
    """An outbound-message endpoint that parses deliveries with the plugin, like the engine."""

    def __init__(self) -> None:
        self.settings: SystemSettings | None = None
        self.fail_next = 0
        self.deliveries: list[bytes] = []
        self.notifications: list[Any] = []
        self.seen: set[str] = set()
        self.resent: list[str] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server naming
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.deliveries.append(body)
                    if receiver.fail_next:
                        receiver.fail_next -= 1
                        self.send_response(500)
                        self.end_headers()
                        return
                request = HttpRequest(
                    method="POST", path=self.path, headers=dict(self.headers), body=body
                )
                try:
                    note = plugin.parse_notification("salesforce", request, receiver.settings)
                except BadNotification as exc:
                    self.send_response(exc.status)
                    self.end_headers()
                    return
                with receiver.lock:
                    receiver.notifications.append(note)
                    for dedupe in note.dedupe_ids:
                        if dedupe in receiver.seen:
                            receiver.resent.append(dedupe)
                        receiver.seen.add(dedupe)
                self.send_response(note.response.status)
                self.send_header("Content-Type", note.response.content_type)
                self.end_headers()
                self.wfile.write(note.response.body)

            def log_message(self, *args: Any) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/outbound"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def sandbox_config(endpoint: str) -> dict[str, Any]:
    """The sandbox config used by the tests."""
    return {
        "custom_fields": {
            "Lead": [
                {
                    "name": "Hopin_Registration_Id__c",
                    "type": "string",
                    "length": 64,
                    "external_id": True,
                },
                {"name": "Obsolete__c", "type": "string", "length": 20},
                {
                    "name": "Tier__c",
                    "type": "picklist",
                    "values": ["Gold", "Silver"],
                    "restricted": True,
                },
            ],
            "Campaign": [{"name": "Hopin_Ticket_Code__c", "type": "string", "length": 40}],
            "CampaignMember": [{"name": "Magic_Link__c", "type": "url"}],
        },
        "custom_objects": [
            {
                "name": "Ticket__c",
                "fields": [
                    {"name": "Code__c", "type": "string", "length": 40, "external_id": True},
                    {"name": "Campaign__c", "type": "reference", "reference_to": "Campaign"},
                    {"name": "Seats__c", "type": "int"},
                ],
            },
        ],
        "permission_sets": [{"name": "Marketing", "permissions": ["PermissionsEmailSingle"]}],
        "validation_rules": [
            {
                "object": "Lead",
                "name": "No_Forbidden",
                "condition": "Company = 'Forbidden Inc'",
                "message": "Company may not be Forbidden Inc",
                "field": "Company",
            },
        ],
        "users": [
            {
                "username": "noperm@sandbox.example",
                "last_name": "NoPerm",
                "password": "noperm-pass",
                "permission_sets": ["Marketing"],
            }
        ],
        "outbound_messages": [
            {
                "name": "Web_Leads",
                "object": "Lead",
                "endpoint_url": endpoint,
                "fields": ["Email", "LastName", "Company", "LeadSource"],
                "condition": "LeadSource = 'Web'",
                "required_permission": "PermissionsApiEnabled",
            },
        ],
    }


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    """The outbound-message receiver (plain HTTP on 127.0.0.1)."""
    found = Receiver()
    yield found
    found.stop()


@pytest.fixture(scope="session")
def sandbox(receiver: Receiver) -> Iterator[SalesforceSandbox]:
    """The shared HTTPS sandbox."""
    handle = plugin.start_sandbox(
        "salesforce",
        {
            "config": sandbox_config(receiver.url),
            "outbound_backoff": 0.05,
            "retry_backoff": 0.01,
        },
    )
    receiver.settings = handle.settings(ORG)
    yield handle
    handle.stop()


@pytest.fixture(scope="session")
def conn(sandbox: SalesforceSandbox) -> SalesforceConnection:
    """A plugin connection (JWT grant)."""
    return plugin.authenticate("salesforce", sandbox.settings(ORG))


class Rest:
    """A raw HTTPS client of the sandbox's REST API (for fidelity tests)."""

    def __init__(self, sandbox: SalesforceSandbox) -> None:
        self.http = PinnedSession(verify=sandbox.ca_bundle, timeout=30)
        info = sandbox.info()
        token = self.http.post(
            info["token_url"],
            data={
                "grant_type": "password",
                "client_id": info["client_id"],
                "client_secret": info["client_secret"],
                "username": info["username"],
                "password": info["password"],
            },
        ).json()["access_token"]
        self.http.headers["Authorization"] = f"Bearer {token}"
        self.base = info["rest_base"]
        self.url = sandbox.url

    def __call__(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = (
            path
            if path.startswith("http")
            else (self.url + path if path.startswith("/") else self.base + path)
        )
        return self.http.request(method, url, **kwargs)


@pytest.fixture(scope="session")
def rest(sandbox: SalesforceSandbox) -> Rest:
    """Raw REST access with a valid session."""
    return Rest(sandbox)


class Admin:
    """The sandbox admin API."""

    def __init__(self, sandbox: SalesforceSandbox) -> None:
        self.http = PinnedSession(verify=sandbox.ca_bundle, timeout=30)
        self.http.headers["X-Admin-Token"] = sandbox.admin_token
        self.url = sandbox.url + "/_admin"

    def get(self, path: str) -> Any:
        response = self.http.get(self.url + path)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: Any = None) -> Any:
        response = self.http.post(self.url + path, json=body or {})
        response.raise_for_status()
        return response.json()

    def delete(self, path: str) -> Any:
        response = self.http.delete(self.url + path)
        response.raise_for_status()
        return response.json()

    def calls(self, endpoint: str | None = None) -> int:
        snapshot = self.get("/counters")
        if endpoint is None:
            return int(snapshot["api_usage"])
        return int(snapshot["by_endpoint"].get(endpoint, 0))


@pytest.fixture(scope="session")
def admin(sandbox: SalesforceSandbox) -> Admin:
    """The admin API client."""
    return Admin(sandbox)


@pytest.fixture(autouse=True)
def _clear_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "admin" in request.fixturenames:
        request.getfixturevalue("admin").delete("/faults")


@pytest.fixture
def no_wait() -> Iterator[None]:
    """Retry waits removed (eventsync.backoff switch)."""
    with backoff.disabled():
        yield


@pytest.fixture
def unique() -> str:
    """A short unique token for test data."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def web_signin(sandbox: SalesforceSandbox) -> WebSignIn:
    """A requests-driven browser for the sandbox's sign-in pages."""
    return WebSignIn(sandbox)
