"""Authentication: an organisation API key (``Bearer <key>`` as production clients send it, or
the key alone as the current API reference shows: setting ``auth_header``), or OAuth
authorization-code tokens refreshed on the platform host (Hopin's OAuth sample), and the checks
that tell a wrong URL from a wrong key from a wrong header form from a wrong organisation."""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlencode

import attrs
import requests
from eventsync.errors import AuthenticationError, EventsyncError, RetryableError
from eventsync.models import SystemSettings

from .convert import parse_list
from .http import AUTH_FORMS, SYSTEM, HopinHttp, error_text
from .options import HopinOptions, load_options


def authorize_url(options: HopinOptions, redirect_uri: str, state: str) -> str:
    """Where to send the admin to grant access: ``{platform_url}/oauth/authorize`` with
    ``scope=api``, ``response_type=code`` and the ``resource`` indicator (Hopin's OAuth sample)."""
    query = urlencode(
        {
            "client_id": options.oauth_client_id,
            "redirect_uri": redirect_uri,
            "scope": "api",
            "state": state,
            "response_type": "code",
            "resource": options.oauth_resource,
        }
    )
    return f"{options.platform_url.rstrip('/')}/oauth/authorize?{query}"


def exchange_code(settings: SystemSettings, code: str, redirect_uri: str) -> dict[str, Any]:
    """Trade an authorization code for tokens (parameters in the query string, empty body, as
    Hopin's sample does). Returns the token JSON (``access_token``, ``refresh_token`` ...); store
    them in the variables named by ``access_token_env`` / ``refresh_token_env``."""
    options = load_options(settings)
    params = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": options.oauth_client_id,
        "client_secret": settings.secret("client_secret"),
        "resource": options.oauth_resource,
    }
    url = f"{options.platform_url.rstrip('/')}/oauth/token"
    response = requests.post(
        url, params=params, headers={"Accept": "application/json"}, timeout=options.timeout
    )
    if response.status_code != 200:
        raise AuthenticationError(
            SYSTEM,
            f"code exchange refused (HTTP {response.status_code})",
            error_text(response),
            hint="start the authorization again",
        )
    return dict(response.json())


class OAuthTokens:
    """An OAuth access token, refreshed with the refresh token at ``{platform_url}/oauth/token``."""

    def __init__(self, settings: SystemSettings, options: HopinOptions) -> None:
        self.settings = settings
        self.options = options
        self.lock = threading.Lock()
        self.access = settings.secret("access_token") if settings.has_secret("access_token") else ""
        self.refresh_token = (
            settings.secret("refresh_token") if settings.has_secret("refresh_token") else ""
        )

    def token(self) -> str:
        """The current access token (refreshed first when none was configured)."""
        if not self.access:
            self.refresh()
        return self.access

    def refresh(self) -> bool:
        """Trade the refresh token for a new pair; False when no refresh token is configured."""
        if not self.refresh_token:
            return False
        with self.lock:
            params = {
                "grant_type": "refresh_token",
                "refresh_token": self.refresh_token,
                "client_id": self.options.oauth_client_id,
                "client_secret": self.settings.secret("client_secret"),
            }
            if self.options.oauth_resource:
                params["resource"] = self.options.oauth_resource
            url = f"{self.options.platform_url.rstrip('/')}/oauth/token"
            try:
                response = requests.post(
                    url,
                    params=params,
                    headers={"Accept": "application/json"},
                    timeout=self.options.timeout,
                )
            except requests.RequestException as exc:
                raise RetryableError(
                    "CONNECTION", f"POST {url}: {type(exc).__name__}", system=SYSTEM
                ) from exc
            if response.status_code != 200:
                raise AuthenticationError(
                    SYSTEM,
                    f"token refresh refused (HTTP {response.status_code})",
                    error_text(response),
                    hint="re-authorise the app to get a new refresh token",
                )
            body = response.json()
            self.access = body["access_token"]
            self.refresh_token = body.get("refresh_token") or self.refresh_token
            return True


@attrs.define
class HopinConnection:
    """An authenticated connection to Hopin for one eventsync organisation."""

    org: str
    settings: SystemSettings = attrs.field(repr=False)
    options: HopinOptions
    http: HopinHttp = attrs.field(repr=False)
    organization_id: str = ""
    event_id: str = ""
    organization_name: str = ""
    subscription: dict[str, Any] = attrs.field(factory=dict)
    subscription_error: str = ""
    ticket_codes: dict[str, str] = attrs.field(factory=dict)
    system: str = "hopin"


