"""What a worker holds: one batch at a time, and a leased batch's snapshots once."""

from __future__ import annotations

import time
import weakref

from eventsync.executor import Executor, Outcome
from eventsync.flows.base import usable_snapshot
from eventsync.store import StateStore
from eventsync.waiting import wait_until


def test_a_worker_lets_its_finished_batch_go_before_leasing_the_next(store: StateStore) -> None:
    store.mark_many("acme", "export", {f"e{n}": {"n": n} for n in range(3)})
    finished: list[weakref.ref] = []
    alive_at_lease: list[int] = []
    lease = store.lease

    def counting_lease(*args, **kwargs):
        alive_at_lease.append(sum(ref() is not None for ref in finished))
        return lease(*args, **kwargs)

    store.lease = counting_lease  # type: ignore[method-assign]

    def job(items):
        finished.extend(weakref.ref(item) for item in items)
        return [Outcome.done() for _ in items]

    with Executor(store, job, workers=1, batch_size=1, poll_interval=0.05) as ex:
        wait_until("three batches done", lambda: ex.stats.done >= 3, timeout=60, interval=0.02)
    # Every lease after the first came once the batch before it was let go.
    assert len(finished) == 3 and alive_at_lease[:3] == [0, 0, 0]


def test_a_snapshot_is_handed_over_once(store: StateStore) -> None:
    snapshot = {
        "snapshot_at": time.time(),
        "record": {"system": "hopin", "object": "registration", "id": "r1",
                   "fields": {"email": "a@x", "n": 1}, "modified_at": None},
    }  # fmt: skip
    store.mark("acme", "export", "r1", payload=snapshot)
    [item] = store.lease("w1")
    record = usable_snapshot(item)
    assert record is not None and dict(record.fields) == {"email": "a@x", "n": 1}
    # It left the payload with the record: held once, and a second look reads the source.
    assert "record" not in item.payload and "snapshot_at" in item.payload
    assert usable_snapshot(item) is None


def test_the_heartbeat_keeps_no_finished_batch_alive(store: StateStore) -> None:
    store.mark_many("acme", "export", ["e0", "e1"])
    finished: list[weakref.ref] = []

    def job(items):
        finished.extend(weakref.ref(item) for item in items)
        time.sleep(2.5)  # a heartbeat (every 2 s) extends the lease meanwhile
        return [Outcome.done() for _ in items]

    with Executor(store, job, workers=1, lease_seconds=6.0, poll_interval=0.05) as ex:
        wait_until("the batch done", lambda: ex.stats.done >= 2, timeout=60, interval=0.01)
        # Done, and the next beat is more than a second away: nothing holds the batch.
        assert len(finished) == 2 and [ref() for ref in finished] == [None, None]
