"""The sandbox's OAuth 2.0 server side: authorization codes, access tokens that expire, and
refresh tokens that rotate (each refresh answers a new one and revokes the old), as
``POST /oauth/v1/token`` does."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Mapping
from typing import Any


class Tokens:
    """Issued codes and tokens of one app (thread-safe)."""

    def __init__(self, client_id: str, client_secret: str, ttl: float, rotate: bool) -> None:
        self.client_id, self.client_secret, self.ttl, self.rotate = (
            client_id,
            client_secret,
            ttl,
            rotate,
        )
        self._lock = threading.Lock()
        self._codes: dict[str, str] = {}  # code -> redirect_uri
        self._refresh: set[str] = set()
        self._access: dict[str, float] = {}  # token -> expiry (time.time())
        self.refreshes = 0

    def code(self, redirect_uri: str) -> str:
        """An authorization code, as HubSpot appends to the redirect URI after consent."""
        with self._lock:
            code = secrets.token_urlsafe(16)
            self._codes[code] = redirect_uri
            return code

    def refresh_token(self) -> str:
        """A refresh token issued outright (what a finished authorization left)."""
        with self._lock:
            token = secrets.token_urlsafe(24)
            self._refresh.add(token)
            return token

    def check(self, token: str) -> tuple[bool, str]:
        """Whether an access token is live, and HubSpot's words when it is not."""
        with self._lock:
            expiry = self._access.get(token)
        if expiry is None:
            return False, "The OAuth token used to make this call is invalid."
        if time.time() >= expiry:
            return (
                False,
                f"The OAuth token used to make this call expired {int(time.time() - expiry) + 1} second(s) ago.",
            )
        return True, ""

    def expire_all(self) -> int:
        """Make every access token expired (tests)."""
        with self._lock:
            for token in self._access:
                self._access[token] = 0.0
            return len(self._access)

    def revoke_refresh(self) -> None:
        """Revoke every refresh token (a user uninstalled the app)."""
        with self._lock:
            self._refresh.clear()

    def grant(self, form: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        """Answer ``POST /oauth/v1/token``."""
        with self._lock:
            if form.get("client_id") != self.client_id:
                return 400, _bad("BAD_CLIENT_ID", "missing or unknown client id")
            if form.get("client_secret") != self.client_secret:
                return 400, _bad("BAD_CLIENT_SECRET", "missing or invalid client secret")
            grant = form.get("grant_type")
            if grant == "authorization_code":
                redirect = self._codes.pop(str(form.get("code")), None)
                if redirect is None:
                    return 400, _bad("BAD_AUTH_CODE", "missing or unknown auth code")
                if redirect != form.get("redirect_uri"):
                    return 400, _bad(
                        "BAD_REDIRECT_URI", "redirect_uri does not match the one authorized"
                    )
                refresh = secrets.token_urlsafe(24)
            elif grant == "refresh_token":
                given = str(form.get("refresh_token"))
                if given not in self._refresh:
                    return 400, _bad("BAD_REFRESH_TOKEN", "missing or unknown refresh token")
                refresh = given
                if self.rotate:
                    self._refresh.discard(given)
                    refresh = secrets.token_urlsafe(24)
                self.refreshes += 1
            else:
                return 400, _bad("BAD_GRANT_TYPE", f"unsupported grant_type {grant!r}")
            self._refresh.add(refresh)
            access = secrets.token_urlsafe(32)
            self._access[access] = time.time() + self.ttl
            return 200, {
                "token_type": "bearer",
                "refresh_token": refresh,
                "access_token": access,
                "expires_in": int(self.ttl),
            }


def _bad(status: str, message: str) -> dict[str, Any]:
    return {"status": status, "message": message, "correlationId": secrets.token_hex(8)}
