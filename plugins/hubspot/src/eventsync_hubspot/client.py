"""The connection to HubSpot and its one HTTP helper.

Written on ``requests`` rather than the official ``hubspot-api-client``: the plugin uses a
dozen endpoints of one API family, and it needs what the generated client hides or does its own
way: every answer's ``X-HubSpot-RateLimit-*`` headers (for pacing and ``api_usage``), the error
body's ``category`` and ``context`` verbatim (for dead letters and for isolating a bad input),
multi-status (207) batch answers, and retries that go through ``eventsync.backoff`` so tests can
remove the waits. The client's own retry loop and its model classes would stand in the way.

Status codes become eventsync errors: 401 (and 403, missing scopes) an ``AuthenticationError``
with HubSpot's message; 429, 423, 477 and 5xx a ``RetryableError``; any other refusal of a whole
call a ``HubSpotRefusal`` (a ``FatalError`` carrying the status and the error body), which the
push module splits batches on.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import attrs
import requests
from eventsync import backoff
from eventsync.errors import AuthenticationError, ConfigurationError, FatalError, RetryableError
from eventsync.models import ApiUsage, SystemSettings
from eventsync.settings import structure

from .oauth import TokenSource, token_source
from .settings import SYSTEM, HubSpotSettings

DAILY = "X-HubSpot-RateLimit-Daily"
DAILY_REMAINING = "X-HubSpot-RateLimit-Daily-Remaining"
INTERVAL = "X-HubSpot-RateLimit-Interval-Milliseconds"
WINDOW_MAX = "X-HubSpot-RateLimit-Max"
WINDOW_REMAINING = "X-HubSpot-RateLimit-Remaining"
#: Statuses worth retrying: rate limits, a locked portal (2 s), a migration, server trouble.
RETRYABLE_STATUSES = frozenset({423, 429, 477}) | frozenset(range(500, 600))


class HubSpotRefusal(FatalError):
    """HubSpot refused a whole call (400, 404, 409 ...): its status and its error body."""

    def __init__(self, status: int, body: dict[str, Any], text: str) -> None:
        self.body = body
        category = str(body.get("category") or f"HTTP_{status}")
        super().__init__(category, str(body.get("message") or text), system=SYSTEM, status=status)


@attrs.define
class RateWindow:
    """What the last answer said about the rolling ten-second window and the daily allowance."""

    remaining: int | None = None
    resets_at: float = 0.0  # time.monotonic() when the window reopens
    daily: ApiUsage | None = None


@attrs.define
class HubSpotConnection:
    """An authenticated session for one organisation (shared by the engine's threads)."""

    org: str
    settings: HubSpotSettings
    session: requests.Session = attrs.field(repr=False)
    tokens: TokenSource = attrs.field(repr=False)
    rate: RateWindow = attrs.field(factory=RateWindow)
    lock: threading.Lock = attrs.field(factory=threading.Lock, repr=False)
    schemas: dict[str, Any] = attrs.field(factory=dict, repr=False)
    system: str = SYSTEM


def settings_of(settings: SystemSettings) -> HubSpotSettings:
    """The structured settings, or ConfigurationError naming each problem with its path."""
    path = f"$.orgs.{settings.org}.systems.{SYSTEM}"
    options, problems = structure(HubSpotSettings, settings.options, path)
    if options is None:
        raise ConfigurationError(problems)
    more = options.problems()
    if more:
        raise ConfigurationError([f"{path}.{p}" for p in more])
    return options


def connect(settings: SystemSettings) -> HubSpotConnection:
    """Open a session and check that the token belongs to ``portal_id``
    (``GET /account-info/v3/details``)."""
    options = settings_of(settings)
    session = requests.Session()
    conn = HubSpotConnection(
        org=settings.org,
        settings=options,
        session=session,
        tokens=token_source(settings, options, session),
    )
    account = call(conn, "GET", "/account-info/v3/details")
    if str(account.get("portalId")) != options.portal_id:
        raise AuthenticationError(
            SYSTEM,
            "PORTAL_MISMATCH",
            f"the token belongs to portal {account.get('portalId')}",
            hint=f"set portal_id to it, or use a token of portal {options.portal_id}",
        )
    return conn


def call(
    conn: HubSpotConnection,
    method: str,
    path: str,
    body: Any = None,
    params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One API call, paced by the rate-limit headers; returns the JSON answer (207 included).

    A 429 whose ``Retry-After`` (or window) reopens within ``max_rate_wait`` is waited for and
    sent again; a 401 with OAuth refreshes the token once and sends it again.
    """
    refreshed = False
    for attempt in range(3):
        _pace(conn)
        response = _send(conn, method, path, body, params)
        _remember(conn, response)
        status = response.status_code
        if status < 400:
            return response.json() if response.content else {}
        error = _error_body(response)
        message = str(error.get("message") or response.text or f"HTTP {status}")
        category = str(error.get("category") or error.get("errorType") or f"HTTP_{status}")
        if status == 401 and conn.tokens.refreshable and not refreshed:
            conn.tokens.refresh(stale=True)
            refreshed = True
            continue
        if status in (401, 403):
            hint = "check the token and the app's scopes (crm.objects.contacts.read/write ...)"
            raise AuthenticationError(SYSTEM, category, message, hint=hint)
        if status in RETRYABLE_STATUSES:
            retry_after = _retry_after(response, status)
            policy = str(error.get("policyName") or "")
            if (
                status == 429
                and policy != "DAILY"
                and attempt < 2
                and retry_after is not None
                and retry_after <= conn.settings.max_rate_wait
            ):
                backoff.wait(retry_after)
                continue
            raise RetryableError(
                category, message, retry_after=retry_after, system=SYSTEM, status=status
            )
        raise HubSpotRefusal(status, error, response.text)
    raise RetryableError("RATE_LIMIT", "still rate-limited after waiting", system=SYSTEM)


def _send(
    conn: HubSpotConnection, method: str, path: str, body: Any, params: dict[str, Any] | None
) -> requests.Response:
    headers = {"Authorization": f"Bearer {conn.tokens.access_token()}"}
    try:
        return conn.session.request(
            method,
            conn.settings.url.rstrip("/") + path,
            json=body,
            params=params,
            headers=headers,
            timeout=conn.settings.timeout,
        )
    except requests.RequestException as exc:
        raise RetryableError("NETWORK", str(exc), system=SYSTEM) from exc


def _pace(conn: HubSpotConnection) -> None:
    """Wait for the ten-second window to reopen when the last answer said it is used up;
    refuse at once when the daily allowance is."""
    with conn.lock:
        remaining, resets_at, daily = conn.rate.remaining, conn.rate.resets_at, conn.rate.daily
    if daily is not None and daily.used >= daily.limit:
        raise RetryableError(
            "RATE_LIMIT",
            f"the daily API allowance of {daily.limit} calls is used up",
            retry_after=600.0,
            system=SYSTEM,
        )
    if remaining is not None and remaining <= 0:
        pause = resets_at - time.monotonic()
        if pause > conn.settings.max_rate_wait:
            raise RetryableError(
                "RATE_LIMIT", "the ten-second rate window is used up", retry_after=pause
            )
        if pause > 0:
            backoff.wait(pause)
        with conn.lock:
            if conn.rate.resets_at == resets_at:
                conn.rate.remaining = None  # the window reopened; the next answer tells anew


def _remember(conn: HubSpotConnection, response: requests.Response) -> None:
    headers = response.headers
    with conn.lock:
        remaining, interval = _int(headers.get(WINDOW_REMAINING)), _int(headers.get(INTERVAL))
        if remaining is not None:
            conn.rate.remaining = remaining
            conn.rate.resets_at = time.monotonic() + (interval or 10_000) / 1000
        limit, left = _int(headers.get(DAILY)), _int(headers.get(DAILY_REMAINING))
        if limit is not None and left is not None:
            conn.rate.daily = ApiUsage(used=max(limit - left, 0), limit=limit)


def _retry_after(response: requests.Response, status: int) -> float | None:
    """``Retry-After`` when given; else 2 s for a lock (423, as HubSpot's docs say), 1 s for
    a rate limit, and the engine's own backoff for server trouble."""
    given = response.headers.get("Retry-After")
    if given:
        try:
            return max(float(given), 0.0)
        except ValueError:
            pass
    return {423: 2.0, 429: 1.0}.get(status)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _error_body(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
