"""The scale-out limits in the shared store: per-org concurrency slots and the scheduler lock,
both claims that end on the database clock."""

from __future__ import annotations

from eventsync.distributed import OrgSlots, SchedulerLock


def test_an_org_has_at_most_its_limit_of_slots_held_at_once(clocked_store) -> None:
    slots = OrgSlots(clocked_store(), limit=2, seconds=30.0)
    first, second = slots.acquire("acme", "w1"), slots.acquire("acme", "w2")
    assert {first, second} == {"slot-0", "slot-1"}
    assert slots.acquire("acme", "w3") is None
    # Another organisation has slots of its own.
    assert slots.acquire("other", "w3") == "slot-0"
    slots.release("acme", first, "w1")
    assert slots.acquire("acme", "w3") == first


def test_a_dead_holders_slot_frees_when_its_lease_ends(clocked_store, clock) -> None:
    slots = OrgSlots(clocked_store(), limit=1, seconds=30.0)
    assert slots.acquire("acme", "killed") == "slot-0"
    clock.advance(20)
    assert slots.renew("acme", "slot-0", "killed")  # renewed: 30 s from now
    clock.advance(29)
    assert slots.acquire("acme", "next") is None
    clock.advance(1)
    assert slots.acquire("acme", "next") == "slot-0"
    assert not slots.renew("acme", "slot-0", "killed")


def test_one_scheduler_holds_the_lock_and_a_standby_takes_over(clocked_store, clock) -> None:
    store = clocked_store()
    active = SchedulerLock(store, seconds=30.0, holder="a")
    standby = SchedulerLock(store, seconds=30.0, holder="b")
    assert active.try_acquire()
    assert not standby.try_acquire()
    clock.advance(25)
    assert active.try_acquire()  # renewed
    clock.advance(25)
    assert not standby.try_acquire()
    active.release()
    assert standby.try_acquire()
    assert not active.try_acquire()
    clock.advance(31)  # the standby died without releasing: its lease ends
    assert active.try_acquire()
