"""push: Collections, upsert (native and by match query), Bulk 2.0, retries and faults."""

from __future__ import annotations

import time

import pytest
from eventsync.errors import RetryableError
from eventsync.models import PullRequest, PushItem, PushRequest
from eventsync_salesforce import plugin


def lead(i, company, **extra):
    return {"LastName": f"L{i}", "Company": company, "Email": f"l{i}@{company}.com", **extra}


def test_insert_mixed_good_and_bad_records(conn, unique):
    items = (
        PushItem("good1", lead(1, unique)),
        PushItem("missing", {"LastName": "NoCompany"}),
        PushItem("rule", {"LastName": "R", "Company": "Forbidden Inc"}),
        PushItem("picklist", lead(3, unique, Tier__c="Bronze")),
        PushItem("good2", lead(4, unique)),
    )
    results = plugin.push(conn, PushRequest("Lead", "insert", items))
    assert [r.key for r in results] == ["good1", "missing", "rule", "picklist", "good2"]
    assert [r.ok for r in results] == [True, False, False, False, True]
    assert results[0].created and results[0].id.startswith("00Q")
    missing = results[1].error
    assert (missing.code, missing.message, missing.fields, missing.retryable) == (
        "REQUIRED_FIELD_MISSING",
        "Required fields are missing: [Company]",
        ("Company",),
        False,
    )
    assert results[2].error.code == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    assert results[2].error.message == "Company may not be Forbidden Inc"
    assert results[3].error.code == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert not any(r.retryable for r in results)


def test_native_upsert_creates_then_updates(conn, admin, unique):
    request = PushRequest(
        "Lead",
        "upsert",
        (
            PushItem("a", {"Hopin_Registration_Id__c": f"a{unique}", **lead(1, unique)}),
            PushItem("b", {"Hopin_Registration_Id__c": f"b{unique}", **lead(2, unique)}),
        ),
        match_key="Hopin_Registration_Id__c",
    )
    before = admin.calls("collections")
    first = plugin.push(conn, request)
    assert [(r.ok, r.created) for r in first] == [(True, True), (True, True)]
    assert admin.calls("collections") == before + 1
    second = plugin.push(
        conn,
        PushRequest(
            "Lead",
            "upsert",
            (PushItem("a", {"Hopin_Registration_Id__c": f"a{unique}", "Title": "Updated"}),),
            match_key="Hopin_Registration_Id__c",
        ),
    )
    assert (second[0].ok, second[0].created, second[0].id) == (True, False, first[0].id)
    assert conn.sf.Lead.get(first[0].id)["Title"] == "Updated"


@pytest.fixture(scope="module")
def unpacked(sandbox):
    """A connection with Composite packing off: one Collections call per write."""
    return plugin.authenticate("salesforce", sandbox.settings("acme", composite=False))


def test_upsert_by_email_uses_one_in_query_per_batch(unpacked, admin, unique):
    conn = unpacked
    conn.sf.Lead.create(lead(0, unique, Title="Old"))
    items = tuple(PushItem(str(i), lead(i, unique, Title="New")) for i in range(5))
    queries, collections = admin.calls("query"), admin.calls("collections")
    results = plugin.push(conn, PushRequest("Lead", "upsert", items, match_key="Email"))
    assert admin.calls("query") == queries + 1
    assert admin.calls("collections") == collections + 2  # one create, one update call
    assert [r.created for r in results] == [False, True, True, True, True]
    assert all(r.ok for r in results)
    assert conn.sf.Lead.get(results[0].id)["Title"] == "New"


def test_upsert_by_email_with_two_matches_fails_that_record_only(conn, unique):
    for _ in range(2):
        conn.sf.Lead.create(lead(9, unique))
    results = plugin.push(
        conn,
        PushRequest(
            "Lead",
            "upsert",
            (PushItem("dup", lead(9, unique)), PushItem("new", lead(10, unique))),
            match_key="Email",
        ),
    )
    assert results[0].error.code == "MULTIPLE_MATCHES" and not results[0].retryable
    assert results[1].ok and results[1].created


def test_update_and_delete(conn, unique):
    [made] = plugin.push(conn, PushRequest("Lead", "insert", (PushItem("x", lead(1, unique)),)))
    updated = plugin.push(
        conn,
        PushRequest(
            "Lead",
            "update",
            (PushItem("x", {"Title": "Boss"}, id=made.id), PushItem("noid", {"Title": "x"})),
        ),
    )
    assert updated[0].ok and not updated[0].created
    assert updated[1].error.code == "MISSING_ARGUMENT"
    deleted = plugin.push(conn, PushRequest("Lead", "delete", (PushItem("x", id=made.id),)))
    assert deleted[0].ok
    assert list(plugin.pull(conn, PullRequest("Lead", ids=(made.id,)))) == []


def test_batches_of_200_per_call(unpacked, admin, unique):
    items = tuple(PushItem(str(i), lead(i, unique)) for i in range(450))
    before = admin.calls("collections")
    results = plugin.push(unpacked, PushRequest("Lead", "insert", items))
    assert admin.calls("collections") == before + 3
    assert [r.key for r in results] == [str(i) for i in range(450)]
    assert all(r.ok for r in results)