def connect(settings: SystemSettings) -> HopinConnection:
    """Build the connection and verify it; AuthenticationError says what is wrong."""
    options = load_options(settings)
    if options.auth == "oauth":
        tokens = OAuthTokens(settings, options)
        http = HopinHttp(options, tokens.token, tokens.refresh)
    else:
        key = settings.secret("api_key")
        http = HopinHttp(options, lambda: key)
    connection = HopinConnection(settings.org, settings, options, http)
    try:
        verify(connection)
    except BaseException:
        http.close()
        raise
    return connection


def refused(
    connection: HopinConnection, path: str, response: requests.Response
) -> AuthenticationError:
    """The error for credentials refused on ``path``, after trying the other header form.

    The API reference shows ``Authorization: <key>`` while existing clients send ``Bearer``, so
    a refusal may mean the wrong form rather than the wrong key: when the other form is
    accepted the error names it and the setting to change. The configured form stays the only
    one used for syncing, so what runs is what the file says.
    """
    configured = connection.options.auth_header
    other = "raw" if configured == "bearer" else "bearer"
    retry = connection.http.request("GET", path, check=False, auth_form=other)
    if retry.status_code == 200:
        return AuthenticationError(
            SYSTEM,
            "wrong Authorization header form",
            f'the server refused {AUTH_FORMS[configured]!r} (auth_header = "{configured}") '
            f"and accepted {AUTH_FORMS[other]!r}",
            hint=f'set auth_header = "{other}" in [orgs.{connection.org}.systems.hopin]',
        )
    return AuthenticationError(
        SYSTEM,
        "credentials rejected",
        error_text(response),
        hint="check the API key / OAuth token for this organisation; both header forms were refused",
    )


def verify(connection: HopinConnection) -> None:
    """``GET /v1/health`` (is this the Hopin API?), ``GET /v1/organizations`` (is the key good,
    does it reach the organisation?), then the configured event."""
    http, options = connection.http, connection.options
    try:
        health = http.request("GET", "/v1/health", check=False)
    except RetryableError as exc:
        raise AuthenticationError(
            SYSTEM, "API unreachable", exc.message, hint=f"check base_url ({options.base_url})"
        ) from exc
    if health.status_code == 401:
        raise refused(connection, "/v1/health", health)
    if health.status_code != 200:
        raise AuthenticationError(
            SYSTEM,
            f"GET /v1/health answered HTTP {health.status_code}",
            error_text(health),
            hint=f"check base_url ({options.base_url}): it should be the API host, "
            "e.g. https://api.events.ringcentral.com or https://api.hopin.com",
        )
    orgs = http.request("GET", "/v1/organizations", check=False)
    if orgs.status_code in (401, 403):
        raise refused(connection, "/v1/organizations", orgs)
    if orgs.status_code != 200:
        raise AuthenticationError(
            SYSTEM,
            f"GET /v1/organizations answered HTTP {orgs.status_code}",
            error_text(orgs),
            hint=f"check base_url ({options.base_url})",
        )
    page = parse_list(orgs.json())
    reachable = {item.id: str(item.attributes.get("name", "")) for item in page.data}
    wanted = options.organization_id
    if not wanted:
        if len(reachable) != 1:
            raise AuthenticationError(
                SYSTEM,
                "organization_id not set",
                f"the key reaches {len(reachable)} organisations: {', '.join(reachable)}",
                hint="set organization_id",
            )
        wanted = next(iter(reachable))
    elif wanted not in reachable:
        raise AuthenticationError(
            SYSTEM,
            f"organisation {wanted} not reachable with these credentials",
            f"reachable: {', '.join(reachable) or 'none'}",
            hint="check organization_id, or use a key of that organisation",
        )
    connection.organization_id = wanted
    connection.organization_name = reachable[wanted]
    if options.event_id:
        try:
            http.get_json(f"/v1/events/{options.event_id}")
        except AuthenticationError:
            raise
        except EventsyncError as exc:
            raise AuthenticationError(
                SYSTEM, f"event {options.event_id} not reachable", str(exc), hint="check event_id"
            ) from exc
        connection.event_id = options.event_id
