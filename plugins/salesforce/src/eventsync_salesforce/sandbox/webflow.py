"""The OAuth 2.0 web server flow with PKCE: External Client Apps, the authorize step, codes.

``GET /services/oauth2/authorize`` checks the client and its callback URL first: an unknown
``client_id`` or an unregistered ``redirect_uri`` gets an error page and never a redirect, as
in Salesforce, because the callback cannot be trusted. Any other problem goes back to the
callback as ``error`` and ``error_description``. The user then signs in on a login page and
approves the scopes on a consent page (Allow or Deny). Allow sends ``code`` and ``state`` to
the callback; Deny sends ``error=access_denied``. The sandbox keeps no browser session, so
every authorize request shows the login page and the consent page, as ``prompt=login
consent`` would in Salesforce.

Each pending request has its own random id and CSRF token, kept on the server. Both travel
in hidden form fields. A form post that does not carry the pending request's current token
is refused.

Codes are single-use. They expire after ``code_ttl`` seconds (Salesforce: 15 minutes), and
:meth:`WebFlow.expire_codes` makes them expire at once, so a test needs no sleep. PKCE is
checked with oauthlib's S256 function, the same code its own authorization servers use.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Mapping
from typing import Any

import attrs
from oauthlib.oauth2.rfc6749.grant_types.authorization_code import code_challenge_method_s256

from .oauth import Login, OAuthError

#: The scopes an app offers unless told otherwise, with the words the consent page uses.
SCOPE_LABELS = {
    "api": "Manage user data via APIs (api)",
    "refresh_token": "Perform requests at any time (refresh_token, offline_access)",
    "offline_access": "Perform requests at any time (refresh_token, offline_access)",
    "id": "Access the identity URL service (id, profile, email, address, phone)",
    "web": "Manage user data via Web browsers (web)",
    "full": "Full access (full)",
    "openid": "Access unique user identifiers (openid)",
}
DEFAULT_SCOPES = ("api", "refresh_token", "offline_access", "id", "web")
DEFAULT_CODE_TTL = 900.0
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


@attrs.frozen
class ExternalClientApp:
    """An External Client App with OAuth enabled, as the web server flow needs it.

    :ivar name: its label (shown on the consent page).
    :ivar client_id: the consumer key.
    :ivar client_secret: the consumer secret.
    :ivar callback_urls: the registered callback URLs; a redirect_uri must be one of them.
    :ivar require_secret: the token requests (code and refresh) must carry the secret
        ("Require Secret for Web Server Flow").
    :ivar require_pkce: the authorize request must carry a S256 ``code_challenge``.
    :ivar rotate_refresh_tokens: each refresh answer carries a new refresh token, and the
        old one stops working ("Enable Refresh Token Rotation").
    :ivar loopback_any_port: a callback on 127.0.0.1 or localhost matches whatever its port
        (RFC 8252 §7.3). Only the demo app turns this on, because the console's port is not
        known in advance. Salesforce itself compares the whole URL.
    :ivar scopes: the scopes the app may be given.
    """

    name: str
    client_id: str
    client_secret: str
    callback_urls: tuple[str, ...]
    require_secret: bool = True
    require_pkce: bool = True
    rotate_refresh_tokens: bool = False
    loopback_any_port: bool = False
    scopes: tuple[str, ...] = DEFAULT_SCOPES

    def accepts_callback(self, redirect_uri: str) -> bool:
        """True when ``redirect_uri`` is one of the registered callback URLs."""
        if redirect_uri in self.callback_urls:
            return True
        if not self.loopback_any_port:
            return False
        return _without_loopback_port(redirect_uri) in {
            _without_loopback_port(url) for url in self.callback_urls
        }

    def check_secret(self, given: str | None) -> None:
        """Refuse a missing secret when the app requires one, and always a wrong one."""
        if given is None and not self.require_secret:
            return
        if not hmac.compare_digest(given or "", self.client_secret):
            raise OAuthError("invalid_client", "invalid client credentials")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready description (admin API, ``info()``)."""
        data = attrs.asdict(self)
        data["callback_urls"] = list(self.callback_urls)
        data["scopes"] = list(self.scopes)
        return data


