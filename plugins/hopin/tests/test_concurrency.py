"""Reads by id without a call per id one after another: recent changes read as list pages,
the rest in bounded parallel; at most ``max_parallel`` calls in flight; a Retry-After held by
every worker. Against the sandbox over real HTTP."""

from __future__ import annotations

import datetime as dt

from eventsync.models import PullRequest, PushItem, PushRequest
from eventsync_hopin import lookup, plugin

GET_ONE = "GET /v1/registrations/<registration_id>"
LIST = "GET /v1/events/<event_id>/registrations"


def register(admin, fresh, count, prefix="p", **attributes):
    return [
        admin.registration(
            fresh.event_id, fresh.ticket_id, f"{prefix}{n}@example.com", **attributes
        )["id"]
        for n in range(count)
    ]


def test_recent_registrations_are_read_from_list_pages_and_older_ones_by_id(fresh, admin, tweak):
    an_hour_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
    old = register(admin, fresh, 3, "old", createdAt=an_hour_ago, updatedAt=an_hour_ago)
    new = register(admin, fresh, 8, "new")
    connection = plugin.authenticate("hopin", tweak(fresh.settings, page_size=5))
    admin.call("DELETE", "/counters")
    recent = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    ids = (*new, *old, "reg_missing")
    records = list(plugin.pull(connection, PullRequest("registration", ids=ids, recent=recent)))
    assert [r.id for r in records] == [*new, *old]  # in the order asked; the missing one absent
    calls = admin.counters()
    # The 8 recent ones in two pages of 5 (the list ends there); the 3 changed an hour ago,
    # and the one Hopin does not have, by id.
    assert calls[LIST] == 2
    assert calls[GET_ONE] == 4
    assert {r.id: r.fields["email"] for r in records}[new[0]] == "new0@example.com"


def test_recent_magic_links_are_read_from_the_ticket_list(fresh, admin, tweak):
    connection = plugin.authenticate("hopin", tweak(fresh.settings, page_size=5))
    items = tuple(
        PushItem(f"003{n}", {"ticketId": fresh.ticket_id, "email": f"m{n}@example.com"})
        for n in range(7)
    )
    created = plugin.push(connection, PushRequest("magicLink", "insert", items))
    ids = tuple(r.id for r in created)
    admin.call("DELETE", "/counters")
    recent = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    wanted = (*ids, "ml_missing")
    records = list(plugin.pull(connection, PullRequest("magicLink", ids=wanted, recent=recent)))
    assert [r.id for r in records] == list(ids)
    assert {r.id: r.get("email") for r in records}[ids[0]] == "m0@example.com"
    calls = admin.counters()
    # The event's tickets, the ticket's links changed since (two pages of 5: the 7 links), then
    # only the missing one by id; seven reads by id without ``recent``.
    assert calls["GET /v1/events/<event_id>/tickets"] <= 1
    assert calls["GET /v1/tickets/<ticket_id>/magicLinks"] == 2
    assert calls["GET /v1/magicLinks/<link_id>"] == 1


def test_reads_by_id_run_in_parallel_but_never_more_than_max_parallel(fresh, admin, tweak):
    ids = register(admin, fresh, 12)
    admin.fault(path="/v1/registrations/*", method="GET", latency=0.5)
    connection = plugin.authenticate("hopin", tweak(fresh.settings, max_parallel=3))
    admin.call("DELETE", "/counters")
    records = list(plugin.pull(connection, PullRequest("registration", ids=tuple(ids))))
    assert [r.id for r in records] == ids
    counted = admin.call("GET", "/counters")
    assert counted["calls"][GET_ONE] == 12
    assert 2 <= counted["peak_in_flight"] <= 3


def test_a_retry_after_is_honoured_by_every_parallel_call(fresh, admin, tweak):
    ids = register(admin, fresh, 6)
    admin.fault(path="/v1/registrations/*", method="GET", status=429, retry_after=1, count=1)
    connection = plugin.authenticate(
        "hopin", tweak(fresh.settings, max_parallel=4, retry_after_max=1.0)
    )
    records = list(plugin.pull(connection, PullRequest("registration", ids=tuple(ids))))
    assert [r.id for r in records] == ids
    # The 429 started the organisation's cool-down, which every worker's next call waits out.
    assert connection.http.throttle.held >= 1


