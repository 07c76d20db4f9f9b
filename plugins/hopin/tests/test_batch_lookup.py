"""push: a batch of invitations looks before it creates with one filtered list per ticket."""

from __future__ import annotations

import requests
from eventsync.models import PushItem, PushRequest
from eventsync_hopin import lookup, plugin

LIST = "GET /v1/tickets/<ticket_id>/magicLinks"
CREATE = "POST /v1/tickets/<ticket_id>/magicLinks"


def _links(sandbox, ticket_id):
    state = requests.get(f"{sandbox.url}/_admin/state", timeout=5).json()
    return [m for m in state["magicLinks"].values() if m["attributes"]["ticketId"] == ticket_id]


def _invite(ticket_id, n, email=None):
    return PushItem(
        f"k{n}",
        {
            "ticketId": ticket_id,
            "email": email or f"guest{n}@example.com",
            "firstName": "Guest",
            "lastName": str(n),
            "registrationId": f"k{n}",
        },
    )


def _upsert(fresh, items):
    return plugin.push(fresh.connection, PushRequest("magicLink", "upsert", tuple(items)))


def test_one_list_call_per_fifty_emails_and_existing_ones_adopted(sandbox, fresh, admin):
    earlier = _upsert(fresh, [_invite(fresh.ticket_id, n) for n in range(3)])
    admin.call("DELETE", "/counters")
    items = [_invite(fresh.ticket_id, n) for n in range(60)]
    # Another spelling of an existing email is the same invitation.
    items[1] = _invite(fresh.ticket_id, 1, email="GUEST1@Example.com")
    results = _upsert(fresh, items)
    assert all(r.ok for r in results)
    assert [r.created for r in results[:3]] == [False, False, False]
    assert [r.id for r in results[:3]] == [r.id for r in earlier]
    assert all(r.created for r in results[3:])
    calls = admin.counters()
    assert calls.get(LIST) == -(-60 // lookup.EMAILS_PER_CALL)
    assert calls.get(CREATE) == 57
    assert len(_links(sandbox, fresh.ticket_id)) == 60


def test_items_sharing_an_email_make_one_invitation(sandbox, fresh, admin):
    admin.call("DELETE", "/counters")
    items = [_invite(fresh.ticket_id, n, email="shared@example.com") for n in range(3)]
    items += [_invite(fresh.ticket_id, 9)]
    first, second, third, other = _upsert(fresh, items)
    assert first.created and not second.created and not third.created and other.created
    assert first.id == second.id == third.id
    assert admin.counters().get(CREATE) == 2
    assert len(_links(sandbox, fresh.ticket_id)) == 2


def test_a_lost_create_answer_in_a_batch_is_adopted_not_repeated(sandbox, fresh, admin):
    admin.fault(method="POST", path="/v1/tickets/*/magicLinks", status=503, when="after", count=2)
    results = _upsert(fresh, [_invite(fresh.ticket_id, n) for n in range(10)])
    assert all(r.ok and r.id for r in results)
    links = _links(sandbox, fresh.ticket_id)
    assert len(links) == 10
    assert {r.id for r in results} == {m["id"] for m in links}


def test_a_refused_batch_look_falls_back_to_looking_per_item(sandbox, fresh, admin):
    existing = _upsert(fresh, [_invite(fresh.ticket_id, 0)])[0]
    admin.fault(method="GET", path="/v1/tickets/*/magicLinks", status=400, count=1)
    admin.call("DELETE", "/counters")
    results = _upsert(fresh, [_invite(fresh.ticket_id, n) for n in range(4)])
    assert all(r.ok for r in results)
    assert results[0].id == existing.id and not results[0].created
    assert len(_links(sandbox, fresh.ticket_id)) == 4
    # The failed look, then one look per item.
    assert admin.counters().get(LIST) == 1 + 4
