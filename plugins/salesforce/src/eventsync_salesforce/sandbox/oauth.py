"""The OAuth 2.0 token endpoint and the session table.

Grants: ``password``, ``urn:ietf:params:oauth:grant-type:jwt-bearer`` (RS256 assertions
verified with pyjwt against the connected app's certificate), ``client_credentials`` (HTTP
Basic or form credentials), ``authorization_code`` (the web server flow, see ``webflow``) and
``refresh_token`` (rotated when the app says so: the answer carries a new refresh token and
the old one stops working). Errors are ``{"error", "error_description"}`` with HTTP 400, as
Salesforce documents them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs
import jwt
from cryptography import x509

if TYPE_CHECKING:
    from .webflow import WebFlow

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@attrs.frozen
class ConnectedApp:
    """The sandbox's connected app: consumer key and secret, JWT certificate, run-as user."""

    client_id: str
    client_secret: str
    certificate_pem: bytes
    run_as: str
    rotate_refresh_tokens: bool = False


@attrs.frozen
class Login:
    """A user who may log in: username, password (+ security token), id."""

    user_id: str
    username: str
    password: str | None
    security_token: str = ""


class OAuthError(Exception):
    """A token endpoint refusal (``error``, ``error_description``, HTTP status)."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        self.error = error
        self.description = description
        self.status = status
        super().__init__(f"{error}: {description}")


class Sessions:
    """Access tokens and refresh tokens; thread-safe; expiry can be forced."""

    def __init__(self, org_id: str, ttl: float = 7200.0) -> None:
        self.org_id = org_id
        self.ttl = ttl
        self._tokens: dict[str, tuple[str, float]] = {}
        self._refresh: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()

    def issue(self, user_id: str) -> str:
        """A new access token for ``user_id``."""
        token = f"{self.org_id[:15]}!{secrets.token_urlsafe(48)}"
        with self._lock:
            self._tokens[token] = (user_id, time.monotonic() + self.ttl)
        return token

    def user_for(self, token: str) -> str | None:
        """The user of a live token, or None when unknown or expired."""
        with self._lock:
            entry = self._tokens.get(token)
            if entry is None or entry[1] < time.monotonic():
                self._tokens.pop(token, None)
                return None
            return entry[0]

    def expire(self, token: str | None = None) -> int:
        """Invalidate one token, or all of them; returns how many were invalidated."""
        with self._lock:
            if token is None:
                count = len(self._tokens)
                self._tokens.clear()
                return count
            return 1 if self._tokens.pop(token, None) else 0

    def issue_refresh(self, user_id: str, client_id: str) -> str:
        """A refresh token (as the web-server flow would have produced)."""
        token = f"5Aep{secrets.token_urlsafe(40)}"
        with self._lock:
            self._refresh[token] = (user_id, client_id)
        return token

    def refresh_owner(self, token: str) -> tuple[str, str] | None:
        """``(user_id, client_id)`` of a refresh token, or None."""
        with self._lock:
            return self._refresh.get(token)

    def rotate_refresh(self, token: str) -> str | None:
        """Replace a refresh token by a new one for the same user and client; the old one
        stops working. None when ``token`` is not (or no longer) valid."""
        with self._lock:
            owner = self._refresh.pop(token, None)
        return None if owner is None else self.issue_refresh(*owner)


class TokenEndpoint:
    """``POST /services/oauth2/token``."""

    def __init__(
        self,
        app: ConnectedApp,
        logins: Mapping[str, Login],
        sessions: Sessions,
        base_url: str,
        org_id: str,
        webflow: WebFlow,
    ) -> None:
        self.app = app
        self.webflow = webflow
        self.logins = logins
        self.sessions = sessions
        self.base_url = base_url
        self.org_id = org_id
        certificate = x509.load_pem_x509_certificate(app.certificate_pem)
        self._public_key = certificate.public_key()

    def handle(self, form: Mapping[str, str], authorization: str | None) -> dict[str, Any]:
        """Answer a token request, or raise OAuthError."""
        grant = form.get("grant_type", "")
        if grant == "authorization_code":
            return self._authorization_code(form)
        if grant == "refresh_token":
            return self._refresh(form)
        if grant == "password":
            user = self._password(form)
        elif grant == JWT_GRANT:
            user = self._jwt(form.get("assertion", ""))
        elif grant == "client_credentials":
            user = self._client_credentials(form, authorization)
        else:
            raise OAuthError("unsupported_grant_type", "grant type not supported")
        return self._token_response(user)

    def _client(self, client_id: str | None, client_secret: str | None, need_secret: bool) -> None:
        if client_id != self.app.client_id:
            raise OAuthError("invalid_client_id", "client identifier invalid")
        if need_secret and not hmac.compare_digest(client_secret or "", self.app.client_secret):
            raise OAuthError("invalid_client", "invalid client credentials")

    def _password(self, form: Mapping[str, str]) -> Login:
        self._client(form.get("client_id"), form.get("client_secret"), need_secret=True)
        login = self.logins.get((form.get("username") or "").lower())
        given = form.get("password") or ""
        if (
            login is None
            or login.password is None
            or not hmac.compare_digest(given, login.password + login.security_token)
        ):
            raise OAuthError("invalid_grant", "authentication failure")
        return login

    def _jwt(self, assertion: str) -> Login:
        try:
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise OAuthError("invalid_grant", "invalid assertion") from None
        if unverified.get("iss") != self.app.client_id:
            raise OAuthError("invalid_client_id", "client identifier invalid")
        audiences = [self.base_url, "https://login.salesforce.com", "https://test.salesforce.com"]
        try:
            claims = jwt.decode(
                assertion,
                self._public_key,  # type: ignore[arg-type]
                algorithms=["RS256"],
                audience=audiences,
                options={"require": ["exp", "sub", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise OAuthError("invalid_grant", "expired authorization code") from None
        except jwt.InvalidAudienceError:
            raise OAuthError("invalid_grant", "audience is invalid") from None
        except jwt.PyJWTError:
            raise OAuthError("invalid_grant", "invalid assertion") from None
        login = self.logins.get(str(claims["sub"]).lower())
        if login is None:
            raise OAuthError("invalid_grant", "user hasn't approved this consumer")
        return login

    def _client_credentials(self, form: Mapping[str, str], authorization: str | None) -> Login:
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(authorization[6:]).decode()
            except ValueError:
                raise OAuthError("invalid_client", "invalid client credentials") from None
            client_id, _, client_secret = decoded.partition(":")
        self._client(client_id, client_secret, need_secret=True)
        login = self.logins.get(self.app.run_as.lower())
        if login is None:
            raise OAuthError("invalid_grant", "no client credentials user enabled")
        return login

    def _authorization_code(self, form: Mapping[str, str]) -> dict[str, Any]:
        grant = self.webflow.redeem(form)
        scopes = grant.request.scopes
        app = grant.request.app
        answer = self._token_response(grant.user, " ".join(scopes), app.client_secret)
        if {"refresh_token", "offline_access"} & set(scopes):
            answer["refresh_token"] = self.sessions.issue_refresh(grant.user.user_id, app.client_id)
        return answer

    def _refresh(self, form: Mapping[str, str]) -> dict[str, Any]:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        external = self.webflow.app(client_id)
        if external is not None:
            external.check_secret(secret)
            rotate, signing = external.rotate_refresh_tokens, external.client_secret
        else:
            if client_id != self.app.client_id:
                raise OAuthError("invalid_client_id", "client identifier invalid")
            if secret is not None:
                self._client(client_id, secret, need_secret=True)
            rotate, signing = self.app.rotate_refresh_tokens, self.app.client_secret
        token = form.get("refresh_token", "")
        owner = self.sessions.refresh_owner(token)
        if owner is None or owner[1] != client_id:
            raise OAuthError("invalid_grant", "expired access/refresh token")
        login = next((x for x in self.logins.values() if x.user_id == owner[0]), None)
        if login is None:
            raise OAuthError("invalid_grant", "expired access/refresh token")
        rotated = self.sessions.rotate_refresh(token) if rotate else None
        if rotate and rotated is None:  # a concurrent refresh rotated it first
            raise OAuthError("invalid_grant", "expired access/refresh token")
        answer = self._token_response(login, "api", signing)
        if rotated is not None:
            answer["refresh_token"] = rotated
        return answer

    def _token_response(
        self, login: Login, scope: str = "api", signing_secret: str | None = None
    ) -> dict[str, Any]:
        """The token answer; ``signature`` is HMAC-SHA256 of id + issued_at with the
        client's consumer secret (default: the connected app's)."""
        token = self.sessions.issue(login.user_id)
        issued_at = str(int(time.time() * 1000))
        identity = f"{self.base_url}/id/{self.org_id}/{login.user_id}"
        signature = base64.b64encode(
            hmac.new(
                (signing_secret or self.app.client_secret).encode(),
                (identity + issued_at).encode(),
                hashlib.sha256,
            ).digest()
        ).decode()
        return {
            "access_token": token,
            "signature": signature,
            "scope": scope,
            "instance_url": self.base_url,
            "id": identity,
            "token_type": "Bearer",
            "issued_at": issued_at,
        }
