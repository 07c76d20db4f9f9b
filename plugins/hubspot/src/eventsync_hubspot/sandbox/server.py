"""Start and stop the sandbox: a threaded WSGI server on 127.0.0.1 and the handle tests use.

Options (all optional): ``port``; ``portal_id`` (default 4711000); ``access_token`` (the private
app's, default made up, ``pat-...``); ``client_id``, ``client_secret`` (the app's: OAuth and
webhook signatures), ``app_id``; ``properties`` (more properties per object, e.g.
``{"contacts": [{"name": "hopin_ticket_code", "type": "string"}]}``); ``custom_objects``
(``[{"name", "objectTypeId", "label", "properties"}]``); ``webhook_url`` (the app's target URL);
``rate_limit`` and ``rate_interval_ms`` (the rolling window, default 190 calls per 10,000 ms),
``daily_limit`` (default 1,000,000); ``search_cap`` (default 10,000); ``token_ttl`` (OAuth
access tokens, seconds, default 1800) and ``rotate_refresh_tokens`` (default true);
``shuffle_answers`` (default true); ``seed`` (fault and order draws); ``faults`` (a list of
faults to start with); ``latency`` (a profile name such as ``"realistic"``, ``"none"``, or its
mapping form, see ``eventsync.latency``) and ``latency_seed``.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Mapping
from typing import Any

from eventsync.models import SystemSettings
from werkzeug.serving import WSGIRequestHandler, make_server

from ..settings import MAX_BATCH, SYSTEM
from .app import SandboxApp
from .deliveries import Deliverer
from .faults import Faults, RateLimiter
from .latency import from_options as latency_from_options
from .store import Store
from .tokens import Tokens

ACCESS_TOKEN_ENV = "EVENTSYNC_HUBSPOT_SANDBOX_TOKEN"
CLIENT_SECRET_ENV = "EVENTSYNC_HUBSPOT_SANDBOX_CLIENT_SECRET"
OPTIONS = frozenset(
    {
        "port",
        "portal_id",
        "access_token",
        "client_id",
        "client_secret",
        "app_id",
        "properties",
        "custom_objects",
        "webhook_url",
        "rate_limit",
        "rate_interval_ms",
        "daily_limit",
        "search_cap",
        "token_ttl",
        "rotate_refresh_tokens",
        "shuffle_answers",
        "seed",
        "faults",
        "latency",
        "latency_seed",
    }
)


class _KeepAlive(WSGIRequestHandler):
    protocol_version = "HTTP/1.1"  # one connection per client session, as the real API

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        """Quiet: tests make thousands of calls."""


class HubSpotSandbox:
    """A running HubSpot sandbox (this plugin's ``SandboxHandle``)."""

    system = SYSTEM

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        options = dict(options or {})
        unknown = sorted(set(options) - OPTIONS)
        if unknown:
            raise ValueError(
                f"unknown hubspot sandbox options {unknown} (known: {sorted(OPTIONS)})"
            )
        self.portal_id = str(options.get("portal_id", "4711000"))
        self.access_token = str(options.get("access_token") or f"pat-na1-{secrets.token_hex(16)}")
        self.client_id = str(options.get("client_id") or secrets.token_hex(8))
        self.client_secret = str(options.get("client_secret") or secrets.token_urlsafe(24))
        self.app_id = str(options.get("app_id", "990011"))
        seed = options.get("seed")
        self.store = Store(
            options.get("properties"),
            options.get("custom_objects") or (),
            int(options.get("search_cap", 10_000)),
        )
        self.faults = Faults(seed)
        for fault in options.get("faults") or ():
            self.faults.add(fault)
        self.limiter = RateLimiter(
            int(options.get("rate_limit", 190)),
            int(options.get("rate_interval_ms", 10_000)),
            int(options.get("daily_limit", 1_000_000)),
        )
        self.tokens = Tokens(
            self.client_id,
            self.client_secret,
            float(options.get("token_ttl", 1800)),
            bool(options.get("rotate_refresh_tokens", True)),
        )
        self.deliverer = Deliverer(self.portal_id, self.app_id, self.client_secret, seed)
        self.deliverer.url = options.get("webhook_url")
        self.store.listeners.append(self.deliverer.changes)
        account: dict[str, Any] = {
            "portalId": int(self.portal_id) if self.portal_id.isdigit() else self.portal_id,
            "accountType": "SANDBOX",
            "timeZone": "Europe/London",
            "companyCurrency": "EUR",
            "additionalCurrencies": [],
            "utcOffset": "+00:00",
            "utcOffsetMilliseconds": 0,
            "uiDomain": "app-eu1.hubspot.com",
            "dataHostingLocation": "eu1",
        }
        self.latency = latency_from_options(options)
        self.app = SandboxApp(
            store=self.store,
            faults=self.faults,
            limiter=self.limiter,
            tokens=self.tokens,
            deliverer=self.deliverer,
            access_token=self.access_token,
            account=account,
            seed=seed,
            shuffle=bool(options.get("shuffle_answers", True)),
            latency=self.latency,
        )
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = make_server(
            "127.0.0.1",
            int(options.get("port", 0)),
            self.app,
            threaded=True,
            request_handler=_KeepAlive,
        )
        self._server.daemon_threads = True  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self.admin_url = f"{self.url}/_admin"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="hubspot-sandbox",
            daemon=True,
        )
        self._thread.start()

    def settings(self, org: str) -> SystemSettings:
        """Working private-app settings; the secrets live in the settings' own ``env``."""
        return SystemSettings(
            SYSTEM,
            org,
            {
                "portal_id": self.portal_id,
                "auth": "private_app",
                "access_token_env": ACCESS_TOKEN_ENV,
                "client_secret_env": CLIENT_SECRET_ENV,
                "url": self.url,
            },
            env={ACCESS_TOKEN_ENV: self.access_token, CLIENT_SECRET_ENV: self.client_secret},
        )

    def info(self) -> dict[str, Any]:
        """What a user (or a test) needs to reach it."""
        return {
            "system": SYSTEM,
            "url": self.url,
            "admin_url": self.admin_url,
            "portal_id": self.portal_id,
            "access_token": self.access_token,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "app_id": self.app_id,
            "webhook_url": self.deliverer.url,
            "max_batch": MAX_BATCH,
            "latency": self.latency.profile.name if self.latency else "none",
        }

    def stop(self) -> None:
        """Stop serving and delivering; release the port."""
        self.deliverer.stop()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
