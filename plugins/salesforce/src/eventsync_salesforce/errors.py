"""Classifying Salesforce failures into eventsync's error taxonomy.

Retryable: ``UNABLE_TO_LOCK_ROW``, ``SERVER_UNAVAILABLE``, concurrent-request limits, HTTP 429
and 5xx, connection failures and timeouts. ``REQUEST_LIMIT_EXCEEDED`` for the daily
allowance is retryable after an hour. Everything else about one record is a record error;
everything else about a call is fatal.
"""

from __future__ import annotations

from typing import Any

import requests
from eventsync.errors import AuthenticationError, EventsyncError, FatalError, RetryableError
from eventsync.netreason import network_reason
from simple_salesforce.exceptions import SalesforceError, SalesforceExpiredSession
from urllib3.exceptions import NewConnectionError

SYSTEM = "salesforce"

#: Per-record or per-call error codes worth retrying.
RETRYABLE_CODES = frozenset(
    {
        "UNABLE_TO_LOCK_ROW",
        "SERVER_UNAVAILABLE",
        "REQUEST_LIMIT_EXCEEDED",
        "CONCURRENT_REQUESTS_LIMIT_EXCEEDED",
        "TXN_SECURITY_METERING_ERROR",
    }
)


def first_error(content: Any) -> tuple[str, str, tuple[str, ...]]:
    """``(code, message, fields)`` from a REST error body (array, object or text)."""
    if isinstance(content, list) and content and isinstance(content[0], dict):
        item = content[0]
        return (
            str(item.get("errorCode") or item.get("statusCode") or "UNKNOWN"),
            str(item.get("message", "")),
            tuple(item.get("fields") or ()),
        )
    if isinstance(content, dict):
        return (
            str(content.get("errorCode") or content.get("error") or "UNKNOWN"),
            str(content.get("message") or content.get("error_description") or ""),
            (),
        )
    return "UNKNOWN", str(content or ""), ()


def is_retryable_code(code: str) -> bool:
    """True for error codes that go away on their own."""
    return code in RETRYABLE_CODES


class OutcomeUnknown(RetryableError):
    """A write that may or may not have taken effect (its answer was lost: a timeout after the
    request was sent, a dropped connection, a 5xx). It is never resent blindly: the caller
    looks the records up first (``push`` reconciles by the match key)."""


def outcome_unknown(exc: BaseException, failure: EventsyncError) -> bool:
    """True when ``exc`` (classified as ``failure``) may have happened after Salesforce acted
    on the request: a 5xx, a read timeout or a connection lost after sending. A refused
    connection, a connect timeout, a 429 or a limit error mean Salesforce did not act."""
    if not isinstance(failure, RetryableError):
        return False
    if isinstance(exc, SalesforceError):
        return int(exc.status) >= 500
    if isinstance(exc, requests.ConnectTimeout):
        return False
    if isinstance(exc, requests.ConnectionError):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        return not isinstance(reason, NewConnectionError)
    return isinstance(exc, requests.Timeout)


def classify(exc: BaseException) -> EventsyncError:
    """The taxonomy error for a simple-salesforce or requests exception."""
    if isinstance(exc, EventsyncError):
        return exc
    if isinstance(exc, SalesforceExpiredSession):
        code, message, _ = first_error(exc.content)
        return AuthenticationError(
            SYSTEM,
            code or "INVALID_SESSION_ID",
            message,
            "the session could not be renewed; check the credentials",
        )
    if isinstance(exc, SalesforceError):
        status = int(exc.status)
        code, message, fields = first_error(exc.content)
        if code == "UNKNOWN":
            code = f"HTTP_{status}"
        if status == 429 or status >= 500 or is_retryable_code(code):
            retry_after = 3600.0 if "TotalRequests" in message else None
            return RetryableError(
                code,
                message or f"HTTP {status} from {exc.url}",
                retry_after=retry_after,
                system=SYSTEM,
                fields=fields,
                status=status,
            )
        return FatalError(code, message, system=SYSTEM, fields=fields, status=status)
    where = getattr(getattr(exc, "request", None), "url", None) or "Salesforce"
    if isinstance(exc, requests.Timeout):
        return RetryableError("TIMEOUT", f"{where}: no answer in time", system=SYSTEM)
    if isinstance(exc, requests.RequestException):
        return RetryableError("CONNECTION_ERROR", f"{where}: {network_reason(exc)}", system=SYSTEM)
    return FatalError("UNEXPECTED", f"{type(exc).__name__}: {exc}", system=SYSTEM)