def test_magic_links_are_created_in_bounded_parallel_one_per_email(fresh, admin, tweak):
    admin.fault(path="/v1/tickets/*/magicLinks", method="POST", latency=0.5)
    connection = plugin.authenticate("hopin", tweak(fresh.settings, max_parallel=4))
    emails = [f"guest{n}@example.com" for n in range(8)] + ["GUEST3@example.com"]
    items = tuple(
        PushItem(f"003{n}", {"ticketId": fresh.ticket_id, "email": email, "firstName": "G"})
        for n, email in enumerate(emails)
    )
    admin.call("DELETE", "/counters")
    results = plugin.push(connection, PushRequest("magicLink", "upsert", items))
    assert [r.key for r in results] == [i.key for i in items] and all(r.ok for r in results)
    # The same email twice is one invitation: its second item ran after the first and found it.
    assert results[3].id == results[8].id and results[8].created is False
    assert len({r.id for r in results}) == 8
    counted = admin.call("GET", "/counters")
    assert counted["calls"]["POST /v1/tickets/<ticket_id>/magicLinks"] == 8
    assert 2 <= counted["peak_in_flight"] <= 4


def test_the_list_read_stops_once_its_pages_hold_no_wanted_id(fresh, admin, tweak):
    wanted = register(admin, fresh, 3, "wanted")
    register(admin, fresh, 20, "later")  # changed after the wanted ones: other batches' work
    connection = plugin.authenticate("hopin", tweak(fresh.settings, page_size=3))
    admin.call("DELETE", "/counters")
    recent = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    records = list(
        plugin.pull(
            connection, PullRequest("registration", ids=(*wanted, "reg_gone"), recent=recent)
        )
    )
    assert [r.id for r in records] == wanted
    calls = admin.counters()
    # The first page holds the three wanted ones, the second none: the read stops there (of
    # the eight pages the event has), and the missing id is read on its own.
    assert calls[LIST] == 2
    assert calls[GET_ONE] == 1


def test_the_default_runs_a_campaign_burst_wide_and_a_429_slows_it_without_failing(fresh, admin):
    # The default max_parallel (32) lets a batch of creates run far wider than the former 8;
    # one 429 with a Retry-After holds every create of the organisation, and none fails nor is
    # made twice (POST is retried only on 429: the server did not act).
    assert fresh.connection.options.max_parallel == 32
    # The first rule that matches fires: the one-off 429 goes first.
    admin.fault(path="/v1/tickets/*/magicLinks", method="POST", status=429, retry_after=1, count=1)
    admin.fault(path="/v1/tickets/*/magicLinks", method="POST", latency=0.5)
    items = tuple(
        PushItem(f"003{n}", {"ticketId": fresh.ticket_id, "email": f"burst{n}@example.com"})
        for n in range(40)
    )
    admin.call("DELETE", "/counters")
    results = plugin.push(fresh.connection, PushRequest("magicLink", "upsert", items))
    assert all(r.ok for r in results) and len({r.id for r in results}) == 40
    counted = admin.call("GET", "/counters")
    assert counted["calls"]["POST /v1/tickets/<ticket_id>/magicLinks"] == 41  # 40 + the 429
    assert 8 < counted["peak_in_flight"] <= 32
    assert fresh.connection.http.throttle.held >= 1


def test_a_batch_looks_for_existing_invitations_with_its_list_calls_in_parallel(
    fresh, admin, tweak
):
    connection = plugin.authenticate("hopin", tweak(fresh.settings, max_parallel=8))
    items = tuple(
        PushItem(f"003{n}", {"ticketId": fresh.ticket_id, "email": f"l{n}@example.com"})
        for n in range(3 * lookup.EMAILS_PER_CALL)
    )
    made = plugin.push(connection, PushRequest("magicLink", "upsert", items))
    # Invited already: the batch only looks, three filtered list calls of 50 emails. Each is
    # held half a second, so one after another they would never be in flight together.
    admin.fault(path="/v1/tickets/*/magicLinks", method="GET", latency=0.5)
    admin.call("DELETE", "/counters")
    again = plugin.push(connection, PushRequest("magicLink", "upsert", items))
    assert [r.id for r in again] == [r.id for r in made] and not any(r.created for r in again)
    counted = admin.call("GET", "/counters")
    assert counted["calls"] == {"GET /v1/tickets/<ticket_id>/magicLinks": 3}
    assert counted["peak_in_flight"] == 3
