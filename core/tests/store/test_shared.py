"""Figures every process adds to: API usage readings and record counters (schema v11)."""

from __future__ import annotations

import threading

from eventsync.config import parse_config
from eventsync.engine import Engine
from eventsync.store import RecordCount


def test_the_freshest_usage_reading_of_any_process_wins(clocked_store, clock) -> None:
    store = clocked_store()  # the processes' readings reach one database
    store.report_usage("acme", "salesforce", 100, 1000, "worker-1")
    store.report_usage("acme", "salesforce", 180, 1000, "worker-2")
    store.report_usage("other", "hubspot", 5, 500, "worker-2")
    [acme] = store.shared_usage("acme")
    assert (acme.system, acme.used, acme.limit) == ("salesforce", 180, 1000)
    # A lower reading of another process soon after is an older answer arriving late.
    store.report_usage("acme", "salesforce", 150, 1000, "worker-1")
    assert store.shared_usage("acme")[0].used == 180
    # Shares are compared: a late reading under an older, larger limit is still a lower one.
    store.report_usage("acme", "salesforce", 300, 10000, "worker-1")
    assert (store.shared_usage("acme")[0].used, store.shared_usage("acme")[0].limit) == (180, 1000)
    # One process's readings come in order: its lower one is the counter falling (a reset).
    store.report_usage("acme", "salesforce", 40, 1000, "worker-2")
    assert store.shared_usage("acme")[0].used == 40
    # After a minute, another process's lower reading is the rolling window falling too.
    store.report_usage("acme", "salesforce", 90, 1000, "worker-1")
    clock.advance(61)
    store.report_usage("acme", "salesforce", 70, 1000, "worker-3")
    assert [(u.org, u.used) for u in store.shared_usage()] == [("acme", 70), ("other", 5)]
    # A reading older than a day says nothing about today's allowance.
    clock.advance(86401)
    assert store.shared_usage() == []


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


def test_the_maintenance_prunes_usage_readings_too_old_to_count(clocked_store, clock) -> None:
    store = clocked_store()
    store.report_usage("gone", "salesforce", 10, 1000, "worker-1")  # an org since removed
    clock.advance(86400 - 5)
    store.report_usage("acme", "salesforce", 20, 1000, "worker-1")
    clock.advance(10)  # the first reading is a day and 5 s old, the second 10 s
    assert store.prune_usage() == 1
    assert [(u.org, u.used) for u in store.shared_usage(max_age=10**9)] == [("acme", 20)]
    # The engine's maintenance round prunes them (the scheduler's, or `eventsync run`'s).
    clock.advance(86400)
    engine = Engine(
        parse_config({"engine": {}, "orgs": {"acme": {"plan": "enterprise"}}}, source="<t>"),
        store=store,
        pollers=False,
    )
    engine.maintain()
    assert store.shared_usage(max_age=10**9) == []
