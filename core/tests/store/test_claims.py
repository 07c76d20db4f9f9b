"""Claims on match-key values: one holder at a time, expiring on the database clock."""

from __future__ import annotations


def test_a_claimed_value_is_refused_to_others_until_released(clocked_store) -> None:
    store = clocked_store()
    assert store.claim("acme", "export:Lead", ["a@x", "b@x"], "batch-1", 60.0) == {"a@x", "b@x"}
    assert store.claim("acme", "export:Lead", ["a@x", "c@x"], "batch-2", 60.0) == {"c@x"}
    # Another organisation or scope has its own values.
    assert store.claim("other", "export:Lead", ["a@x"], "batch-2", 60.0) == {"a@x"}
    assert store.claim("acme", "export:Contact", ["a@x"], "batch-2", 60.0) == {"a@x"}
    # Its own holder may claim again (renew); releasing frees it for the next.
    assert store.claim("acme", "export:Lead", ["a@x"], "batch-1", 60.0) == {"a@x"}
    assert store.release_claims("acme", "export:Lead", ["a@x", "b@x"], "batch-2") == 0
    assert store.release_claims("acme", "export:Lead", ["a@x", "b@x"], "batch-1") == 2
    assert store.claim("acme", "export:Lead", ["a@x"], "batch-2", 60.0) == {"a@x"}


def test_a_crashed_holder_blocks_only_until_its_claim_expires(clocked_store, clock) -> None:
    store = clocked_store()
    assert store.claim("acme", "export:Lead", ["a@x"], "crashed", 30.0) == {"a@x"}
    clock.advance(29)
    assert store.claim("acme", "export:Lead", ["a@x"], "next", 30.0) == set()
    clock.advance(1)
    assert store.claim("acme", "export:Lead", ["a@x"], "next", 30.0) == {"a@x"}


def test_long_values_are_claimed_by_digest(clocked_store) -> None:
    store = clocked_store()
    long_value = "x" * 5000
    assert store.claim("acme", "s", [long_value], "h1", 60.0) == {long_value}
    assert store.claim("acme", "s", [long_value], "h2", 60.0) == set()


def test_many_values_in_several_statements_claim_and_release_as_one(clocked_store) -> None:
    # More than one IN list (IN_CHUNK) of sizes that are no power of two: the padding repeats
    # a value, which must neither be claimed twice nor counted twice when released.
    store = clocked_store()
    first = [f"v{i}@x" for i in range(700)]
    assert store.claim("acme", "s", first, "h1", 60.0) == set(first)
    taken = store.claim("acme", "s", [*first[::7], "new@x"], "h2", 60.0)
    assert taken == {"new@x"}
    assert store.release_claims("acme", "s", [*first[:3], "new@x"], "h1") == 3
    assert store.release_claims("acme", "s", first, "h1") == 697
    assert store.claim("acme", "s", first[:5], "h2", 60.0) == set(first[:5])


def test_releasing_drops_everyones_expired_claims(clocked_store, clock) -> None:
    store = clocked_store()
    assert store.claim("acme", "s", ["a@x"], "crashed", 10.0) == {"a@x"}
    clock.advance(11)
    assert store.release_claims("acme", "s", [], "someone") == 0
    with store.engine.connect() as conn:
        assert conn.execute(store.tables.claims.select()).all() == []
