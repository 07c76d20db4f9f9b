"""Access tokens: a private app's fixed token, or OAuth 2.0 with refresh tokens that rotate.

With ``auth = "oauth"`` the first refresh token comes from ``refresh_token_env`` (or from
``exchange_code``, which trades an authorization code for one); every refresh asks
``POST /oauth/v1/token`` for a new access token, and the refresh token HubSpot answers with
replaces the old one in ``token_file``, written to a temporary file beside it and renamed over
it, so a crash never leaves half a token and a restart uses the newest one.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Protocol

import requests
from eventsync.errors import AuthenticationError, ConfigurationError, RetryableError
from eventsync.models import SystemSettings

from .settings import SYSTEM, HubSpotSettings

TOKEN_PATH = "/oauth/v1/token"
#: Refresh this long before the access token expires, so a call never carries a dying token.
EARLY = 60.0


class TokenSource(Protocol):
    """Where a connection's bearer token comes from."""

    refreshable: bool

    def access_token(self) -> str:
        """The token to send now."""

    def refresh(self, stale: bool = False) -> None:
        """Get a new access token (``stale``: the last one was refused)."""


class PrivateAppToken:
    """A private app's access token: fixed, nothing to refresh."""

    refreshable = False

    def __init__(self, token: str) -> None:
        self._token = token

    def access_token(self) -> str:
        """The token from ``access_token_env``."""
        return self._token

    def refresh(self, stale: bool = False) -> None:
        """Nothing to do: a refused private-app token is an authentication error."""


class OAuthTokens:
    """OAuth 2.0 access tokens renewed with a refresh token kept in ``token_file``."""

    refreshable = True

    def __init__(
        self,
        settings: HubSpotSettings,
        client_secret: str,
        first_refresh_token: str,
        session: requests.Session,
    ) -> None:
        self.settings, self._secret, self._session = settings, client_secret, session
        self._path = Path(str(settings.token_file))
        self._first = first_refresh_token
        self._lock = threading.Lock()
        self._access: str | None = None
        self._expires = 0.0

    def refresh_token(self) -> str:
        """The newest refresh token: the file's, else the configured first one."""
        try:
            saved = json.loads(self._path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return self._first
        return str(saved.get("refresh_token") or self._first)

    def access_token(self) -> str:
        """A live access token, refreshed first when it is about to expire."""
        with self._lock:
            if self._access is None or time.monotonic() > self._expires - EARLY:
                self._refresh_locked()
            assert self._access is not None
            return self._access

    def refresh(self, stale: bool = False) -> None:
        """Refresh now (after a 401)."""
        with self._lock:
            self._refresh_locked()

    def _refresh_locked(self) -> None:
        answer = request_tokens(
            self.settings,
            self._session,
            {
                "grant_type": "refresh_token",
                "client_id": str(self.settings.client_id),
                "client_secret": self._secret,
                "refresh_token": self.refresh_token(),
            },
        )
        self._access = str(answer["access_token"])
        self._expires = time.monotonic() + float(answer.get("expires_in") or 1800)
        save_refresh_token(self._path, str(answer.get("refresh_token") or self.refresh_token()))


def token_source(
    settings: SystemSettings, options: HubSpotSettings, session: requests.Session
) -> TokenSource:
    """The token source ``options.auth`` asks for (secrets read now: a missing one is a
    ConfigurationError naming its variable)."""
    if options.auth == "private_app":
        return PrivateAppToken(settings.secret("access_token"))
    try:
        first = settings.secret("refresh_token")
    except ConfigurationError:
        if not Path(str(options.token_file)).is_file():
            raise
        first = ""  # the token file, written by an earlier refresh or exchange_code, has one
    return OAuthTokens(options, settings.secret("client_secret"), first, session)


def request_tokens(
    settings: HubSpotSettings, session: requests.Session, form: dict[str, str]
) -> dict[str, Any]:
    """``POST /oauth/v1/token``; a refusal is an AuthenticationError with HubSpot's words."""
    try:
        response = session.post(
            settings.url.rstrip("/") + TOKEN_PATH, data=form, timeout=settings.timeout
        )
    except requests.RequestException as exc:
        raise RetryableError("NETWORK", str(exc), system=SYSTEM) from exc
    if response.status_code >= 500 or response.status_code == 429:
        raise RetryableError(
            f"HTTP_{response.status_code}",
            response.text,
            system=SYSTEM,
            status=response.status_code,
        )
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code >= 400 or "access_token" not in body:
        raise AuthenticationError(
            SYSTEM,
            str(body.get("status") or body.get("error") or f"HTTP_{response.status_code}"),
            str(body.get("message") or body.get("error_description") or response.text),
            hint="authorize the app again (eventsync_hubspot.oauth.exchange_code) if the "
            "refresh token was revoked",
        )
    return dict(body)


def save_refresh_token(path: Path, token: str) -> None:
    """Replace the token file atomically, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            os.fchmod(file.fileno(), 0o600)
            json.dump({"refresh_token": token, "saved_at": time.time()}, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def exchange_code(settings: SystemSettings, code: str, redirect_uri: str) -> str:
    """Trade an authorization code (from the app's install URL) for tokens; the refresh token
    is saved in ``token_file`` and returned."""
    from .client import settings_of

    options = settings_of(settings)
    answer = request_tokens(
        options,
        requests.Session(),
        {
            "grant_type": "authorization_code",
            "client_id": str(options.client_id),
            "client_secret": settings.secret("client_secret"),
            "redirect_uri": redirect_uri,
            "code": code,
        },
    )
    token = str(answer["refresh_token"])
    save_refresh_token(Path(str(options.token_file)), token)
    return token
