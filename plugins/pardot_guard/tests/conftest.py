"""Fixtures: one Salesforce sandbox (over HTTPS, through the real Salesforce plugin) configured
with automation users, permission sets and consent fields, and helpers to build org configs."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import requests
from eventsync.config import OrgConfig
from eventsync.plugins import Hooks, make_plugin_manager

ORG = "acme"

SANDBOX_CONFIG: dict[str, Any] = {
    "custom_fields": {
        "Lead": [
            {"name": "Confirmed_Opt_In__c", "type": "picklist", "values": ["Pending", "Confirmed"]},
            {"name": "Double_Opt_In__c", "type": "boolean"},
        ],
        "Contact": [
            {"name": "Confirmed_Opt_In__c", "type": "picklist", "values": ["Pending", "Confirmed"]}
        ],
    },
    "permission_sets": [
        {
            "name": "B2BMA_Connector",
            "label": "B2BMA Connector",
            "permissions": ["PermissionsApiEnabled"],
        },
        {
            "name": "Automation",
            "label": "Automation",
            "permissions": ["PermissionsApiEnabled", "PermissionsEmailSingle"],
        },
        {"name": "Mail_Only", "label": "Mail Only", "permissions": ["PermissionsEmailSingle"]},
    ],
    "users": [
        {
            "username": "b2bma@acme.example",
            "last_name": "B2BMA Integration",
            "permission_sets": ["B2BMA_Connector"],
        },
        {
            "username": "leandata@acme.example",
            "last_name": "LeanData",
            "permission_sets": ["Automation"],
        },
        {
            "username": "split@acme.example",
            "last_name": "Split",
            "permission_sets": ["B2BMA_Connector", "Mail_Only"],
        },
        {
            "username": "retired@acme.example",
            "last_name": "Retired",
            "permission_sets": ["Automation"],
        },
        {"username": "bare@acme.example", "last_name": "Bare"},
    ],
}


class Sandbox:
    """The running sandbox, a connection made by the Salesforce plugin, and admin helpers."""

    def __init__(self, hooks: Hooks) -> None:
        self.hooks = hooks
        self.handle = hooks.start_sandbox("salesforce", {"config": SANDBOX_CONFIG})
        self.info = self.handle.info()
        self.connection: Any = hooks.authenticate(self.handle.settings(ORG))
        self.http = requests.Session()
        self.http.verify = self.info["ca_bundle"]
        self.http.headers["X-Admin-Token"] = self.info["admin_token"]

    def create(self, obj: str, **fields: Any) -> str:
        """Insert one record through the REST API (as the integration user)."""
        result = getattr(self.connection.sf, obj).create(fields)
        return str(result["id"])

    def update(self, obj: str, record_id: str, **fields: Any) -> None:
        """Update one record through the REST API."""
        getattr(self.connection.sf, obj).update(record_id, fields)

    def admin(self, path: str, body: Mapping[str, Any]) -> Any:
        """POST to the sandbox admin API."""
        response = self.http.post(
            f"{self.info['admin_url']}/{path}",
            json=dict(body),
            timeout=10,
            verify=self.info["ca_bundle"],
        )  # REQUESTS_CA_BUNDLE would win over session.verify
        response.raise_for_status()
        return response.json()

    def connections(self) -> dict[str, Any]:
        """The ``connections`` mapping hooks receive."""
        return {"salesforce": self.connection}


@pytest.fixture(scope="session")
def hooks() -> Hooks:
    """A facade over a fresh manager with every installed plugin."""
    return Hooks(make_plugin_manager(environ={}))


@pytest.fixture(scope="session")
def guarded(hooks: Hooks) -> Hooks:
    """The hooks one org with pardot_guard enabled calls."""
    return hooks.for_plugins(["salesforce", "hopin", "pardot_guard"])


@pytest.fixture(scope="session")
def sandbox(hooks: Hooks) -> Iterator[Sandbox]:
    """One Salesforce sandbox for the session; ``retired@`` is deactivated."""
    box = Sandbox(hooks)
    box.update("User", box.info["users"]["retired@acme.example"], IsActive=False)
    try:
        yield box
    finally:
        box.handle.stop()


def org_with(options: Mapping[str, Any] | None = None, name: str = ORG) -> OrgConfig:
    """An OrgConfig enabling pardot_guard with ``options``."""
    return OrgConfig(
        plan="enterprise",
        name=name,
        plugins=("salesforce", "hopin", "pardot_guard"),
        crm="salesforce",
        event_platform="hopin",
        plugin_options={"pardot_guard": dict(options or {})},
    )


@pytest.fixture(scope="session")
def make_org() -> Any:
    """``make_org(options, name=...)``: an OrgConfig enabling pardot_guard."""
    return org_with
