"""push: magic links with look-before-create, registration metadata, per-item failures."""

from __future__ import annotations

import pytest
from eventsync.errors import FatalError
from eventsync.models import PullRequest, PushItem, PushRequest
from eventsync_hopin import plugin


def _links(sandbox, ticket_id):
    import requests

    state = requests.get(f"{sandbox.url}/_admin/state", timeout=5).json()
    return [m for m in state["magicLinks"].values() if m["attributes"]["ticketId"] == ticket_id]


def _invite(ticket_id, email="ada@example.com", key="003A", **extra):
    fields = {
        "ticketId": ticket_id,
        "email": email,
        "firstName": "Ada",
        "lastName": "Lovelace",
        "headline": "Analyst",
        "extraFields": {"Company": "Engines"},
        "metadata": {"sf": key},
        "registrationId": key,
        **extra,
    }
    return PushItem(key, fields)


def test_magic_link_insert_returns_the_link(sandbox, fresh):
    [result] = plugin.push(
        fresh.connection, PushRequest("magicLink", "insert", (_invite(fresh.ticket_id),))
    )
    assert result.ok and result.created and result.key == "003A"
    assert (
        result.returned["magicLink"].startswith(sandbox.url)
        and result.returned["status"] == "pending"
    )
    [stored] = _links(sandbox, fresh.ticket_id)
    attrs = stored["attributes"]
    assert stored["id"] == result.id
    assert (
        attrs["registrationId"],
        attrs["headline"],
        attrs["extraFields"],
        attrs["metadata"],
    ) == ("003A", "Analyst", {"Company": "Engines"}, {"sf": "003A"})


def test_magic_link_by_ticket_code_and_blank_names(sandbox, fresh):
    item = PushItem("k", {"ticketCode": fresh.ticket_code, "email": "nameless@example.com"})
    [result] = plugin.push(fresh.connection, PushRequest("magicLink", "upsert", (item,)))
    assert result.ok
    [stored] = _links(sandbox, fresh.ticket_id)
    assert stored["attributes"]["firstName"] == "-" and stored["attributes"]["lastName"] == "-"
    [unknown] = plugin.push(
        fresh.connection,
        PushRequest(
            "magicLink",
            "insert",
            (PushItem("u", {"ticketCode": "NOPE", "email": "x@example.com"}),),
        ),
    )
    assert not unknown.ok and unknown.error.code == "UNKNOWN_TICKET_CODE"


def test_look_before_create_makes_one_invitation(sandbox, fresh):
    request = PushRequest("magicLink", "insert", (_invite(fresh.ticket_id),))
    first = plugin.push(fresh.connection, request)[0]
    again = plugin.push(
        fresh.connection,
        PushRequest("magicLink", "upsert", (_invite(fresh.ticket_id, email="ADA@example.com"),)),
    )[0]
    assert again.ok and not again.created and again.id == first.id
    assert again.returned["magicLink"] == first.returned["magicLink"]
    assert len(_links(sandbox, fresh.ticket_id)) == 1


def test_lost_answer_to_a_create_is_not_repeated(sandbox, fresh, admin):
    """The create happens but its answer is a 503: the retry looks first and finds it."""
    admin.fault(method="POST", path="/v1/tickets/*/magicLinks", status=503, when="after", count=1)
    [result] = plugin.push(
        fresh.connection, PushRequest("magicLink", "insert", (_invite(fresh.ticket_id),))
    )
    assert result.ok and result.id
    assert len(_links(sandbox, fresh.ticket_id)) == 1
    assert admin.counters()["POST /v1/tickets/<ticket_id>/magicLinks"] >= 1


def test_create_retried_on_429_with_retry_after(sandbox, fresh, admin):
    admin.call("DELETE", "/counters")
    admin.fault(method="POST", path="/v1/tickets/*/magicLinks", status=429, retry_after=1, count=2)
    [result] = plugin.push(
        fresh.connection, PushRequest("magicLink", "insert", (_invite(fresh.ticket_id),))
    )
    assert result.ok and result.created
    assert admin.counters()["POST /v1/tickets/<ticket_id>/magicLinks"] == 3
    assert len(_links(sandbox, fresh.ticket_id)) == 1


def test_bad_record_fails_alone(sandbox, fresh):
    items = (
        _invite(fresh.ticket_id, email="not-an-email", key="bad"),
        _invite(fresh.ticket_id, key="good"),
        PushItem("noemail", {"ticketId": fresh.ticket_id}),
    )
    bad, good, noemail = plugin.push(fresh.connection, PushRequest("magicLink", "insert", items))
    assert (
        not bad.ok
        and bad.error.code == "HTTP_422"
        and "email" in bad.error.message
        and not bad.retryable
    )
    assert good.ok
    assert not noemail.ok and noemail.error.code == "REQUIRED_FIELD_MISSING"


def test_persistent_503_is_a_retryable_item_failure(fresh, admin):
    admin.fault(method="POST", path="/v1/tickets/*/magicLinks", status=503)
    [result] = plugin.push(
        fresh.connection, PushRequest("magicLink", "insert", (_invite(fresh.ticket_id),))
    )
    assert not result.ok and result.retryable and result.error.code == "HTTP_503"


def test_registration_metadata_update(fresh, admin):
    reg = admin.registration(fresh.event_id, fresh.ticket_id, "meta@example.com")
    results = plugin.push(
        fresh.connection,
        PushRequest(
            "registration",
            "update",
            (
                PushItem("a", {"metadata": {"salesforceId": "00Q1"}}, id=reg["id"]),
                PushItem("b", {"firstName": "Nope"}, id=reg["id"]),
                PushItem("c", {"metadata": {"x": "y"}}, id="z" * 25),
            ),
        ),
    )
    assert [r.ok for r in results] == [True, False, False]
    assert results[1].error.code == "NOT_UPDATABLE" and results[1].error.fields == ("firstName",)
    assert results[2].error.code == "HTTP_404"
    [record] = plugin.pull(fresh.connection, PullRequest("registration", ids=(reg["id"],)))
    assert record.fields["metadata"] == {"salesforceId": "00Q1"}


def test_registration_insert_and_magic_link_delete(sandbox, fresh):
    [made] = plugin.push(
        fresh.connection,
        PushRequest(
            "registration",
            "insert",
            (
                PushItem(
                    "r",
                    {
                        "ticketId": fresh.ticket_id,
                        "email": "new@example.com",
                        "firstName": "N",
                        "lastName": "W",
                    },
                ),
            ),
        ),
    )
    assert made.ok and made.created
    [link] = plugin.push(
        fresh.connection, PushRequest("magicLink", "insert", (_invite(fresh.ticket_id),))
    )
    [deleted] = plugin.push(
        fresh.connection, PushRequest("magicLink", "delete", (PushItem("d", id=link.id),))
    )
    assert deleted.ok and _links(sandbox, fresh.ticket_id) == []


def test_unsupported_operation_and_foreign_connection(fresh):
    with pytest.raises(FatalError, match="supported"):
        plugin.push(fresh.connection, PushRequest("ticket", "insert", (PushItem("x"),)))
    assert plugin.push(object(), PushRequest("magicLink", "insert", ())) is None
