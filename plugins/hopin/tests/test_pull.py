"""pull: pages through links.next lazily, filters on the wire or locally, watermarks."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from eventsync.errors import FatalError
from eventsync.models import Filter, PullRequest, Watermark
from eventsync_hopin import plugin


def _emails(records):
    return sorted(r.fields["email"] for r in records)


@pytest.fixture
def seven(fresh, admin):
    """Seven registrations on the fresh event."""
    return [
        admin.registration(
            fresh.event_id,
            fresh.ticket_id,
            f"r{n}@example.com",
            headline=f"H{n}",
            website="https://example.com",
        )
        for n in range(7)
    ]


def test_pagination_over_several_pages_is_lazy(fresh, seven, admin):
    admin.call("DELETE", "/counters")
    stream = plugin.pull(fresh.connection, PullRequest("registration", page_size=2))
    first = next(stream)
    route = "GET /v1/events/<event_id>/registrations"
    assert admin.counters()[route] == 1, "only the first page is read before it is needed"
    rest = list(stream)
    assert admin.counters()[route] == 4
    records = [first, *rest]
    assert _emails(records) == sorted(f"r{n}@example.com" for n in range(7))
    assert len({r.id for r in records}) == 7
    sample = records[0]
    assert sample.object == "registration" and sample.system == "hopin"
    assert (
        sample.fields["headline"].startswith("H")
        and sample.fields["website"] == "https://example.com"
    )
    assert sample.fields["status"] == "registered" and sample.fields["refunded"] is False
    assert isinstance(sample.modified_at, dt.datetime)


@pytest.mark.parametrize("encoding", ["filter", "bracket", "json_body"])
def test_email_filter_in_each_wire_encoding(fresh, seven, tweak, encoding, admin):
    connection = plugin.authenticate("hopin", tweak(fresh.settings, filter_encoding=encoding))
    admin.call("DELETE", "/counters")
    found = list(
        plugin.pull(
            connection,
            PullRequest("registration", filters=(Filter("email", "=", "R3@example.com"),)),
        )
    )
    assert _emails(found) == ["r3@example.com"]
    many = list(
        plugin.pull(
            connection,
            PullRequest(
                "registration",
                filters=(Filter("email", "in", ["r1@example.com", "r5@example.com"]),),
            ),
        )
    )
    assert _emails(many) == ["r1@example.com", "r5@example.com"]
    assert admin.counters()["GET /v1/events/<event_id>/registrations"] == 2, (
        "filtered on the wire: one page each"
    )


def test_created_at_filters_gt_and_gte(fresh, admin):
    first = admin.registration(fresh.event_id, fresh.ticket_id, "early@example.com")
    time.sleep(0.01)
    admin.registration(fresh.event_id, fresh.ticket_id, "late@example.com")
    created = dt.datetime.fromisoformat(first["attributes"]["createdAt"].replace("Z", "+00:00"))
    gte = list(
        plugin.pull(
            fresh.connection,
            PullRequest("registration", filters=(Filter("createdAt", ">=", created),)),
        )
    )
    gt = list(
        plugin.pull(
            fresh.connection,
            PullRequest("registration", filters=(Filter("createdAt", ">", created),)),
        )
    )
    assert _emails(gte) == ["early@example.com", "late@example.com"]
    assert _emails(gt) == ["late@example.com"]


def test_local_filters_refunded_status_and_limit(fresh, seven, admin):
    admin.call("POST", f"/registrations/{seven[2]['id']}/refund")
    refunded = list(
        plugin.pull(
            fresh.connection,
            PullRequest("registration", filters=(Filter("status", "=", "refunded"),)),
        )
    )
    assert [r.id for r in refunded] == [seven[2]["id"]]
    on_wire = list(
        plugin.pull(
            fresh.connection, PullRequest("registration", filters=(Filter("refunded", "=", True),))
        )
    )
    assert [r.id for r in on_wire] == [seven[2]["id"]]
    assert len(list(plugin.pull(fresh.connection, PullRequest("registration", limit=3)))) == 3
    like = list(
        plugin.pull(
            fresh.connection, PullRequest("registration", filters=(Filter("email", "like", "r6%"),))
        )
    )
    assert _emails(like) == ["r6@example.com"]


def test_since_watermark_returns_changed_registrations_oldest_first(fresh, seven, admin):
    time.sleep(0.01)
    mark = dt.datetime.now(dt.UTC)
    time.sleep(0.01)
    admin.call("PATCH", f"/registrations/{seven[4]['id']}", {"headline": "changed"})
    admin.call("PATCH", f"/registrations/{seven[1]['id']}", {"headline": "changed too"})
    changed = list(
        plugin.pull(fresh.connection, PullRequest("registration", since=Watermark(mark)))
    )
    assert [r.id for r in changed] == [seven[4]["id"], seven[1]["id"]]
    with_overlap = list(
        plugin.pull(
            fresh.connection, PullRequest("registration", since=Watermark(mark), overlap=3600)
        )
    )
    assert len(with_overlap) == 7


def test_ids_and_missing_ids(fresh, seven):
    wanted = (seven[0]["id"], "z" * 25, seven[6]["id"])
    found = list(plugin.pull(fresh.connection, PullRequest("registration", ids=wanted)))
    assert [r.id for r in found] == [seven[0]["id"], seven[6]["id"]]


def test_ticket_by_integration_code(fresh, admin):
    other = admin.call("POST", f"/events/{fresh.event_id}/tickets", {"name": "Other"})["data"]
    found = list(
        plugin.pull(
            fresh.connection,
            PullRequest("ticket", filters=(Filter("integrationCode", "=", fresh.ticket_code),)),
        )
    )
    assert [t.id for t in found] == [fresh.ticket_id]
    assert found[0].fields["integrationCode"] == fresh.ticket_code
    assert other["id"] not in [t.id for t in found]


def test_ticket_code_attribute_option(fresh, tweak, admin):
    admin.call(
        "POST", f"/events/{fresh.event_id}/tickets", {"name": "Coded", "integrationCode": "ABC"}
    )
    connection = plugin.authenticate(
        "hopin", tweak(fresh.settings, ticket_code_attribute="integrationCode")
    )
    codes = {
        r.fields["name"]: r.fields["integrationCode"]
        for r in plugin.pull(connection, PullRequest("ticket"))
    }
    assert codes == {"VIP": fresh.ticket_code, "Coded": "ABC"}


def test_magic_links_by_email_ticket_and_status(sandbox, fresh, admin):
    second = admin.call("POST", f"/events/{fresh.event_id}/tickets", {"name": "Second"})["data"]
    for ticket, email in (
        (fresh.ticket_id, "m1@example.com"),
        (second["id"], "m2@example.com"),
        (second["id"], "m1@example.com"),
    ):
        plugin.push(fresh.connection, _ml(ticket, email))
    by_email = list(
        plugin.pull(
            fresh.connection,
            PullRequest("magicLink", filters=(Filter("email", "=", "m1@example.com"),)),
        )
    )
    assert sorted(r.fields["ticketId"] for r in by_email) == sorted([fresh.ticket_id, second["id"]])
    both = list(
        plugin.pull(
            fresh.connection,
            PullRequest(
                "magicLink",
                filters=(
                    Filter("email", "=", "m1@example.com"),
                    Filter("ticketId", "=", second["id"]),
                ),
            ),
        )
    )
    assert len(both) == 1 and both[0].fields["status"] == "pending"
    admin.call("POST", f"/magicLinks/{both[0].id}/accept")
    registered = list(
        plugin.pull(
            fresh.connection,
            PullRequest("magicLink", filters=(Filter("status", "=", "registered"),)),
        )
    )
    assert [r.id for r in registered] == [both[0].id]


def _ml(ticket_id, email):
    from eventsync.models import PushItem, PushRequest

    return PushRequest(
        "magicLink",
        "insert",
        (
            PushItem(
                email, {"ticketId": ticket_id, "email": email, "firstName": "M", "lastName": "L"}
            ),
        ),
    )


def test_event_organization_and_questions(sandbox, fresh):
    events = list(plugin.pull(fresh.connection, PullRequest("event")))
    assert fresh.event_id in [e.id for e in events]
    [org] = plugin.pull(fresh.connection, PullRequest("organization"))
    assert org.id == sandbox.info()["organization_id"] and org.fields["name"] == "Demo Organisation"
    [event] = plugin.pull(fresh.connection, PullRequest("event", ids=(fresh.event_id,)))
    assert event.fields["name"] == "Test event"


def test_unknown_object_and_missing_event(fresh, settings, tweak):
    with pytest.raises(FatalError, match="no object 'nope'"):
        list(plugin.pull(fresh.connection, PullRequest("nope")))
    no_event = plugin.authenticate("hopin", tweak(settings, event_id=""))
    with pytest.raises(FatalError, match="event_id"):
        list(plugin.pull(no_event, PullRequest("registration")))
    assert plugin.pull(object(), PullRequest("registration")) is None
