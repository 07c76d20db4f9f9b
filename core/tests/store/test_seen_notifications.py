"""Ids of received notifications: remembered for their horizon, across reopening, then forgotten."""

from __future__ import annotations

import sqlalchemy as sa
from eventsync.store.schema import MIGRATIONS
from eventsync.store.seen import notification_key


def _rows(store) -> int:
    t = store.tables.seen_notifications
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar() or 0)


def test_remembered_ids_are_seen_until_their_horizon(clocked_store, clock) -> None:
    store = clocked_store()
    assert store.seen_notifications("acme", "hopin", ["d1", "d2"]) == set()
    assert store.remember_notifications("acme", "hopin", ["d1", "d1", ""], 60.0) == 1
    assert store.seen_notifications("acme", "hopin", ["d1", "d2"]) == {"d1"}
    # Another organisation or system has its own ids.
    assert store.seen_notifications("other", "hopin", ["d1"]) == set()
    assert store.seen_notifications("acme", "salesforce", ["d1"]) == set()
    clock.advance(59)
    assert store.seen_notifications("acme", "hopin", ["d1"]) == {"d1"}
    clock.advance(1)
    assert store.seen_notifications("acme", "hopin", ["d1"]) == set()


def test_a_restart_still_sees_them(target, clock) -> None:
    first = target.open(clock=clock)
    first.remember_notifications("acme", "hopin", ["d1"], 3600.0)
    first.close()
    clock.advance(1800)
    again = target.open(clock=clock)
    assert again.seen_notifications("acme", "hopin", ["d1"]) == {"d1"}


def test_a_later_expiry_wins_and_expired_rows_are_deleted(clocked_store, clock) -> None:
    store = clocked_store()
    store.remember_notifications("acme", "hopin", ["d1"], 100.0)
    store.remember_notifications("acme", "hopin", ["d1"], 10.0)  # does not shorten it
    clock.advance(50)
    assert store.seen_notifications("acme", "hopin", ["d1"]) == {"d1"}
    store.remember_notifications("acme", "salesforce", ["n1", "n2"], 1000.0)
    assert _rows(store) == 3
    clock.advance(100)
    store.remember_notifications("acme", "salesforce", ["n3"], 1000.0)
    assert _rows(store) == 3  # d1 expired and went; n1, n2, n3 stay
    assert store.remember_notifications("acme", "hopin", ["x"], 0.0) == 0


def test_long_ids_and_many_ids(clocked_store) -> None:
    store = clocked_store()
    long_id = "L" * 5000
    assert notification_key(long_id).startswith("sha256:") and notification_key("d1") == "d1"
    many = [f"04l{i:015d}" for i in range(1200)]
    store.remember_notifications("acme", "salesforce", [long_id, *many], 60.0)
    assert store.seen_notifications("acme", "salesforce", [long_id, "L" * 4999]) == {long_id}
    assert store.seen_notifications("acme", "salesforce", [*many, "new"]) == set(many)


def test_upgrade_from_version_3_adds_the_table(target) -> None:
    old = target.open(migrate_to=3)
    assert not sa.inspect(old.engine).has_table(
        old.tables.seen_notifications.name, schema=old.tables.schema
    )
    old.mark("acme", "export", "kept")
    old.close()
    new = target.open()
    assert new.schema_version() == MIGRATIONS[-1][0] >= 4
    assert [row.entity for row in new.pending()] == ["kept"]
    new.remember_notifications("acme", "hopin", ["d1"], 60.0)
    assert new.seen_notifications("acme", "hopin", ["d1"]) == {"d1"}
