"""Dead-letter ids are never reused (schema 6), a store that must exist is not created, and the
subscriptions eventsync made are remembered; on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from eventsync.models import RemoteFailure, Subscription
from eventsync.store import LATEST_VERSION, StateStore, StateStoreMissing


def _dead(store: StateStore, *entities: str) -> list[int]:
    store.mark_many("acme", "export", list(entities))
    for item in store.lease("w"):
        store.fail(item, RemoteFailure("INVALID", f"bad {item.entity}"))
    return sorted(d.id for d in store.dead_letters() if d.entity in entities)


def test_dead_letter_ids_are_never_reused(store: StateStore) -> None:
    first = _dead(store, "a", "b")
    assert store.retry_dead_letters() == 2  # deletes them, the largest id included
    for item in store.lease("w"):
        store.complete([item])
    again = _dead(store, "a", "b")
    assert min(again) > max(first), (first, again)
    store.purge_dead_letters()
    assert min(_dead(store, "c")) > max(again)


def test_upgrading_to_6_keeps_dead_letters_and_stops_reusing_ids(target) -> None:
    old = target.open(migrate_to=5)
    ids = _dead(old, "a", "b", "c")
    old.close()
    store = target.open()
    assert store.schema_version() == LATEST_VERSION
    assert sorted(d.id for d in store.dead_letters()) == ids
    assert {d.message for d in store.dead_letters()} == {"bad a", "bad b", "bad c"}
    last = max(ids)
    store.purge_dead_letters(ids=[last])  # SQLite before 6 would hand out `last` again
    [new] = _dead(store, "d")
    assert new > last


def test_a_store_that_must_exist_is_not_created(target) -> None:
    with pytest.raises(StateStoreMissing, match=r"\$\.engine\.state"):
        StateStore.open(target.url, path=target.path, schema=target.schema, create=False)
    target.open().close()  # now it exists
    opened = StateStore.open(target.url, path=target.path, schema=target.schema, create=False)
    assert opened.schema_version() == LATEST_VERSION
    opened.close()


def test_subscriptions_are_remembered_per_org_and_system(store: StateStore) -> None:
    at = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    subs = [Subscription("hopin", "s1", "https://a/hooks", at), Subscription("hopin", "s2", "b")]
    store.replace_subscriptions("acme", "hopin", subs)
    store.replace_subscriptions("other", "hopin", subs[:1])
    assert store.subscriptions("acme", "hopin") == subs
    store.replace_subscriptions("acme", "hopin", subs[1:])
    assert store.subscriptions("acme", "hopin") == subs[1:]
    assert store.subscriptions("other", "hopin") == subs[:1]
    assert store.subscriptions("acme", "salesforce") == []