def test_bulk_api_2_above_threshold(sandbox, admin, unique):
    conn = plugin.authenticate(
        "salesforce", sandbox.settings("acme", bulk_threshold=3, bulk_wait=0.01)
    )
    items = (
        PushItem("a", lead(1, unique)),
        PushItem("bad", {"LastName": "NoCompany"}),
        PushItem("b", lead(2, unique)),
        PushItem("c", lead(3, unique, Title="Same")),
    )
    before = admin.calls("bulk")
    results = plugin.push(conn, PushRequest("Lead", "insert", items))
    assert admin.calls("bulk") > before
    assert [r.key for r in results] == ["a", "bad", "b", "c"]
    assert [r.ok for r in results] == [True, False, True, True]
    assert results[1].error.code == "REQUIRED_FIELD_MISSING"
    assert results[1].error.fields == ("Company",)
    stored = conn.sf.Lead.get(results[3].id)
    assert (stored["LastName"], stored["Title"]) == ("L3", "Same")


def test_retries_injected_unable_to_lock_row_per_record(conn, admin, unique, no_wait):
    admin.post(
        "/faults",
        {
            "endpoint": "collections",
            "per_record": True,
            "error_code": "UNABLE_TO_LOCK_ROW",
            "times": 2,
        },
    )
    results = plugin.push(
        conn,
        PushRequest(
            "Lead", "insert", (PushItem("a", lead(1, unique)), PushItem("b", lead(2, unique)))
        ),
    )
    assert all(r.ok for r in results)
    assert admin.get("/faults") == []  # both injections were used up


def test_a_call_salesforce_refused_is_retried_in_place(conn, admin, unique, no_wait):
    # UNABLE_TO_LOCK_ROW for the whole call: Salesforce did not act, so resending is safe.
    admin.post(
        "/faults",
        {"endpoint": "collections", "status": 400, "error_code": "UNABLE_TO_LOCK_ROW", "times": 1},
    )
    [result] = plugin.push(conn, PushRequest("Lead", "insert", (PushItem("a", lead(1, unique)),)))
    assert result.ok
    assert admin.get("/faults") == []


def test_an_insert_whose_answer_is_lost_is_never_resent_blindly(conn, admin, unique, no_wait):
    # The write takes effect, then the answer is lost (503): a plain insert cannot be looked
    # up, so the plugin reports it retryable instead of inserting a second Lead.
    admin.post("/faults", {"endpoint": "collections", "status": 503, "times": 1, "when": "after"})
    before = admin.calls("collections")
    with pytest.raises(RetryableError) as exc:
        plugin.push(conn, PushRequest("Lead", "insert", (PushItem("a", lead(1, unique)),)))
    assert exc.value.code == "OUTCOME_UNKNOWN"
    assert admin.calls("collections") == before + 1
    rows = list(plugin.pull(conn, PullRequest("Lead", fields=("Email",))))
    assert [r.get("Email") for r in rows].count(f"l1@{unique}.com") == 1


@pytest.mark.parametrize("fault", [
    {"status": 503},
    # The answer never comes back within the client's timeout (2 s): a read timeout.
    {"status": 0, "latency": 6.0},
])  # fmt: skip
def test_an_upsert_whose_answer_is_lost_adopts_the_record_it_made(
    sandbox, admin, unique, no_wait, fault
):
    conn = plugin.authenticate("salesforce", sandbox.settings("acme", timeout=2.0))
    admin.post("/faults", {"endpoint": "collections", "times": 1, "when": "after", **fault})
    item = PushItem("a", lead(7, unique))
    [result] = plugin.push(conn, PushRequest("Lead", "upsert", (item,), match_key="Email"))
    assert result.ok, result.error
    rows = [
        r
        for r in plugin.pull(conn, PullRequest("Lead", fields=("Email",)))
        if r.get("Email") == f"l7@{unique}.com"
    ]
    assert len(rows) == 1, "the lost create was made again"
    assert result.id == rows[0].id


def test_retry_exhaustion_raises_retryable(conn, admin, unique, no_wait):
    admin.post("/faults", {"endpoint": "collections", "status": 503})
    with pytest.raises(RetryableError) as exc:
        plugin.push(conn, PushRequest("Lead", "insert", (PushItem("a", lead(1, unique)),)))
    assert exc.value.status == 503
    admin.delete("/faults")
    admin.post(
        "/faults",
        {"endpoint": "collections", "per_record": True, "error_code": "UNABLE_TO_LOCK_ROW"},
    )
    [result] = plugin.push(conn, PushRequest("Lead", "insert", (PushItem("a", lead(1, unique)),)))
    assert not result.ok and result.retryable and result.error.code == "UNABLE_TO_LOCK_ROW"


def test_request_limit_exceeded_is_retryable_later(conn, admin, unique):
    admin.post(
        "/faults",
        {"endpoint": "query", "status": 403, "error_code": "REQUEST_LIMIT_EXCEEDED", "times": 1},
    )
    with pytest.raises(RetryableError) as exc:
        list(plugin.pull(conn, PullRequest("Lead", fields=("Id",), limit=1)))
    assert exc.value.code == "REQUEST_LIMIT_EXCEEDED" and exc.value.retry_after == 3600


def test_latency_injection(conn, admin):
    admin.post("/faults", {"endpoint": "limits", "status": 0, "latency": 0.3, "times": 1})
    started = time.monotonic()
    conn.sf.limits()
    assert time.monotonic() - started >= 0.3


def test_unknown_field_fails_every_item_and_refreshes_schema(conn, admin, unique):
    conn.schema.object(conn, "Lead")
    results = plugin.push(
        conn,
        PushRequest(
            "Lead",
            "insert",
            (PushItem("a", {"Nope__c": 1, **lead(1, unique)}), PushItem("b", lead(2, unique))),
        ),
    )
    assert [r.error.code for r in results] == ["INVALID_FIELD", "INVALID_FIELD"]
    describes = admin.calls("describe")
    conn.schema.object(conn, "Lead")
    assert admin.calls("describe") == describes + 1
