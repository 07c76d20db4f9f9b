"""Unit tests of error classification, Sforce-Limit-Info parsing and SOQL literals."""

from __future__ import annotations

import datetime as dt

import pytest
import requests
from eventsync.errors import AuthenticationError, FatalError, RetryableError
from eventsync.models import Filter
from eventsync_salesforce import errors, soql, transport
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
)


def body(code, message="m"):
    return [{"errorCode": code, "message": message, "fields": ["F"]}]


@pytest.mark.parametrize(
    ("exc", "kind", "code"),
    [
        (SalesforceGeneralError("u", 503, "n", "Service Unavailable"), RetryableError, "HTTP_503"),
        (
            SalesforceGeneralError("u", 429, "n", body("REQUEST_LIMIT_EXCEEDED")),
            RetryableError,
            "REQUEST_LIMIT_EXCEEDED",
        ),
        (
            SalesforceMalformedRequest("u", 400, "n", body("UNABLE_TO_LOCK_ROW")),
            RetryableError,
            "UNABLE_TO_LOCK_ROW",
        ),
        (
            SalesforceMalformedRequest("u", 400, "n", body("INVALID_FIELD")),
            FatalError,
            "INVALID_FIELD",
        ),
        (
            SalesforceRefusedRequest("u", 403, "n", body("INSUFFICIENT_ACCESS")),
            FatalError,
            "INSUFFICIENT_ACCESS",
        ),
        (
            SalesforceExpiredSession("u", 401, "n", body("INVALID_SESSION_ID")),
            AuthenticationError,
            None,
        ),
        (requests.ConnectTimeout("slow"), RetryableError, "TIMEOUT"),
        (requests.ConnectionError("down"), RetryableError, "CONNECTION_ERROR"),
    ],
)
def test_classify(exc, kind, code):
    failure = errors.classify(exc)
    assert isinstance(failure, kind)
    if code is not None:
        assert failure.code == code
    if isinstance(failure, (RetryableError, FatalError)) and code not in (
        "HTTP_503",
        "TIMEOUT",
        "CONNECTION_ERROR",
    ):
        assert failure.fields == ("F",)


def test_daily_limit_waits_an_hour():
    failure = errors.classify(
        SalesforceRefusedRequest(
            "u", 403, "n", body("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        )
    )
    assert isinstance(failure, RetryableError) and failure.retry_after == 3600


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("api-usage=10018/100000", (10018, 100000)),
        ("api-usage=1/15000; per-app-api-usage=17/250(appName=x)", (1, 15000)),
        ("per-app-api-usage=17/250(appName=x)", None),
        (None, None),
    ],
)
def test_parse_limit_info(header, expected):
    usage = transport.parse_limit_info(header)
    assert (None if usage is None else (usage.used, usage.limit)) == expected


def test_soql_literals_escape_everything():
    assert soql.literal("a'b\\c\nd") == "'a\\'b\\\\c\\nd'"
    assert soql.literal(None) == "null" and soql.literal(True) == "true"
    assert (
        soql.literal(dt.datetime(2024, 1, 2, 3, 4, 5, 999999, tzinfo=dt.UTC))
        == "2024-01-02T03:04:05Z"
    )
    assert soql.literal(dt.date(2024, 1, 2)) == "2024-01-02"
    assert soql.condition(Filter("Email", "in", ["a'", "b"])) == "Email IN ('a\\'', 'b')"
    with pytest.raises(ValueError):
        soql.name("Email; DELETE")
