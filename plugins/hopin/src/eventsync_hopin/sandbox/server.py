"""Start and stop the sandbox: a threaded WSGI server on 127.0.0.1 and the handle tests use."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Mapping
from typing import Any

from eventsync.models import SystemSettings
from werkzeug.serving import make_server

from .admin import create_admin
from .app import create_app, upsert_subscription
from .config import SandboxConfig, load_config
from .faults import Faults
from .ids import iso, now
from .latency import from_config
from .store import Store
from .subscriptions import SIGNALS, Deliverer

API_KEY_ENV = "EVENTSYNC_HOPIN_SANDBOX_API_KEY"
WEBHOOK_SECRET_ENV = "EVENTSYNC_HOPIN_SANDBOX_WEBHOOK_SECRET"


def seed(store: Store, config: SandboxConfig) -> None:
    """Create the demo organisation, event, ticket (with questions) and optional registrations."""
    org = store.create_organization(config.organization_name, config.organization_id)
    event = store.create_event(
        org["id"], {"name": config.event_name, "slug": config.event_slug}, config.event_id
    )
    ticket_attrs = {"name": config.ticket_name, "code": config.ticket_code}
    ticket = store.create_ticket(event["id"], ticket_attrs, config.ticket_id)
    if config.seed_questions:
        store.create_question(
            ticket["id"],
            {
                "title": "Company size",
                "questionType": "select",
                "required": False,
                "options": ["1-10", "11-100", "100+"],
            },
        )
        store.create_question(
            ticket["id"], {"title": "Dietary requirements", "questionType": "text"}
        )
    for number in range(config.seed_registrations):
        store.create_registration(
            event["id"],
            {
                "ticketId": ticket["id"],
                "email": f"attendee{number}@example.com",
                "firstName": "Attendee",
                "lastName": f"No{number}",
            },
        )


class HopinSandbox:
    """A running sandbox (the ``SandboxHandle`` of ``start_sandbox``)."""

    system = "hopin"

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.store = Store(state_file=config.state_file)
        self.faults = Faults(config.fault_seed)
        self.deliverer = Deliverer(
            self.store,
            config.webhook_secret,
            header=config.signature_header,
            algorithm=config.signature_algorithm,
            backoff=config.delivery_backoff,
            backoff_max=config.delivery_backoff_max,
            concurrency=config.delivery_concurrency,
        )
        admin = create_admin(self.store, self.faults, self.deliverer, self.info)
        self.latency = from_config(config)
        self.app = create_app(config, self.store, self.faults, admin, self.latency)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.server = make_server("127.0.0.1", config.port, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.store.base_url = self.url
        if self.store.is_empty() and config.seed:
            seed(self.store, config)
        self._ensure_api_key()
        if config.delivery_target:
            self.subscribe(config.delivery_target, list(config.delivery_signals or SIGNALS))
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="hopin-sandbox", daemon=True
        )

    def _ensure_api_key(self) -> None:
        org_ids = [o["id"] for o in self.store.find("organizations")]
        keys = self.store.find("apiKeys", lambda k: k["attributes"]["key"] == self.config.api_key)
        if keys:
            self.store.update("apiKeys", keys[0]["id"], {"organizationIds": org_ids})
        else:
            self.store.put_raw("apiKeys", {"key": self.config.api_key, "organizationIds": org_ids})

    def start(self) -> HopinSandbox:
        """Serve in a background thread and start deliveries."""
        self.deliverer.start()
        self.thread.start()
        return self

    def subscribe(self, url: str, signals: list[str], ttl: float = 30 * 86400) -> dict[str, Any]:
        """Subscribe ``url`` to the demo event's signals (what ``delivery_target`` does at start)."""
        expires = iso(now() + dt.timedelta(seconds=ttl))
        return upsert_subscription(
            self.store, self.ids()["event_id"], {"url": url, "expiresAt": expires}, signals
        )

    def ids(self) -> dict[str, str]:
        """The first organisation, its first event and that event's first ticket."""
        org = self.store.find("organizations")[0]
        event = self.store.find("events", lambda e: e["attributes"]["organizationId"] == org["id"])[
            0
        ]
        ticket = self.store.find("tickets", lambda t: t["attributes"]["eventId"] == event["id"])[0]
        code = ticket["attributes"]["registrationUrl"].rsplit("=", 1)[-1]
        return {
            "organization_id": org["id"],
            "event_id": event["id"],
            "ticket_id": ticket["id"],
            "ticket_integration_code": code,
            "ticket_registration_url": ticket["attributes"]["registrationUrl"],
        }

    def settings(self, org: str) -> SystemSettings:
        """Working settings for ``org`` with their own ``env`` holding the sandbox secrets."""
        ids = self.ids()
        options = {
            "base_url": self.url,
            "platform_url": self.url,
            "organization_id": ids["organization_id"],
            "event_id": ids["event_id"],
            "api_key_env": API_KEY_ENV,
            "webhook_secret_env": WEBHOOK_SECRET_ENV,
            "webhook_signature_header": self.config.signature_header,
            "webhook_signature_algorithm": self.config.signature_algorithm,
        }
        if self.config.auth_header == "raw":
            options["auth_header"] = "raw"
        env = {API_KEY_ENV: self.config.api_key, WEBHOOK_SECRET_ENV: self.config.webhook_secret}
        return SystemSettings(system="hopin", org=org, options=options, env=env)

    def info(self) -> dict[str, Any]:
        """URLs, credentials and seeded ids, JSON-ready."""
        return {
            "system": "hopin",
            "url": self.url,
            "api_url": f"{self.url}/v1",
            "admin_url": f"{self.url}/_admin",
            "platform_url": self.url,
            "api_key": self.config.api_key,
            "webhook_secret": self.config.webhook_secret,
            "signature_header": self.config.signature_header,
            "signature_algorithm": self.config.signature_algorithm,
            "auth_header": self.config.auth_header,
            "latency": self.latency.profile.name if self.latency else "none",
            "oauth_client_id": self.config.oauth_client_id,
            "oauth_client_secret": self.config.oauth_client_secret,
            **self.ids(),
        }

    def stop(self) -> None:
        """Stop serving, stop deliveries, release the port."""
        self.server.shutdown()
        self.server.server_close()
        self.deliverer.stop()
        if self.thread.is_alive():
            self.thread.join(timeout=5)


def start(options: Mapping[str, Any] | None = None) -> HopinSandbox:
    """Start a sandbox with ``options`` (see ``SandboxConfig``) and return its handle."""
    return HopinSandbox(load_config(options or {})).start()
