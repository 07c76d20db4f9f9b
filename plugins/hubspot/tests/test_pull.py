"""Reads against the sandbox: by ids, typed values, and scans past the search API's cap."""

from __future__ import annotations

import attrs
import pytest
from eventsync.errors import DiscoveryError, FatalError
from eventsync.models import Filter, PullRequest, PushItem, PushRequest, Watermark


def insert(hooks, conn, rows):
    items = tuple(PushItem(str(i), row) for i, row in enumerate(rows))
    results = hooks.push(conn, PushRequest("contacts", "insert", items))
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    return [r.id for r in results]


def capped(hooks, start, cap):
    """A sandbox and a connection whose searches reach ``cap`` results per query."""
    sandbox = start(search_cap=cap)
    settings = sandbox.settings("acme")
    settings = attrs.evolve(settings, options={**settings.options, "search_cap": cap})
    return sandbox, hooks.authenticate(settings)


def test_by_ids_leaves_missing_ones_out_and_types_the_values(hooks, conn):
    [made] = insert(hooks, conn, [{"email": "t@example.com", "hopin_attended_seconds": 1800}])
    request = PullRequest(
        "contacts", ids=(made, "999999"), fields=("Id", "email", "hopin_attended_seconds")
    )
    [row] = hooks.pull(conn, request)
    assert row.id == made and row.get("hopin_attended_seconds") == 1800
    assert row.modified_at is not None and row.modified_at.tzinfo is not None


def test_a_scan_longer_than_the_search_cap_returns_every_record_once_in_order(hooks, start, admin):
    sandbox, conn = capped(hooks, start, cap=10)
    made = []
    for batch in range(4):  # four timestamps, ties inside each
        made += insert(hooks, conn, [{"email": f"c{batch}-{i}@example.com"} for i in range(9)])
    got = list(hooks.pull(conn, PullRequest("contacts", fields=("email",), page_size=4)))
    assert sorted(r.id for r in got) == sorted(made)
    stamps = [r.modified_at for r in got]
    assert stamps == sorted(stamps)
    assert admin(sandbox, "GET", "/counters")["calls"]["search"] > len(made) / 4


def test_since_a_watermark_past_the_cap_loses_nothing_after_it(hooks, start):
    sandbox, conn = capped(hooks, start, cap=6)
    for batch in range(3):
        insert(hooks, conn, [{"email": f"w{batch}-{i}@example.com"} for i in range(5)])
    everything = list(hooks.pull(conn, PullRequest("contacts", page_size=2)))
    mark = everything[6]
    after = list(
        hooks.pull(
            conn, PullRequest("contacts", since=Watermark(mark.modified_at, mark.id), page_size=2)
        )
    )
    assert {r.id for r in everything[7:]} <= {r.id for r in after}
    assert all(r.modified_at >= mark.modified_at for r in after)
    assert len(after) == len({r.id for r in after})


def test_more_ties_than_the_cap_is_a_clear_error(hooks, start):
    sandbox, conn = capped(hooks, start, cap=4)
    insert(hooks, conn, [{"email": f"tie{i}@example.com"} for i in range(6)])
    with pytest.raises(FatalError, match="share hs_lastmodifieddate"):
        list(hooks.pull(conn, PullRequest("contacts", page_size=2)))


def test_filters_translate_and_like_is_refused(hooks, conn):
    insert(
        hooks,
        conn,
        [{"email": "a@example.com", "hopin_ticket_code": "T1"}, {"email": "b@example.com"}],
    )
    coded = list(
        hooks.pull(
            conn,
            PullRequest(
                "contacts", fields=("email",), filters=(Filter("hopin_ticket_code", "!=", None),)
            ),
        )
    )
    assert [r.get("email") for r in coded] == ["a@example.com"]
    empty = list(
        hooks.pull(
            conn,
            PullRequest(
                "contacts", fields=("email",), filters=(Filter("hopin_ticket_code", "=", None),)
            ),
        )
    )
    assert [r.get("email") for r in empty] == ["b@example.com"]
    with pytest.raises(FatalError, match="cannot filter with 'like'"):
        list(hooks.pull(conn, PullRequest("contacts", filters=(Filter("email", "like", "a%"),))))


def test_the_schema_comes_from_the_properties_api(hooks, conn):
    schema = hooks.discover_schema(conn, ["contacts"])
    contacts = schema.objects["contacts"]
    assert contacts.field("email").type == "email" and contacts.field("email").unique
    status = contacts.field("hopin_link_status")
    assert status.type == "picklist" and status.picklist_values == ("Invited", "Registered")
    assert not contacts.field("hs_object_id").createable
    assert contacts.field("hopin_attended_seconds").type == "double"
    with pytest.raises(DiscoveryError, match="no object 'Contacts'"):
        hooks.discover_schema(conn, ["Contacts"])


def test_custom_objects_are_described_and_written(hooks, start):
    sandbox = start(
        custom_objects=[
            {
                "name": "sessions",
                "objectTypeId": "2-1001",
                "label": "Session",
                "properties": [{"name": "title", "type": "string"}],
            }
        ]
    )
    conn = hooks.authenticate(sandbox.settings("acme"))
    assert "sessions" in hooks.discover_schema(conn, None).objects
    [made] = hooks.push(
        conn, PushRequest("2-1001", "insert", (PushItem("s", {"title": "Keynote"}),))
    )
    [row] = hooks.pull(conn, PullRequest("sessions", ids=(made.id,), fields=("title",)))
    assert row.get("title") == "Keynote"
