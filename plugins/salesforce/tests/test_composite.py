"""Composite packing against the sandbox: Collections writes and match queries five to a
Composite request, each Composite one API call; a subrequest failing inside one fails only its
own records (or is retried when transient); the sandbox enforces the subrequest limits."""

from __future__ import annotations

import pytest
from eventsync.models import PushItem, PushRequest
from eventsync_salesforce import plugin


def lead(i, company, **extra):
    return {"LastName": f"L{i}", "Company": company, "Email": f"l{i}@{company}.com", **extra}


@pytest.fixture(autouse=True)
def _described(conn):
    """Lead described beforehand, so the calls counted are the push's own."""
    conn.schema.object(conn, "Lead")


def counts(admin):
    snapshot = admin.get("/counters")
    by = snapshot["by_endpoint"]
    return snapshot["api_usage"], by.get("composite", 0), by.get("composite:collections", 0)


def delta(before, after):
    return tuple(b - a for a, b in zip(before, after, strict=True))


def test_450_inserts_are_three_collections_in_one_composite_call(conn, admin, unique):
    items = tuple(PushItem(str(i), lead(i, unique)) for i in range(450))
    before = counts(admin)
    results = plugin.push(conn, PushRequest("Lead", "insert", items))
    assert [r.key for r in results] == [str(i) for i in range(450)]
    assert all(r.ok and r.created and r.id for r in results)
    assert delta(before, counts(admin)) == (1, 1, 3)  # one API call; three subrequests


def test_1000_email_upserts_cost_two_calls_queries_then_writes(conn, admin, unique):
    existing = {i: conn.sf.Lead.create(lead(i, unique, Title="Old"))["id"] for i in (3, 250, 999)}
    items = tuple(PushItem(str(i), lead(i, unique, Title="New")) for i in range(1000))
    before = counts(admin)
    results = plugin.push(conn, PushRequest("Lead", "upsert", items, match_key="Email"))
    assert all(r.ok for r in results)
    assert {int(r.key): r.id for r in results if not r.created} == existing
    # One Composite of the five match queries, then the six writes (one of the 3 updates, five
    # of the 997 creates) in Composites of five and one.
    assert delta(before, counts(admin)) == (3, 3, 6)
    assert conn.sf.Lead.get(existing[250])["Title"] == "New"


def test_a_real_time_email_batch_that_updates_and_creates_packs_both_writes(conn, admin, unique):
    conn.sf.Lead.create(lead(0, unique, Title="Old"))
    items = tuple(PushItem(str(i), lead(i, unique, Title="New")) for i in range(5))
    before = counts(admin)
    results = plugin.push(conn, PushRequest("Lead", "upsert", items, match_key="Email"))
    assert [r.created for r in results] == [False, True, True, True, True]
    assert delta(before, counts(admin)) == (2, 1, 2)  # the match query, then one Composite


def test_a_subrequest_failing_inside_a_composite_fails_only_its_records(conn, admin, unique):
    admin.post(
        "/faults",
        {"endpoint": "collections", "status": 400, "error_code": "INVALID_FIELD", "times": 1},
    )
    items = tuple(PushItem(str(i), lead(i, unique)) for i in range(400))
    results = plugin.push(conn, PushRequest("Lead", "insert", items))
    first, second = results[:200], results[200:]
    assert all(not r.ok and r.error.code == "INVALID_FIELD" and not r.retryable for r in first)
    assert all(r.ok and r.created for r in second)


def test_a_transient_subrequest_failure_is_looked_up_then_retried(conn, admin, unique):
    admin.post(
        "/faults",
        {"endpoint": "collections", "status": 503, "error_code": "SERVER_UNAVAILABLE", "times": 1},
    )
    items = tuple(PushItem(str(i), lead(i, unique)) for i in range(400))
    before = counts(admin)
    results = plugin.push(conn, PushRequest("Lead", "upsert", items, match_key="Email"))
    assert all(r.ok and r.created for r in results)
    assert len({r.id for r in results}) == 400  # nothing created twice
    used, _, _ = delta(before, counts(admin))
    # Queries, writes (one failed inside: a 503 create may have happened), then the failed
    # write's lookup and its creates.
    assert used == 4


def test_records_locked_inside_a_subrequest_are_retried(conn, admin, unique):
    admin.post(
        "/faults",
        {
            "endpoint": "collections",
            "per_record": True,
            "error_code": "UNABLE_TO_LOCK_ROW",
            "status": 0,
            "times": 1,
        },
    )
    items = tuple(PushItem(str(i), lead(i, unique)) for i in range(300))
    results = plugin.push(conn, PushRequest("Lead", "insert", items))
    assert all(r.ok for r in results)


def test_the_sandbox_enforces_the_composite_subrequest_limits(rest):
    base = "/services/data/v59.0"
    query = {"method": "GET", "url": f"{base}/query?q=SELECT+Id+FROM+Lead+LIMIT+1"}
    six = [{**query, "referenceId": f"q{n}"} for n in range(6)]
    answer = rest("POST", "composite", json={"compositeRequest": six})
    assert answer.status_code == 400
    assert "at most 5 subrequests" in answer.json()[0]["message"]
    light = {"method": "GET", "url": f"{base}/sobjects/Lead/describe"}
    many = [{**light, "referenceId": f"d{n}"} for n in range(26)]
    answer = rest("POST", "composite", json={"compositeRequest": many})
    assert answer.status_code == 400 and "1 to 25 subrequests" in answer.json()[0]["message"]
    five = rest("POST", "composite", json={"compositeRequest": six[:5]})
    assert five.status_code == 200
    entries = five.json()["compositeResponse"]
    assert [e["referenceId"] for e in entries] == [f"q{n}" for n in range(5)]
    assert all(e["httpStatusCode"] == 200 and "records" in e["body"] for e in entries)


def test_a_lost_composite_answer_creates_nothing_twice(conn, admin, unique):
    admin.post("/faults", {"endpoint": "composite", "status": 503, "when": "after", "times": 1})
    conn.sf.Lead.create(lead(0, unique, Title="Old"))
    items = tuple(PushItem(str(i), lead(i, unique, Title="New")) for i in range(250))
    results = plugin.push(conn, PushRequest("Lead", "upsert", items, match_key="Email"))
    assert all(r.ok for r in results)
    emails = [r["Email"] for r in admin.get("/records/Lead") if unique in str(r.get("Email"))]
    assert len(emails) == 250 == len(set(emails))


def test_a_lost_subrequest_answer_creates_nothing_twice(conn, admin, unique):
    admin.post("/faults", {"endpoint": "collections", "status": 503, "when": "after", "times": 1})
    items = tuple(PushItem(str(i), lead(i, unique)) for i in range(400))
    results = plugin.push(conn, PushRequest("Lead", "upsert", items, match_key="Email"))
    assert all(r.ok for r in results)
    emails = [r["Email"] for r in admin.get("/records/Lead") if unique in str(r.get("Email"))]
    assert len(emails) == 400 == len(set(emails))
