"""``Executor.run_once``: the lease, run and record step the scale-out workers call."""

from __future__ import annotations

from eventsync.executor import Executor, Outcome
from eventsync.store import StateStore


def test_run_once_leases_one_batch_of_the_pair_runs_it_and_records_it(store: StateStore) -> None:
    store.mark_many("acme", "export", [f"e{n}" for n in range(7)])
    store.mark_many("other", "export", ["o1"])
    seen: list[list[str]] = []

    def job(items):
        seen.append([i.entity for i in items])
        return [Outcome.done() for _ in items]

    executor = Executor(store, job, batch_size=5, wake_on_mark=False)
    executor.start_heartbeat()
    try:
        assert executor.run_once("w", org="acme", flow="export") == 5
        assert executor.run_once("w", org="acme", flow="export") == 2
        assert executor.run_once("w", org="acme", flow="export") == 0  # a duplicate drain
    finally:
        executor.stop_heartbeat()
    assert [len(batch) for batch in seen] == [5, 2]
    assert all(entity.startswith("e") for batch in seen for entity in batch)
    assert executor.stats.done == 7
    # The other organisation's row is untouched, still due.
    assert [item.entity for item in store.pending(org="other")] == ["o1"]
