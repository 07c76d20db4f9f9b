"""A notification taken in one transaction: marks with their payloads and the ids remembered;
a re-send stores nothing. Links keep the source's modified time (migration 10)."""

from __future__ import annotations

import datetime as dt
import threading
from contextlib import contextmanager

import sqlalchemy as sa
from eventsync.store import Link
from eventsync.waiting import wait_until


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


@contextmanager
def writes_held(target):
    """Another connection holding what a notification's transaction needs (SQLite's write
    lock; PostgreSQL's outbox table), so that transaction waits until the block ends."""
    other = target.open()
    with other.engine.begin() as conn:  # SQLite: BEGIN IMMEDIATE takes the write lock
        if target.backend == "postgresql":
            name = conn.dialect.identifier_preparer.format_table(other.tables.outbox)
            conn.execute(sa.text(f"LOCK TABLE {name} IN EXCLUSIVE MODE"))
        yield


def test_notifications_arriving_together_share_one_transaction(target) -> None:
    store = target.open()
    answers: dict[str, int | None] = {}
    deliveries = {
        "first": ({"export": {"r0": None}}, ["d0"]),
        "a": ({"export": {"r1": {"v": 1}}}, ["d1"]),
        "b": ({"export": {"r1": {"v": 2}}, "other": {"r2": None}}, ["d2"]),
        "resend of a": ({"export": {"r3": None}}, ["d1"]),  # in the same group as a
        "resend of first": ({"export": {"r4": None}}, ["d0"]),  # first's group committed
    }

    def deliver(name: str) -> threading.Thread:
        marks, ids = deliveries[name]

        def call() -> None:
            answers[name] = store.accept_notification(
                "acme", "hopin", marks, ids=ids, horizon=600.0, hint="notification"
            )

        thread = threading.Thread(target=call)
        thread.start()
        return thread

    with writes_held(target):
        threads = [deliver("first")]
        wait_until("the first delivery's transaction", lambda: store.intake.committing == 1)
        for n, name in enumerate(list(deliveries)[1:], 1):
            threads.append(deliver(name))
            wait_until(f"{n} deliveries queued", lambda n=n: store.intake.waiting == n)
        assert answers == {}  # no delivery is acknowledged before its commit
    for thread in threads:
        thread.join(120)
    assert answers == {"first": 1, "a": 1, "b": 2, "resend of a": None, "resend of first": None}
    assert (store.intake.groups, store.intake.requests) == (2, 5)
    items = {(i.flow, i.entity): i for i in store.lease("w", 10, flow="export")}
    items.update({(i.flow, i.entity): i for i in store.lease("w", 10, flow="other")})
    assert set(items) == {("export", "r0"), ("export", "r1"), ("other", "r2")}
    # Marked twice in one transaction: one row, the later payload.
    assert (items["export", "r1"].payload, items["export", "r1"].generation) == ({"v": 2}, 1)
    assert store.seen_notifications("acme", "hopin", ["d0", "d1", "d2"]) == {"d0", "d1", "d2"}


def test_expired_ids_are_deleted_at_most_once_a_second(clocked_store, clock) -> None:
    store = clocked_store()
    seen = store.tables.seen_notifications

    def rows() -> int:
        with store.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(seen)).scalar_one())

    store.accept_notification("acme", "hopin", {"f": {"r1": None}}, ids=["d1"], horizon=0.5)
    clock.advance(0.6)  # d1 expired: no longer seen, but deleted only a second after the last
    assert store.accept_notification("acme", "hopin", {"f": {"r1": None}}, ids=["d1"], horizon=9)
    assert rows() == 1  # d1 again, with its new expiry
    store.accept_notification("acme", "hopin", {"f": {"r2": None}}, ids=["x"], horizon=0.1)
    clock.advance(0.2)
    store.accept_notification("acme", "hopin", {"f": {"r3": None}}, ids=["y"], horizon=9)
    assert rows() == 3  # x expired 0.8 s after the last deletion: kept for now
    clock.advance(0.5)
    store.accept_notification("acme", "hopin", {"f": {"r4": None}}, ids=["z"], horizon=9)
    assert rows() == 3  # x went: d1, y, z
    assert store.seen_notifications("acme", "hopin", ["d1", "x", "y", "z"]) == {"d1", "y", "z"}
