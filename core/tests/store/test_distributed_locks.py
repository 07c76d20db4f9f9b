"""The exclusive locks the scale-out roles offer plugins (``StoreLocks``): claims in the shared
store, taken all or none, ending on the database clock when their holder dies."""

from __future__ import annotations

import pytest
from eventsync.distributed import StoreLocks
from eventsync.distributed.exclusive import LOCK_WAIT_CODE
from eventsync.errors import RetryableError

SCOPE = "test:parent"


def test_a_held_key_refuses_another_process_until_released(clocked_store) -> None:
    store = clocked_store()
    one = StoreLocks(store, seconds=30.0, wait=0.0, name="one")
    two = StoreLocks(store, seconds=30.0, wait=0.0, name="two")
    with one.hold("acme", SCOPE, ["p1"]):
        with pytest.raises(RetryableError) as refused, two.hold("acme", SCOPE, ["p1", "p2"]):
            pytest.fail("entered a lock another process holds")
        assert refused.value.code == LOCK_WAIT_CODE
        assert "1 of the 2 keys" in refused.value.message
        # All or none: the refused holder kept nothing, so p2 is free for a third.
        assert store.claim("acme", SCOPE, ["p2"], "third", 30.0) == {"p2"}
        store.release_claims("acme", SCOPE, ["p2"], "third")
        # Other keys, and the same key of another organisation, are not held.
        with two.hold("acme", SCOPE, ["p3"]), two.hold("other", SCOPE, ["p1"]):
            pass
    with two.hold("acme", SCOPE, ["p1", "p2"]):
        assert store.claim("acme", SCOPE, ["p1"], "third", 30.0) == set()
    assert two.waits == 1


def test_a_dead_holders_lock_ends_with_its_lease(clocked_store, clock) -> None:
    store = clocked_store()
    dead = StoreLocks(store, seconds=30.0, wait=0.0, name="dead")
    alive = StoreLocks(store, seconds=30.0, wait=0.0, name="alive")
    held = dead.hold("acme", SCOPE, ["p1"])
    held.__enter__()  # never left: the process was killed inside the block
    clock.advance(29)
    with pytest.raises(RetryableError), alive.hold("acme", SCOPE, ["p1"]):
        pass
    clock.advance(1)
    with alive.hold("acme", SCOPE, ["p1"]):
        pass


def test_no_keys_hold_nothing(clocked_store) -> None:
    locks = StoreLocks(clocked_store(), seconds=30.0, wait=0.0, name="one")
    with locks.hold("acme", SCOPE, ["", None]):  # type: ignore[list-item]
        pass
    assert locks.waits == 0
