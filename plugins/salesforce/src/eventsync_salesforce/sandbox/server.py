"""Starting the sandbox: a TLS certificate from a local trustme CA, a threaded cheroot server
on 127.0.0.1, and the :class:`SandboxHandle` the ``start_sandbox`` hook returns.

cheroot rather than werkzeug's development server: Salesforce keeps a client's HTTPS connection
open between calls, and werkzeug's server closes every connection after one response, so each
call paid a new TLS handshake (about half of what a batch's Salesforce calls cost the engine's
CPU in the real-time benchmark) that a client of the real API does not."""

from __future__ import annotations

import secrets
import shutil
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import trustme
from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter
from eventsync.models import SystemSettings
from eventsync.sandbox_env import write_private

from .app import create_app
from .org import CONSOLE_CLIENT_ID, INTEGRATION_USERNAME, Org

GRANTS = ("jwt", "password", "client_credentials", "refresh_token", "access_token")
#: Requests the sandbox serves at once. Each waits out its injected latency in its thread, so
#: this bounds the calls in flight: well above what an engine's workers send (Salesforce allows
#: 25 long-running ones an org).
SERVER_THREADS = 64


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
        cert_file, key_file = str(self._dir / "server.pem"), str(self._dir / "server-key.pem")
        server_cert.cert_chain_pems[0].write_to_path(cert_file)
        write_private(key_file, server_cert.private_key_pem.bytes().decode())
        self._app: Any = _placeholder
        self._server = wsgi.Server(
            ("127.0.0.1", int(self.options.get("port", 0))),
            self._serve,
            numthreads=SERVER_THREADS,
            server_name="salesforce-sandbox",
        )
        self._server.ssl_adapter = BuiltinSSLAdapter(cert_file, key_file)
        self._server.prepare()  # binds: the port is known from here on
        self.port = int(self._server.bind_addr[1])
        self.url = f"https://127.0.0.1:{self.port}"
        try:
            self.org = Org(self.options, self.url, jwt_certificate)
        except BaseException:
            self._server.stop()
            shutil.rmtree(self._dir, ignore_errors=True)
            raise
        self._app = create_app(self.org)
        self._thread = threading.Thread(
            target=self._server.serve, name="salesforce-sandbox", daemon=True
        )
        self._thread.start()
        self.org.outbound.start()
        self._stopped = False

    def _serve(self, environ: Any, start_response: Any) -> Any:
        """The WSGI entry: the org's app once it exists (a placeholder while it is made)."""
        return self._app(environ, start_response)

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
        self._server.stop()
        self._thread.join(timeout=5)
        if self.options.get("state_file"):
            self.org.store.save(self.options["state_file"])
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> SalesforceSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _placeholder(environ: Any, start_response: Any) -> list[bytes]:  # pragma: no cover
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"starting"]


def start(options: Mapping[str, Any] | None = None) -> SalesforceSandbox:
    """Start a sandbox with ``options`` (see the README for the list)."""
    return SalesforceSandbox(options or {})