def _without_loopback_port(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    hostport, slash, path = rest.partition("/")
    host = hostport.rsplit(":", 1)[0] if not hostport.endswith("]") else hostport
    if host not in LOOPBACK_HOSTS:
        return url
    return f"{scheme}{sep}{host}{slash}{path}"


@attrs.frozen
class AuthorizeRequest:
    """The parameters of an accepted authorize request."""

    app: ExternalClientApp
    redirect_uri: str
    scopes: tuple[str, ...]
    state: str | None
    code_challenge: str | None


@attrs.define
class Pending:
    """An authorize request waiting for its login and consent."""

    request: AuthorizeRequest
    csrf: str
    expires_at: float
    user: Login | None = None


@attrs.frozen
class Grant:
    """What an authorization code stands for."""

    request: AuthorizeRequest
    user: Login
    expires_at: float


class AuthorizeError(Exception):
    """A refusal sent back to the callback as ``error`` and ``error_description``."""

    def __init__(self, error: str, description: str) -> None:
        self.error = error
        self.description = description
        super().__init__(f"{error}: {description}")


class PageError(Exception):
    """A refusal shown as an error page, because the callback cannot be trusted."""

    def __init__(self, error: str, description: str) -> None:
        self.error = error
        self.description = description
        super().__init__(f"{error}: {description}")


class WebFlow:
    """The apps, pending authorize requests and authorization codes; thread-safe."""

    def __init__(self, logins: Mapping[str, Login], code_ttl: float = DEFAULT_CODE_TTL) -> None:
        self.logins = logins
        self.code_ttl = code_ttl
        self._apps: dict[str, ExternalClientApp] = {}
        self._pending: dict[str, Pending] = {}
        self._codes: dict[str, Grant] = {}
        self._lock = threading.Lock()

    # --- apps ---------------------------------------------------------------------------

    def register(self, app: ExternalClientApp) -> ExternalClientApp:
        """Add (or replace) an app, keyed by its consumer key."""
        with self._lock:
            self._apps[app.client_id] = app
        return app

    def app(self, client_id: str | None) -> ExternalClientApp | None:
        """The app with consumer key ``client_id``, or None."""
        with self._lock:
            return self._apps.get(client_id or "")

    def apps(self) -> list[ExternalClientApp]:
        """Every registered app."""
        with self._lock:
            return list(self._apps.values())

    # --- authorize ----------------------------------------------------------------------

    def check_client(self, args: Mapping[str, str]) -> AuthorizeRequest:
        """Check the client and callback of an authorize request (raising PageError), then
        the rest of it (raising AuthorizeError, whose answer goes to the callback)."""
        app = self.app(args.get("client_id"))
        if app is None:
            raise PageError("invalid_client_id", "client identifier invalid")
        redirect_uri = args.get("redirect_uri", "")
        if not app.accepts_callback(redirect_uri):
            raise PageError("redirect_uri_mismatch", "redirect_uri must match configuration")
        state = args.get("state")
        request = AuthorizeRequest(app, redirect_uri, (), state, None)
        if args.get("response_type") != "code":
            raise AuthorizeError("unsupported_response_type", "response type not supported")
        scopes = tuple(dict.fromkeys((args.get("scope") or "api").split()))
        unknown = [scope for scope in scopes if scope not in app.scopes]
        if unknown:
            raise AuthorizeError("invalid_scope", "the requested scope is not allowed")
        challenge = args.get("code_challenge")
        method = args.get("code_challenge_method", "S256")
        if challenge and method != "S256":
            raise AuthorizeError("invalid_request", "invalid code challenge method")
        if app.require_pkce and not challenge:
            raise AuthorizeError("invalid_request", "missing required code challenge")
        return attrs.evolve(request, scopes=scopes, code_challenge=challenge or None)

    def begin(self, request: AuthorizeRequest) -> tuple[str, Pending]:
        """Keep an accepted request until its login and consent; returns its id."""
        request_id = secrets.token_urlsafe(18)
        pending = Pending(request, secrets.token_urlsafe(24), time.monotonic() + self.code_ttl)
        with self._lock:
            self._drop_stale()
            self._pending[request_id] = pending
        return request_id, pending

    def pending(self, request_id: str, csrf: str) -> Pending:
        """The pending request a form post names, if its CSRF token is the current one."""
        with self._lock:
            pending = self._pending.get(request_id)
        if pending is None or pending.expires_at < time.monotonic():
            raise PageError("invalid_request", "the sign-in request expired; start again")
        if not hmac.compare_digest(csrf, pending.csrf):
            raise PageError("invalid_request", "the form was not sent by this login page")
        return pending

    def login(self, pending: Pending, username: str, password: str) -> bool:
        """Authenticate the user of a pending request; a new CSRF token on success."""
        login = self.logins.get(username.strip().lower())
        if (
            login is None
            or login.password is None
            or not hmac.compare_digest(password, login.password)
        ):
            return False
        pending.user = login
        pending.csrf = secrets.token_urlsafe(24)
        return True

    def decide(self, request_id: str, pending: Pending, allow: bool) -> str | None:
        """End a pending request: on Allow, a new authorization code; on Deny, None."""
        with self._lock:
            self._pending.pop(request_id, None)
        if not allow or pending.user is None:
            return None
        code = "aPrx" + secrets.token_urlsafe(48)
        grant = Grant(pending.request, pending.user, time.monotonic() + self.code_ttl)
        with self._lock:
            self._codes[code] = grant
        return code

    def expire_codes(self) -> int:
        """Make every outstanding code expired (tests); returns how many there were."""
        with self._lock:
            for code, grant in self._codes.items():
                self._codes[code] = attrs.evolve(grant, expires_at=0.0)
            return len(self._codes)

    def _drop_stale(self) -> None:
        now = time.monotonic()
        for request_id in [k for k, v in self._pending.items() if v.expires_at < now]:
            del self._pending[request_id]

    # --- token endpoint -----------------------------------------------------------------

    def redeem(self, form: Mapping[str, str]) -> Grant:
        """Check an ``authorization_code`` token request and use its code up (OAuthError)."""
        app = self.app(form.get("client_id"))
        if app is None:
            raise OAuthError("invalid_client_id", "client identifier invalid")
        app.check_secret(form.get("client_secret"))
        with self._lock:
            # Any exchange attempt uses the code up: a code is good for one try only.
            grant = self._codes.pop(form.get("code", ""), None)
        if grant is None or grant.request.app.client_id != app.client_id:
            raise OAuthError("invalid_grant", "invalid authorization code")
        if grant.expires_at < time.monotonic():
            raise OAuthError("invalid_grant", "expired authorization code")
        if form.get("redirect_uri") != grant.request.redirect_uri:
            raise OAuthError("redirect_uri_mismatch", "redirect_uri must match configuration")
        challenge = grant.request.code_challenge
        if challenge is not None:
            verifier = form.get("code_verifier") or ""
            if not verifier or not code_challenge_method_s256(verifier, challenge):
                raise OAuthError("invalid_grant", "invalid code verifier")
        return grant


def app_from_mapping(data: Mapping[str, Any]) -> ExternalClientApp:
    """An app from a JSON object (option ``oauth_apps``, admin API); ValueError if malformed."""
    unknown = set(data) - set(attrs.fields_dict(ExternalClientApp))
    if unknown:
        raise ValueError(f"unknown External Client App keys: {', '.join(sorted(unknown))}")
    callbacks = data.get("callback_urls")
    if not isinstance(callbacks, (list, tuple)) or not callbacks:
        raise ValueError('give "callback_urls": a list of the callback URLs the app allows')
    scopes = data.get("scopes")
    return ExternalClientApp(
        name=str(data.get("name") or "External Client App"),
        client_id=str(data.get("client_id") or "3MVG9eca" + secrets.token_hex(12)),
        client_secret=str(data.get("client_secret") or secrets.token_hex(16)),
        callback_urls=tuple(str(url) for url in callbacks),
        require_secret=bool(data.get("require_secret", True)),
        require_pkce=bool(data.get("require_pkce", True)),
        rotate_refresh_tokens=bool(data.get("rotate_refresh_tokens", False)),
        loopback_any_port=bool(data.get("loopback_any_port", False)),
        scopes=tuple(str(scope) for scope in scopes) if scopes else DEFAULT_SCOPES,
    )
