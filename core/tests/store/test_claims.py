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
