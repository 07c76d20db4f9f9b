"""The connection to ExampleCRM and its one HTTP helper: status codes become eventsync errors,
and every answer's rate-limit headers are kept for ``api_usage``."""

from __future__ import annotations

from typing import Any

import attrs
import requests
from eventsync.errors import AuthenticationError, ConfigurationError, FatalError, RetryableError
from eventsync.models import ApiUsage, SystemSettings
from eventsync.settings import structure

from .settings import SYSTEM, ExampleCrmSettings

LIMIT_HEADER = "X-Example-RateLimit-Daily"
REMAINING_HEADER = "X-Example-RateLimit-Daily-Remaining"


@attrs.define
class ExampleConnection:
    """An authenticated session for one organisation (mutable: it remembers the last usage)."""

    org: str
    settings: ExampleCrmSettings
    session: requests.Session = attrs.field(repr=False)
    usage: ApiUsage | None = None
    system: str = SYSTEM


def connect(settings: SystemSettings) -> ExampleConnection:
    """Check the settings, open a session with the API key and verify it on ``GET /v1/account``."""
    options, problems = structure(
        ExampleCrmSettings, settings.options, f"$.orgs.{settings.org}.systems.{SYSTEM}"
    )
    if options is None:
        raise ConfigurationError(problems)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {settings.secret('api_key')}"
    conn = ExampleConnection(org=settings.org, settings=options, session=session)
    account = call(conn, "GET", "/v1/account")
    if str(account.get("accountId")) != options.account_id:
        raise AuthenticationError(
            SYSTEM,
            "ACCOUNT_MISMATCH",
            f"the API key belongs to account {account.get('accountId')}",
            hint=f"set account_id to it, or use a key of account {options.account_id}",
        )
    return conn


def call(conn: ExampleConnection, method: str, path: str, body: Any = None) -> dict[str, Any]:
    """One API call; raises AuthenticationError (401), RetryableError (429, 5xx, network) or
    FatalError (any other refusal of the whole call)."""
    try:
        response = conn.session.request(
            method, conn.settings.url + path, json=body, timeout=conn.settings.timeout
        )
    except requests.RequestException as exc:
        raise RetryableError("NETWORK", str(exc), system=SYSTEM) from exc
    _remember_usage(conn, response)
    if response.status_code < 400:
        return response.json() if response.content else {}  # batch/archive answers 204
    error = _error_body(response)
    category = str(error.get("category") or f"HTTP_{response.status_code}")
    message = str(error.get("message") or response.text)
    if response.status_code == 401:
        raise AuthenticationError(SYSTEM, category, message, hint="check api_key_env")
    if response.status_code == 429 or response.status_code >= 500:
        retry_after = response.headers.get("Retry-After")
        raise RetryableError(
            category,
            message,
            retry_after=float(retry_after) if retry_after else None,
            system=SYSTEM,
            status=response.status_code,
        )
    raise FatalError(category, message, system=SYSTEM, status=response.status_code)


def _error_body(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _remember_usage(conn: ExampleConnection, response: requests.Response) -> None:
    limit, remaining = response.headers.get(LIMIT_HEADER), response.headers.get(REMAINING_HEADER)
    if limit and remaining and limit.isdigit() and remaining.isdigit():
        conn.usage = ApiUsage(used=int(limit) - int(remaining), limit=int(limit))
