"""OAuth 2.0 against a configurable login URL.

Grants (option ``grant``):

* ``jwt`` (default; the recommended server-to-server flow): options ``client_id``,
  ``username``, ``private_key_file`` or secret ``private_key`` (PEM), optional ``audience``.
* ``client_credentials``: ``client_id``, secret ``client_secret`` (sent as HTTP Basic).
* ``password``: ``client_id``, ``username``, secrets ``client_secret``, ``password`` and
  optionally ``security_token`` (appended to the password).
* ``refresh_token``: ``client_id``, secret ``refresh_token``, optionally ``client_secret``.
* ``access_token``: a given session: secret ``access_token`` and option ``instance_url``
  (it cannot be renewed).

The token request is made with requests directly (not simple-salesforce's login helpers),
because those build the token URL from ``{domain}.salesforce.com`` and so cannot reach a My
Domain with a port, a custom login URL or the sandbox.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import attrs
import jwt
import requests
from eventsync.errors import AuthenticationError, ConfigurationError, RetryableError
from eventsync.models import SystemSettings
from eventsync.netreason import network_reason

SYSTEM = "salesforce"
GRANTS = ("jwt", "client_credentials", "password", "refresh_token", "access_token")
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
LOGIN_URL_HINT = (
    "it is the host only, e.g. https://login.salesforce.com or https://acme.my.salesforce.com, "
    "without a path"
)


@attrs.frozen
class Token:
    """A successful token answer: the access token and the instance to use it on."""

    access_token: str
    instance_url: str
    issued_by: str
    #: A new refresh token, when the app rotates them (the one used no longer works).
    refresh_token: str | None = attrs.field(default=None, repr=False)


def _path(settings: SystemSettings, name: str) -> str:
    return f"$.orgs.{settings.org}.systems.{settings.system}.{name}"


def _require(settings: SystemSettings, name: str) -> str:
    value = settings.get(name)
    if not value:
        raise ConfigurationError(
            [f"{_path(settings, name)}: missing (needed by grant {settings.get('grant', 'jwt')!r})"]
        )
    return str(value)


def login_url(settings: SystemSettings) -> str:
    """The login URL (default ``https://login.salesforce.com``), without a trailing slash."""
    return str(settings.get("login_url") or "https://login.salesforce.com").rstrip("/")


def audience(settings: SystemSettings) -> str:
    """The JWT ``aud``: option ``audience``, else login/test.salesforce.com, else the login URL."""
    if settings.get("audience"):
        return str(settings.get("audience"))
    url = login_url(settings)
    host = urlparse(url).hostname or ""
    if host.endswith(".sandbox.my.salesforce.com") or host == "test.salesforce.com":
        return "https://test.salesforce.com"
    if host.endswith("salesforce.com"):
        return "https://login.salesforce.com"
    return url


def _private_key(settings: SystemSettings) -> str:
    if settings.has_secret("private_key"):
        return settings.secret("private_key")
    file = settings.get("private_key_file")
    if not file:
        raise ConfigurationError(
            [
                f"{_path(settings, 'private_key_env')}: missing (the JWT "
                "grant needs private_key_env or private_key_file)"
            ]
        )
    try:
        return Path(str(file)).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(
            [f"{_path(settings, 'private_key_file')}: cannot read {file}: {exc.strerror}"]
        ) from None


def token_form(settings: SystemSettings) -> tuple[dict[str, str], tuple[str, str] | None]:
    """The form fields (and HTTP Basic credentials) of the token request for the grant."""
    grant = str(settings.get("grant", "jwt"))
    if grant not in GRANTS:
        raise ConfigurationError(
            [
                f"{_path(settings, 'grant')}: unknown grant {grant!r} "
                f"(use one of {', '.join(GRANTS)})"
            ]
        )
    client_id = _require(settings, "client_id")
    if grant == "jwt":
        claims = {
            "iss": client_id,
            "sub": _require(settings, "username"),
            "aud": audience(settings),
            "exp": int(time.time()) + 180,
        }
        try:
            assertion = jwt.encode(claims, _private_key(settings), algorithm="RS256")
        except (jwt.exceptions.InvalidKeyError, ValueError, TypeError):
            # PyJWT's own text ("... public key") misleads here; say what is expected.
            where = "private_key_env" if settings.has_secret("private_key") else "private_key_file"
            raise ConfigurationError(
                [
                    f"{_path(settings, where)}: not a PEM RSA private key; give the private "
                    "key of the app's certificate (-----BEGIN PRIVATE KEY----- ...)"
                ]
            ) from None
        return {"grant_type": JWT_GRANT, "assertion": assertion}, None
    if grant == "client_credentials":
        return {"grant_type": "client_credentials"}, (client_id, settings.secret("client_secret"))
    if grant == "password":
        password = settings.secret("password")
        if settings.has_secret("security_token"):
            password += settings.secret("security_token")
        return {
            "grant_type": "password",
            "client_id": client_id,
            "client_secret": settings.secret("client_secret"),
            "username": _require(settings, "username"),
            "password": password,
        }, None
    form = {
        "grant_type": "refresh_token",
        "client_id": client_id,
        "refresh_token": settings.secret("refresh_token"),
    }
    if settings.has_secret("client_secret"):
        form["client_secret"] = settings.secret("client_secret")
    return form, None


def raise_if_overloaded(response: requests.Response, url: str) -> None:
    """RetryableError when the token endpoint answered 5xx or 429 (worth trying again)."""
    if response.status_code >= 500 or response.status_code == 429:
        raise RetryableError(
            f"HTTP_{response.status_code}",
            f"token endpoint {url} answered {response.status_code}",
            system=SYSTEM,
            status=response.status_code,
        )


def obtain_token(settings: SystemSettings, http: requests.Session) -> Token:
    """Run the configured grant; AuthenticationError with Salesforce's error on refusal."""
    grant = str(settings.get("grant", "jwt"))
    if grant == "access_token":
        return Token(settings.secret("access_token"), _require(settings, "instance_url"), grant)
    form, basic = token_form(settings)
    url = f"{login_url(settings)}/services/oauth2/token"
    try:
        response = http.post(url, data=form, auth=basic, headers={"Accept": "application/json"})
    except requests.RequestException as exc:
        raise RetryableError(
            "CONNECTION_ERROR",
            f"cannot reach {url}: {network_reason(exc)} (check login_url: {login_url(settings)})",
            system=SYSTEM,
        ) from None
    try:
        decoded = response.json()
    except ValueError:
        decoded = {}
    # Not a token endpoint (a login URL with an extra path) may answer a list or HTML.
    body: dict[str, Any] = decoded if isinstance(decoded, dict) else {}
    if response.status_code == 404 or (response.status_code == 200 and not body):
        raise AuthenticationError(
            SYSTEM,
            f"no OAuth token endpoint at {url} (HTTP {response.status_code})",
            hint=f"check login_url ({login_url(settings)}): {LOGIN_URL_HINT}",
        )
    if response.status_code != 200:
        raise_if_overloaded(response, url)
        raise AuthenticationError(
            SYSTEM,
            str(body.get("error") or f"HTTP_{response.status_code}"),
            str(body.get("error_description") or response.text[:200]),
            hint=f"grant {grant} at {login_url(settings)}; check the connected app and user",
        )
    if not body.get("access_token") or not body.get("instance_url"):
        raise AuthenticationError(
            SYSTEM, "invalid_response", "the token answer has no access_token or instance_url"
        )
    rotated = body.get("refresh_token") if grant == "refresh_token" else None
    return Token(
        str(body["access_token"]), str(body["instance_url"]), grant, str(rotated or "") or None
    )
