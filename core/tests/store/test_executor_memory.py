"""What a worker holds: one batch at a time, and a leased batch's snapshots once."""

from __future__ import annotations

import time
import weakref

from eventsync.executor import Executor, Outcome
from eventsync.store import StateStore


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
        deadline = time.monotonic() + 10
        while ex.stats.done < 3:
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.02)
    # Every lease after the first came once the batch before it was let go.
    assert len(finished) == 3 and alive_at_lease[:3] == [0, 0, 0]

