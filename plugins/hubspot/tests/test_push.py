"""Writes against the sandbox: answers matched by key, a bad input isolated from its batch,
conflicts, duplicate match values, and rate limits (429 with Retry-After, 5xx)."""

from __future__ import annotations

import math

import pytest
import requests
from eventsync.models import PullRequest, PushItem, PushRequest


def upsert(hooks, conn, rows, key="email"):
    items = tuple(PushItem(f"k{i}", row) for i, row in enumerate(rows))
    return hooks.push(conn, PushRequest("contacts", "upsert", items, match_key=key))


def rate_fault(retry_after: float) -> dict:
    """One 429 on the next upsert, with this Retry-After."""
    return {"endpoint": "upsert", "status": 429, "times": 1, "retry_after": retry_after}


def calls(sandbox, endpoint):
    """How many calls of ``endpoint`` the sandbox answered."""
    counters = requests.get(f"{sandbox.admin_url}/counters", timeout=10).json()
    return counters["calls"].get(endpoint, 0)


def test_one_bad_record_is_isolated_and_the_other_99_land(hooks, conn, sandbox):
    rows = [{"email": f"r{i}@example.com", "firstname": f"R{i}"} for i in range(100)]
    rows[37] = {"email": "r37@example.com", "hopin_link_status": "Maybe"}
    results = upsert(hooks, conn, rows)
    assert [r.key for r in results] == [f"k{i}" for i in range(100)]
    bad = [r for r in results if not r.ok]
    assert [r.key for r in bad] == ["k37"]
    assert bad[0].error.code == "VALIDATION_ERROR" and not bad[0].error.retryable
    assert "INVALID_OPTION" in bad[0].error.message and bad[0].error.fields == (
        "hopin_link_status",
    )
    # Halving finds it: one refused call, then at most two calls per level of the split.
    assert calls(sandbox, "upsert") <= 1 + 2 * math.ceil(math.log2(100))
    emails = {r.get("email") for r in hooks.pull(conn, PullRequest("contacts", fields=("email",)))}
    assert len(emails) == 99 and "r37@example.com" not in emails


def test_answers_are_matched_by_key_whatever_their_order(hooks, conn):
    results = upsert(hooks, conn, [{"email": f"o{i}@example.com"} for i in range(30)])
    read = {
        r.id: r.get("email") for r in hooks.pull(conn, PullRequest("contacts", fields=("email",)))
    }
    assert [read[r.id] for r in results] == [f"o{i}@example.com" for i in range(30)]
    assert all(r.created for r in results)
    again = upsert(
        hooks, conn, [{"email": f"O{i}@example.com", "firstname": "X"} for i in range(30)]
    )
    assert [r.id for r in again] == [r.id for r in results]
    assert not any(r.created for r in again)


def test_an_insert_of_an_existing_email_is_a_conflict_for_that_record_alone(hooks, conn):
    [existing] = upsert(hooks, conn, [{"email": "taken@example.com"}])
    items = (
        PushItem("a", {"email": "fresh@example.com"}),
        PushItem("b", {"email": "TAKEN@example.com"}),
        PushItem("c", {"email": "fresh2@example.com"}),
    )
    a, b, c = hooks.push(conn, PushRequest("contacts", "insert", items))
    assert a.ok and c.ok and a.created
    assert b.error.code == "CONFLICT" and not b.error.retryable
    assert b.error.message == f"Contact already exists. Existing ID: {existing.id}"


def test_one_email_twice_in_a_batch_is_written_in_two_calls_to_one_contact(hooks, conn):
    first, second = upsert(
        hooks,
        conn,
        [
            {"email": "twin@example.com", "firstname": "A"},
            {"email": "Twin@example.com", "firstname": "B"},
        ],
    )
    assert first.ok and second.ok and first.id == second.id
    assert first.created and not second.created
    [row] = hooks.pull(conn, PullRequest("contacts", ids=(first.id,), fields=("firstname",)))
    assert row.get("firstname") == "B"


def test_an_upsert_on_a_key_that_is_not_unique_searches_first(hooks, conn, sandbox):
    [made] = upsert(hooks, conn, [{"email": "ng@example.com", "firstname": "Ngozi"}])
    found, new = upsert(
        hooks,
        conn,
        [
            {"firstname": "Ngozi", "lastname": "O."},
            {"firstname": "Zed", "email": "zed@example.com"},
        ],
        key="firstname",
    )
    assert found.id == made.id and not found.created
    assert new.ok and new.created
    assert calls(sandbox, "search") >= 1


def test_update_of_a_missing_id_fails_alone(hooks, conn):
    [made] = upsert(hooks, conn, [{"email": "up@example.com"}])
    items = (
        PushItem("ok", {"firstname": "U"}, id=made.id),
        PushItem("gone", {"firstname": "U"}, id="424242"),
    )
    ok, gone = hooks.push(conn, PushRequest("contacts", "update", items))
    assert ok.ok and ok.id == made.id
    assert gone.error.code == "OBJECT_NOT_FOUND" and not gone.error.retryable


def test_a_429_with_a_short_retry_after_is_waited_for_and_sent_again(
    admin, hooks, conn, sandbox, no_backoff
):
    admin(sandbox, "POST", "/faults", rate_fault(retry_after=1))
    [result] = upsert(hooks, conn, [{"email": "patient@example.com"}])
    assert result.ok
    assert calls(sandbox, "upsert") == 2


def test_a_429_longer_than_max_rate_wait_and_5xx_fail_their_items_as_retryable(
    admin, hooks, sandbox, no_backoff
):
    settings = sandbox.settings("acme")
    settings = type(settings)(
        settings.system, settings.org, {**settings.options, "max_rate_wait": 0.5}, env=settings.env
    )
    conn = hooks.authenticate(settings)
    admin(sandbox, "POST", "/faults", rate_fault(retry_after=30))
    [limited] = upsert(hooks, conn, [{"email": "later@example.com"}])
    assert limited.error.code == "RATE_LIMITS" and limited.error.retryable
    admin(sandbox, "POST", "/faults", {"endpoint": "upsert", "status": 503, "times": 1})
    [down] = upsert(hooks, conn, [{"email": "later@example.com"}])
    assert down.error.code == "SERVICE_UNAVAILABLE" and down.error.retryable
    [fine] = upsert(hooks, conn, [{"email": "later@example.com"}])
    assert fine.ok


def test_calls_wait_for_the_rate_window_instead_of_hitting_429(admin, hooks, start):
    sandbox = start(rate_limit=2, rate_interval_ms=300)
    conn = hooks.authenticate(sandbox.settings("acme"))
    for number in range(4):
        [result] = upsert(hooks, conn, [{"email": f"paced{number}@example.com"}])
        assert result.ok
    assert admin(sandbox, "GET", "/counters")["injected"] == {}
    usage = hooks.api_usage(conn)
    assert usage is not None and usage.limit == 1_000_000 and usage.used >= 5


@pytest.mark.parametrize("operation", ["delete"])
def test_an_unsupported_operation_is_a_fatal_error(hooks, conn, operation):
    from eventsync.errors import FatalError

    with pytest.raises(FatalError, match="cannot delete"):
        hooks.push(conn, PushRequest("contacts", operation, (PushItem("x", {}, id="1"),)))
