"""Interactive sign-in: the OAuth 2.0 web server flow with PKCE (``oauth_start/finish``).

``start`` builds the authorize URL on the login URL the admin chose (production
``https://login.salesforce.com``, sandbox ``https://test.salesforce.com``, a My Domain, or the
local sandbox), asking for the scopes ``api refresh_token``. It also makes a fresh PKCE
verifier. oauthlib's ``WebApplicationClient`` makes the verifier and its S256 challenge and
builds the URL. ``finish`` exchanges the code with requests, through the same pinned session
and error wording as ``auth.py``. It then asks the identity service (the ``id`` URL of the
answer) who signed in, and returns what the config needs: ``grant = "refresh_token"``, the
login URL and consumer key, and the refresh token as a secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

import requests
from eventsync.errors import AuthenticationError, ConfigurationError, RetryableError
from eventsync.models import OAuthGrant, OAuthStart
from eventsync.netreason import network_reason
from oauthlib.oauth2 import WebApplicationClient

from . import transport
from .auth import LOGIN_URL_HINT, SYSTEM, raise_if_overloaded

SCOPES = ("api", "refresh_token")
#: RFC 7636 allows 43 to 128 characters; the longest gives the most entropy.
VERIFIER_LENGTH = 128


def _where(name: str) -> str:
    return f"$.systems.{SYSTEM}.{name}"


def login_url(settings: Mapping[str, Any]) -> str:
    """The login URL of ``settings`` (default production), checked as the config checks it.

    :raises ConfigurationError: not an http(s) URL, or it has a path.
    """
    url = str(settings.get("login_url") or "https://login.salesforce.com").rstrip("/")
    parsed = urlparse(url)
    if parsed.scheme not in ("https", "http") or not parsed.hostname:
        raise ConfigurationError(
            [
                f"{_where('login_url')}: {url!r} must be an https URL, e.g. https://login.salesforce.com"
            ]
        )
    if parsed.path or parsed.query or parsed.fragment:
        raise ConfigurationError([f"{_where('login_url')}: {url!r}: {LOGIN_URL_HINT}"])
    return url


def _client_id(settings: Mapping[str, Any]) -> str:
    client_id = settings.get("client_id")
    if not client_id:
        raise ConfigurationError(
            [
                f"{_where('client_id')}: missing (the consumer key of the External Client "
                "App; see docs/salesforce-oauth.md)"
            ]
        )
    return str(client_id)


def start(settings: Mapping[str, Any], redirect_uri: str, state: str) -> OAuthStart:
    """The authorize URL and a fresh PKCE verifier (see the module docstring)."""
    url = login_url(settings)
    client = WebApplicationClient(_client_id(settings))
    verifier = client.create_code_verifier(VERIFIER_LENGTH)
    authorize = client.prepare_request_uri(
        f"{url}/services/oauth2/authorize",
        redirect_uri=redirect_uri,
        scope=list(SCOPES),
        state=state,
        code_challenge=client.create_code_challenge(verifier, "S256"),
        code_challenge_method="S256",
    )
    return OAuthStart(url=authorize, verifier=verifier)


def _post_or_get(
    http: requests.Session, method: str, url: str, hint: str, **kwargs: Any
) -> requests.Response:
    try:
        return http.request(method, url, **kwargs)
    except requests.RequestException as exc:
        raise RetryableError(
            "CONNECTION_ERROR", f"cannot reach {url}: {network_reason(exc)} ({hint})", system=SYSTEM
        ) from None


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def finish(
    settings: Mapping[str, Any],
    redirect_uri: str,
    code: str,
    verifier: str,
    secrets: Mapping[str, str],
) -> OAuthGrant:
    """Exchange ``code`` for tokens and say who signed in (see the module docstring).

    :raises AuthenticationError: Salesforce refused the code (its ``error`` and text).
    :raises RetryableError: the login URL could not be reached, or answered 5xx.
    """
    url = login_url(settings)
    client_id = _client_id(settings)
    http = transport.make_session(
        settings.get("ca_bundle"), float(settings.get("timeout", 60.0)), lambda _: None
    )
    token_url = f"{url}/services/oauth2/token"
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": client_id,
        "code_verifier": verifier,
    }
    if secrets.get("client_secret"):
        form["client_secret"] = secrets["client_secret"]
    hint = f"check login_url: {url}"
    response = _post_or_get(
        http, "POST", token_url, hint, data=form, headers={"Accept": "application/json"}
    )
    body = _json(response)
    raise_if_overloaded(response, token_url)
    if response.status_code != 200 or not body.get("access_token"):
        raise AuthenticationError(
            SYSTEM,
            str(body.get("error") or f"HTTP_{response.status_code}"),
            str(body.get("error_description") or response.text[:200]),
            hint="sign in again; check the External Client App's consumer key, secret and "
            "callback URL (docs/salesforce-oauth.md)",
        )
    if not body.get("refresh_token"):
        raise AuthenticationError(
            SYSTEM,
            "no_refresh_token",
            "the token answer has no refresh_token",
            hint="add the scope 'Perform requests at any time (refresh_token, offline_access)' "
            "to the External Client App's OAuth scopes",
        )
    account = _account(http, body, hint)
    grant_secrets = {"refresh_token": str(body["refresh_token"])}
    if secrets.get("client_secret"):
        grant_secrets["client_secret"] = secrets["client_secret"]
    return OAuthGrant(
        settings={"login_url": url, "client_id": client_id, "grant": "refresh_token"},
        secrets=grant_secrets,
        account=account,
    )


def _account(http: requests.Session, body: Mapping[str, Any], hint: str) -> str:
    """``USERNAME on ORGID``: the org and user ids from the ``id`` URL, the username from the
    identity service (the user id alone when it does not answer)."""
    identity = str(body.get("id") or "")
    parts = urlparse(identity).path.rstrip("/").split("/")
    org_id, user_id = (parts[-2], parts[-1]) if len(parts) >= 3 and parts[-3] == "id" else ("", "")
    if not org_id:
        return "an unknown user"
    response = _post_or_get(
        http,
        "GET",
        identity,
        hint,
        headers={"Authorization": f"Bearer {body['access_token']}", "Accept": "application/json"},
    )
    username = _json(response).get("username") if response.status_code == 200 else None
    return f"{username or user_id} on {org_id}"
