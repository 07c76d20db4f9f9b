"""Figures every process adds to: API usage readings and record counters (schema v11)."""

from __future__ import annotations

import threading

from eventsync.store import RecordCount


def test_the_latest_usage_reading_of_any_store_wins_and_old_ones_expire(
    target, clocked_store, clock
) -> None:
    one, two = clocked_store(), clocked_store()  # two processes' stores on one database
    one.report_usage("acme", "salesforce", 100, 1000)
    two.report_usage("acme", "salesforce", 180, 1000)
    two.report_usage("other", "hubspot", 5, 500)
    [acme] = one.shared_usage("acme")
    assert (acme.system, acme.used, acme.limit) == ("salesforce", 180, 1000)
    # The remote counter falls as its window rolls: a later, lower reading replaces it.
    one.report_usage("acme", "salesforce", 40, 1000)
    assert [(u.org, u.used) for u in two.shared_usage()] == [("acme", 40), ("other", 5)]
    # A reading older than a day says nothing about today's allowance.
    clock.advance(86401)
    assert two.shared_usage() == []


def test_record_counts_add_up_across_stores_and_threads(target) -> None:
    stores = [target.open(), target.open()]
    per_thread = 25

    def add(n: int) -> None:
        for _ in range(per_thread):
            stores[n % 2].add_record_counts(
                "acme", "export", {("done", "none"): 2, ("retry", "retryable"): 1}
            )

    threads = [threading.Thread(target=add, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stores[0].add_record_counts("acme", "export", {("dead", "record"): 0})  # nothing to add
    assert stores[1].record_counts() == [
        RecordCount("acme", "export", "done", "none", 4 * per_thread * 2),
        RecordCount("acme", "export", "retry", "retryable", 4 * per_thread),
    ]
