"""The exclusive locks the scale-out roles offer plugins (``StoreLocks``): claims in the shared
store, taken all or none, ending on the database clock when their holder dies."""

from __future__ import annotations

import pytest
from eventsync.distributed import StoreLocks
from eventsync.distributed.exclusive import LOCK_WAIT_CODE
from eventsync.errors import RetryableError
from eventsync.waiting import wait_until

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
    dead.close()  # and its renewals died with it
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


def _until(what: str, probe) -> None:
    wait_until(what, probe, 120, 0.01)


def test_a_lock_held_past_its_lease_is_renewed_not_taken(clocked_store, clock) -> None:
    store = clocked_store()
    slow = StoreLocks(store, seconds=30.0, wait=0.0, name="slow", renew_every=0.01)
    other = StoreLocks(store, seconds=30.0, wait=0.0, name="other")
    with slow.hold("acme", SCOPE, ["p1", "p2"]):  # a push slower than a lease
        for _ in range(3):  # 3 x 20 s: twice the lease, renewed all along
            clock.advance(20)
            seen = slow.renewals
            _until("a renewal after the clock moved", lambda s=seen: slow.renewals >= s + 2)
            with pytest.raises(RetryableError), other.hold("acme", SCOPE, ["p2"]):
                pytest.fail("took a lock whose holder is still pushing")
        assert slow.lost == 0
    # Released at the end of the block, and not renewed after it.
    seen = slow.renewals
    with other.hold("acme", SCOPE, ["p1", "p2"]):
        pass
    clock.advance(31)
    assert store.claim("acme", SCOPE, ["p1"], "third", 30.0) == {"p1"}
    assert slow.renewals == seen
    slow.close()


def test_the_stop_timeout_releases_every_lock_held(clocked_store) -> None:
    store = clocked_store()
    stuck = StoreLocks(store, seconds=30.0, wait=0.0, name="stuck")
    held = stuck.hold("acme", SCOPE, ["p1", "p2"])
    held.__enter__()  # a push that will not return in time
    assert stuck.release_all() == 2
    assert store.claim("acme", SCOPE, ["p1", "p2"], "next", 30.0) == {"p1", "p2"}
    stuck.close()
