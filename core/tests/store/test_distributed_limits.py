"""The scale-out limits in the shared store: per-org concurrency slots and the scheduler lock,
both claims that end on the database clock."""

from __future__ import annotations

from eventsync.distributed import OrgSlots, SchedulerLock
from eventsync.waiting import wait_until


def test_an_org_has_at_most_its_limit_of_slots_held_at_once(clocked_store) -> None:
    slots = OrgSlots(clocked_store(), limit=2, seconds=30.0)
    first, second = slots.acquire("acme", "w1"), slots.acquire("acme", "w2")
    assert {first, second} == {"slot-0", "slot-1"}
    assert slots.acquire("acme", "w3") is None
    # Another organisation has slots of its own.
    assert slots.acquire("other", "w3") == "slot-0"
    slots.release("acme", first, "w1")
    assert slots.acquire("acme", "w3") == first
    slots.close()


def test_a_dead_holders_slot_frees_when_its_lease_ends(clocked_store, clock) -> None:
    slots = OrgSlots(clocked_store(), limit=1, seconds=30.0)
    assert slots.acquire("acme", "killed") == "slot-0"
    slots.close()  # killed: its renewals died with it
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


def _until(what: str, probe) -> None:
    wait_until(what, probe, 120, 0.01)


def test_a_slot_held_past_its_lease_is_renewed_not_taken(clocked_store, clock) -> None:
    store = clocked_store()
    running = OrgSlots(store, limit=1, seconds=30.0, renew_every=0.01)
    other = OrgSlots(store, limit=1, seconds=30.0)
    slot = running.acquire("acme", "slow")  # a batch slower than a lease
    assert slot == "slot-0"
    for _ in range(3):  # 3 x 20 s: twice the lease, renewed all along by the thread
        clock.advance(20)
        seen = running.renewals
        _until("a renewal after the clock moved", lambda s=seen: running.renewals >= s + 2)
        assert other.acquire("acme", "next") is None
    assert running.lost == 0 and running.holds("acme", slot, "slow")
    # Released when the drain stops, and not renewed (re-taken) after.
    running.release("acme", slot, "slow")
    seen = running.renewals
    assert other.acquire("acme", "next") == slot
    other.release("acme", slot, "next")
    clock.advance(31)
    assert store.claim("acme", "eventsync:org-slot", [slot], "third", 30.0) == {slot}
    assert running.renewals == seen and running.held() == 0
    running.close()


def test_a_slot_taken_before_its_renewal_is_reported_lost(clocked_store, clock) -> None:
    store = clocked_store()
    stalled = OrgSlots(store, limit=1, seconds=30.0, renew_every=3600.0)
    assert stalled.acquire("acme", "stalled") == "slot-0"
    clock.advance(31)  # the process stalled past its lease: another drain took the slot
    other = OrgSlots(store, limit=1, seconds=30.0)
    assert other.acquire("acme", "next") == "slot-0"
    assert stalled.renew_held() == 1 and stalled.lost == 1
    assert not stalled.holds("acme", "slot-0", "stalled")  # its drain ends after its batch
    stalled.close()
    other.close()


def test_release_all_gives_back_every_slot_of_the_process(clocked_store) -> None:
    store = clocked_store()
    slots = OrgSlots(store, limit=2, seconds=30.0)
    assert slots.acquire("acme", "w1") and slots.acquire("other", "w2")
    assert slots.release_all() == 2
    assert slots.held() == 0
    other = OrgSlots(store, limit=1, seconds=30.0)
    assert other.acquire("acme", "x") == "slot-0" and other.acquire("other", "y") == "slot-0"
    slots.close()
    other.close()
