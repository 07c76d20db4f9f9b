"""A notification taken in one transaction: marks with their payloads and the ids remembered;
a re-send stores nothing. Links keep the source's modified time (migration 10)."""

from __future__ import annotations

import datetime as dt

from eventsync.store import Link


def test_marks_payloads_and_ids_in_one_go(clocked_store) -> None:
    store = clocked_store()
    marks = {"export": {"r1": {"record": {"id": "r1"}}, "r2": None}, "other": {}}
    assert store.accept_notification("acme", "hopin", marks, ids=["d1"], horizon=60.0) == 2
    assert store.seen_notifications("acme", "hopin", ["d1"]) == {"d1"}
    items = {i.entity: i for i in store.lease("w", 10)}
    assert set(items) == {"r1", "r2"}
    assert items["r1"].payload == {"record": {"id": "r1"}}
    assert items["r2"].payload is None
    assert all(i.generation == 1 for i in items.values())


def test_a_resend_stores_nothing(clocked_store) -> None:
    store = clocked_store()
    marks = {"export": {"r1": None}}
    assert store.accept_notification("acme", "hopin", marks, ids=["d1"], horizon=60.0) == 1
    again = {"export": {"r1": {"record": {"id": "r1"}}, "r9": None}}
    assert store.accept_notification("acme", "hopin", again, ids=["d1"], horizon=60.0) is None
    [item] = store.lease("w", 10)
    assert (item.entity, item.generation, item.payload) == ("r1", 1, None)


def test_a_delivery_with_a_new_id_marks_again(clocked_store) -> None:
    store = clocked_store()
    assert store.accept_notification("acme", "hopin", {"f": {"r1": None}}, ids=["d1"], horizon=9)
    assert store.accept_notification(
        "acme", "hopin", {"f": {"r1": None}}, ids=["d1", "d2"], horizon=9
    )
    [item] = store.lease("w", 10)
    assert item.generation == 2
    # Without ids (or a horizon) nothing is remembered and nothing is refused.
    assert store.accept_notification("acme", "sf", {"f": {"r2": None}}) == 1
    assert store.accept_notification("acme", "sf", {"f": {"r2": None}}) == 1


def test_links_keep_the_source_modified_time(store) -> None:
    moment = dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.UTC)
    store.put_links(
        [
            Link("acme", "export", "r1", "Lead", "00Q1", "h1", source_modified=moment),
            Link("acme", "export", "r2", "Lead", "00Q2", "h2"),
        ]
    )
    links = store.get_links("acme", "export", ["r1", "r2"])
    assert links["r1"].source_modified == moment
    assert links["r2"].source_modified is None
    # A batch of writes none of which knows the time leaves the stored one alone.
    store.put_links([Link("acme", "export", "r1", "Lead", "00Q1", "h3")])
    assert store.get_link("acme", "export", "r1").source_modified == moment
    later = moment + dt.timedelta(minutes=5)
    store.put_links([Link("acme", "export", "r1", "Lead", "00Q1", "h4", source_modified=later)])
    assert store.get_link("acme", "export", "r1").source_modified == later
