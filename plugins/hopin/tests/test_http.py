"""HTTP behaviour: retries honouring Retry-After on 429 and 5xx, timeouts, error mapping."""

from __future__ import annotations

import time

import pytest
import requests
from eventsync import backoff
from eventsync.errors import AuthenticationError, FatalError, RecordError, RetryableError
from eventsync.models import PullRequest
from eventsync_hopin import plugin
from eventsync_hopin.http import error_text, make_retry, raise_for
from eventsync_hopin.options import HopinOptions

ROUTE = "GET /v1/events/<event_id>/registrations"


@pytest.mark.parametrize("status", [429, 503, 500])
def test_pull_is_retried_on_429_and_5xx(fresh, admin, status):
    admin.registration(fresh.event_id, fresh.ticket_id, "retry@example.com")
    admin.call("DELETE", "/counters")
    admin.fault(
        path=f"/v1/events/{fresh.event_id}/registrations", status=status, retry_after=2, count=2
    )
    records = list(plugin.pull(fresh.connection, PullRequest("registration")))
    assert [r.fields["email"] for r in records] == ["retry@example.com"]
    assert admin.counters()[ROUTE] == 3


def test_retry_after_is_honoured(fresh, admin, tweak):
    connection = plugin.authenticate(
        "hopin", tweak(fresh.settings, retry_after_max=5.0, backoff_factor=0)
    )
    admin.fault(
        path=f"/v1/events/{fresh.event_id}/registrations", status=429, retry_after=1, count=1
    )
    started = time.monotonic()
    list(plugin.pull(connection, PullRequest("registration")))
    assert time.monotonic() - started >= 1.0


def test_backoff_switch_removes_waits(fresh, admin, tweak):
    connection = plugin.authenticate("hopin", tweak(fresh.settings, retry_after_max=5.0))
    admin.fault(
        path=f"/v1/events/{fresh.event_id}/registrations", status=429, retry_after=5, count=1
    )
    started = time.monotonic()
    with backoff.disabled():
        list(plugin.pull(connection, PullRequest("registration")))
    assert time.monotonic() - started < 2


def test_exhausted_retries_raise_retryable_with_retry_after(fresh, admin):
    admin.fault(path=f"/v1/events/{fresh.event_id}/registrations", status=429, retry_after=7)
    with pytest.raises(RetryableError) as exc:
        list(plugin.pull(fresh.connection, PullRequest("registration")))
    assert exc.value.code == "HTTP_429" and exc.value.retry_after == 7.0
    assert "injected fault" in exc.value.message


def test_latency_beyond_timeout_is_retryable(fresh, admin, tweak):
    connection = plugin.authenticate("hopin", tweak(fresh.settings, timeout=0.2))
    admin.fault(path=f"/v1/events/{fresh.event_id}/registrations", latency=0.5, count=1)
    with pytest.raises(RetryableError) as exc:
        list(plugin.pull(connection, PullRequest("registration")))
    assert exc.value.code == "TIMEOUT"


def _response(status, body=b"", headers=None):
    response = requests.Response()
    response.status_code = status
    response._content = body
    response.headers.update(headers or {})
    return response


def test_error_text_reads_any_body():
    assert (
        error_text(_response(422, b'{"errors":[{"status":"422","detail":"email is invalid"}]}'))
        == "email is invalid"
    )
    assert (
        error_text(_response(400, b'{"error":"invalid_grant","error_description":"expired"}'))
        == "expired"
    )
    assert error_text(_response(502, b"<html>Bad gateway</html>")) == "<html>Bad gateway</html>"
    assert error_text(_response(500, b"")) == ""


def test_raise_for_maps_statuses_to_the_taxonomy():
    raise_for(_response(200), "GET /x")
    with pytest.raises(AuthenticationError):
        raise_for(_response(401), "GET /x")
    with pytest.raises(FatalError):
        raise_for(_response(403), "GET /x")
    with pytest.raises(RecordError) as record:
        raise_for(_response(404, b'{"errors":[{"detail":"gone"}]}'), "GET /x")
    assert record.value.status == 404 and "gone" in record.value.message
    with pytest.raises(RetryableError) as retry:
        raise_for(_response(503, headers={"Retry-After": "12"}), "GET /x")
    assert retry.value.retry_after == 12.0


def test_retry_policy_never_repeats_a_post_after_5xx():
    retry = make_retry(HopinOptions(retries=3, retry_after_max=1.0))
    assert retry.is_retry("GET", 503) and retry.is_retry("GET", 429)
    assert retry.is_retry("POST", 429)
    assert not retry.is_retry("POST", 503) and not retry.is_retry("POST", 500)
    assert retry.is_retry("PATCH", 503)
    assert retry.parse_retry_after("3600") == 1.0
