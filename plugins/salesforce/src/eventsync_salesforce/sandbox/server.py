"""Starting the sandbox: a TLS certificate from a local trustme CA, a threaded werkzeug
server on 127.0.0.1, and the :class:`SandboxHandle` the ``start_sandbox`` hook returns."""

from __future__ import annotations

import secrets
import shutil
import ssl
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import trustme
from eventsync.models import SystemSettings
from eventsync.sandbox_env import write_private
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .app import create_app
from .org import CONSOLE_CLIENT_ID, INTEGRATION_USERNAME, Org

GRANTS = ("jwt", "password", "client_credentials", "refresh_token", "access_token")


class SalesforceSandbox:
    """A running emulated org (implements eventsync's ``SandboxHandle``)."""

    system = "salesforce"

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.options = dict(options)
        self.options.setdefault("_admin_token", secrets.token_urlsafe(24))
        self._dir = Path(tempfile.mkdtemp(prefix="eventsync-sf-sandbox-"))
        self._ca = trustme.CA()
        server_cert = self._ca.issue_cert("127.0.0.1", "localhost")
        self.ca_bundle = str(self._dir / "ca.pem")
        self._ca.cert_pem.write_to_path(self.ca_bundle)
        certificate_file = self.options.get("jwt_certificate_file")
        if certificate_file:
            jwt_certificate = Path(str(certificate_file)).read_bytes()
            self.private_key_file = str(self.options.get("jwt_private_key_file", ""))
        else:
            signer = self._ca.issue_cert("eventsync-jwt", key_type=trustme.KeyType.RSA)
            self.private_key_file = str(self._dir / "jwt-key.pem")
            # The connected app's private key: readable by its owner only, like any credential.
            write_private(self.private_key_file, signer.private_key_pem.bytes().decode())
            jwt_certificate = signer.cert_chain_pems[0].bytes()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_cert.configure_cert(context)
        self._server: BaseWSGIServer = make_server(
            "127.0.0.1",
            int(self.options.get("port", 0)),
            _placeholder,
            threaded=True,
            ssl_context=context,
            request_handler=_QuietHandler,
        )
        self.port = self._server.server_port
        self.url = f"https://127.0.0.1:{self.port}"
        try:
            self.org = Org(self.options, self.url, jwt_certificate)
        except BaseException:
            self._server.server_close()
            shutil.rmtree(self._dir, ignore_errors=True)
            raise
        self._server.app = create_app(self.org)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="salesforce-sandbox", daemon=True
        )
        self._thread.start()
        self.org.outbound.start()
        self._stopped = False

    @property
    def admin_token(self) -> str:
        """The token the admin API wants in ``X-Admin-Token``."""
        return str(self.options["_admin_token"])

    def settings(self, org: str, grant: str | None = None, **extra: Any) -> SystemSettings:
        """Working settings for ``org`` with the chosen grant (default: option ``grant`` or jwt).

        The returned settings carry their own ``env`` with the secrets; ``extra`` adds or
        overrides options.
        """
        grant = grant or str(self.options.get("grant", "jwt"))
        if grant not in GRANTS:
            raise ValueError(f"unknown grant {grant!r}; use one of {', '.join(GRANTS)}")
        app = self.org.app
        options: dict[str, Any] = {
            "login_url": self.url,
            "api_version": self.org.version,
            "grant": grant,
            "client_id": app.client_id,
            "org_id": self.org.org_id,
            "ca_bundle": self.ca_bundle,
            "retry_backoff": float(self.options.get("retry_backoff", 0.05)),
        }
        env: dict[str, str] = {}
        token = self.options.get("outbound_token")
        if token:
            # The secret the Outbound Message rules' endpoint URLs end with.
            options["outbound_token_env"] = "SF_OUTBOUND_TOKEN"
            env["SF_OUTBOUND_TOKEN"] = str(token)
        if grant in ("jwt", "password"):
            options["username"] = INTEGRATION_USERNAME
        if grant == "jwt":
            options["private_key_file"] = self.private_key_file
        if grant in ("password", "client_credentials", "refresh_token"):
            options["client_secret_env"] = "SF_CLIENT_SECRET"
            env["SF_CLIENT_SECRET"] = app.client_secret
        if grant == "password":
            options["password_env"] = "SF_PASSWORD"
            login = self.org.logins[INTEGRATION_USERNAME]
            env["SF_PASSWORD"] = login.password or ""
            if login.security_token:
                options["security_token_env"] = "SF_SECURITY_TOKEN"
                env["SF_SECURITY_TOKEN"] = login.security_token
        if grant == "refresh_token":
            options["refresh_token_env"] = "SF_REFRESH_TOKEN"
            env["SF_REFRESH_TOKEN"] = self.org.refresh_token
        if grant == "access_token":
            options["instance_url"] = self.url
            options["access_token_env"] = "SF_ACCESS_TOKEN"
            env["SF_ACCESS_TOKEN"] = self.org.sessions.issue(self.org.user_id(INTEGRATION_USERNAME))
        options.update(extra)
        return SystemSettings(system="salesforce", org=org, options=options, env=env)

    def info(self) -> dict[str, Any]:
        """JSON-ready description: URLs, credentials, seeded ids, admin API."""
        login = self.org.logins[INTEGRATION_USERNAME]
        return {
            "system": "salesforce",
            "url": self.url,
            "login_url": self.url,
            "token_url": f"{self.url}/services/oauth2/token",
            "api_version": self.org.version,
            "rest_base": f"{self.url}/services/data/v{self.org.version}/",
            "admin_url": f"{self.url}/_admin",
            "admin_token": self.admin_token,
            "ca_bundle": self.ca_bundle,
            "org_id": self.org.org_id,
            "client_id": self.org.app.client_id,
            "client_secret": self.org.app.client_secret,
            "private_key_file": self.private_key_file,
            "username": INTEGRATION_USERNAME,
            "password": login.password,
            "security_token": login.security_token,
            "refresh_token": self.org.refresh_token,
            "oauth": self.oauth_info(),
            "users": {name: user_id for name, user_id in self.org.usernames.items()},
            "outbound_rules": [rule.name for rule in self.org.outbound.rules],
            "state_file": self.options.get("state_file"),
            "latency": self.org.latency.profile.name if self.org.latency else "none",
        }

    def oauth_info(self) -> dict[str, Any]:
        """The web server flow's endpoints, the console's External Client App and the user
        to sign in as (the setup console and its browser tests use these)."""
        console = self.org.webflow.app(
            str(self.options.get("console_client_id") or CONSOLE_CLIENT_ID)
        )
        login = self.org.logins[INTEGRATION_USERNAME]
        return {
            "authorize_url": f"{self.url}/services/oauth2/authorize",
            "token_url": f"{self.url}/services/oauth2/token",
            "console_app": console.as_dict() if console else None,
            "username": INTEGRATION_USERNAME,
            "password": login.password,
            "apps": [app.client_id for app in self.org.webflow.apps()],
        }

    def stop(self) -> None:
        """Stop serving, persist to ``state_file`` if set, release the port and temp files."""
        if self._stopped:
            return
        self._stopped = True
        self.org.outbound.stop()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        if self.options.get("state_file"):
            self.org.store.save(self.options["state_file"])
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> SalesforceSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _QuietHandler(WSGIRequestHandler):
    """Request handler without per-request access logging (tests push thousands)."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        """Do not log each request."""


def _placeholder(environ: Any, start_response: Any) -> list[bytes]:  # pragma: no cover
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"starting"]


def start(options: Mapping[str, Any] | None = None) -> SalesforceSandbox:
    """Start a sandbox with ``options`` (see the README for the list)."""
    return SalesforceSandbox(options or {})
