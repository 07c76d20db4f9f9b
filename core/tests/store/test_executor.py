"""The embedded executor: outcomes, job failures, wake-up, shutdown."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from eventsync.errors import RetryableError
from eventsync.executor import Executor, Outcome
from eventsync.models import RemoteFailure
from eventsync.store import StateStore


def _wait(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _drained(store: StateStore) -> bool:
    return not store.pending(limit=1)


def test_executor_drains_and_logs_outcomes(store: StateStore) -> None:
    store.mark_many("acme", "export", [f"e{n}" for n in range(50)])
    store.mark_many("acme", "import", ["bad", "flaky"])
    record = RemoteFailure(
        "REQUIRED_FIELD_MISSING", "Required fields are missing: [LastName]", ("LastName",)
    )

    def job(items):
        out = []
        for item in items:
            if item.entity == "bad":
                out.append(Outcome.dead(record))
            elif item.entity == "flaky":
                out.append(
                    Outcome.retry(
                        RemoteFailure("HTTP_503", "Service Unavailable", retryable=True), 3600
                    )
                )
            else:
                out.append(Outcome.done("upserted"))
        return out

    with Executor(store, job, workers=2, batch_size=20, poll_interval=0.05) as ex:
        _wait(lambda: ex.stats.done == 50 and ex.stats.dead == 1 and ex.stats.retried == 1)
    assert [d.message for d in store.dead_letters()] == ["Required fields are missing: [LastName]"]
    (flaky,) = store.pending()
    assert (flaky.entity, flaky.attempts, flaky.last_error) == ("flaky", 1, "Service Unavailable")
    outcomes = Counter(e.outcome for e in store.sync_log(limit=500))
    assert outcomes == {"marked": 52, "done": 50, "dead": 1, "retry": 1}
    assert store.flow_status("acme", "export").last_success_at is not None


def test_remark_during_job_is_processed_again(store: StateStore) -> None:
    store.mark("acme", "export", "reg-1", payload={"v": 1})
    seen = []

    def job(items):
        for item in items:
            seen.append(item.payload["v"])
            if item.payload["v"] == 1:
                store.mark("acme", "export", "reg-1", payload={"v": 2})  # arrives mid-job
        return [Outcome.done() for _ in items]

    with Executor(store, job, workers=1, poll_interval=0.05) as ex:
        _wait(lambda: ex.stats.done == 1)
    assert seen == [1, 2]
    assert ex.stats.requeued == 1
    assert store.pending() == []


def test_retryable_error_retries_whole_batch_with_retry_after(store: StateStore) -> None:
    store.mark_many("acme", "export", ["a", "b", "c"])

    def job(items):
        raise RetryableError(
            "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", retry_after=600
        )

    with Executor(store, job, workers=1, poll_interval=0.05) as ex:
        _wait(lambda: ex.stats.retried == 3)
    rows = store.pending()
    assert [(r.attempts, r.last_error) for r in rows] == [(1, "TotalRequests Limit exceeded.")] * 3
    assert store.lease("w") == []  # backing off for at least retry_after


def test_unexpected_exception_never_loses_rows(target) -> None:
    store = target.open(max_attempts=2, backoff_base=0.01)
    store.mark_many("acme", "export", ["a", "b"])

    def job(items):
        raise KeyError("no such mapping 'Email'")

    with Executor(store, job, workers=1, poll_interval=0.02) as ex:
        _wait(lambda: ex.stats.dead == 2)
    assert store.pending() == []
    assert {(d.code, d.message, d.attempts) for d in store.dead_letters()} == {
        ("INTERNAL_ERROR", "KeyError: \"no such mapping 'Email'\"", 2)
    }


def test_wrong_number_of_outcomes_is_a_retry(store: StateStore) -> None:
    store.mark_many("acme", "export", ["a", "b"])
    with Executor(store, lambda items: [Outcome.done()], workers=1, poll_interval=0.05) as ex:
        _wait(lambda: ex.stats.retried == 2)
    assert all("1 outcomes for 2 items" in r.last_error for r in store.pending())


def test_mark_wakes_idle_workers(store: StateStore) -> None:
    done = threading.Event()
    with Executor(
        store,
        lambda items: done.set() or [Outcome.done() for _ in items],
        workers=1,
        poll_interval=30,
    ) as ex:
        time.sleep(0.2)  # the worker is now idle, waiting up to 30 s
        started = time.monotonic()
        store.mark("acme", "export", "x")
        assert done.wait(5)
        assert time.monotonic() - started < 15  # far below the 30 s poll: woken, not polled
        _wait(lambda: ex.stats.done == 1)


def test_stop_releases_the_leases_of_a_stuck_batch(store: StateStore) -> None:
    store.mark_many("acme", "export", ["a", "b"])
    entered, unblock = threading.Event(), threading.Event()

    def job(items):
        entered.set()
        unblock.wait(10)
        return [Outcome.done() for _ in items]

    ex = Executor(store, job, workers=1, poll_interval=0.05).start()
    assert entered.wait(5)
    assert ex.stop(timeout=0.3) is False
    assert [(r.entity, r.lease_token) for r in store.pending()] == [("a", None), ("b", None)]
    unblock.set()
    time.sleep(0.2)
    # the late result was not recorded: the lease was given back
    assert len(store.pending()) == 2
    assert ex.stats.released == 2


def test_clean_stop_finishes_inflight_batch(store: StateStore) -> None:
    store.mark_many("acme", "export", [f"e{n}" for n in range(30)])
    entered = threading.Event()

    def job(items):
        entered.set()
        time.sleep(0.3)
        return [Outcome.done() for _ in items]

    ex = Executor(store, job, workers=1, batch_size=10, poll_interval=0.05).start()
    assert entered.wait(5)
    assert ex.stop(timeout=10) is True
    rows = store.pending(limit=100)
    assert len(rows) == 20 and all(r.lease_token is None for r in rows)
    assert ex.stats.done == 10


def test_heartbeat_keeps_a_long_batch_leased(store: StateStore) -> None:
    store.mark("acme", "export", "slow")
    calls = []
    extended = threading.Event()
    beats = []
    extend = store.extend

    def counting_extend(items, lease_seconds):
        beats.append(len(items))
        if len(beats) >= 3:  # the lease has now outlived its first length three times over
            extended.set()
        return extend(items, lease_seconds)

    store.extend = counting_extend  # type: ignore[method-assign]

    def job(items):
        calls.append(items[0].entity)
        assert extended.wait(60), "the heartbeat never extended the lease"
        return [Outcome.done() for _ in items]

    with Executor(store, job, workers=2, lease_seconds=3.0, poll_interval=0.05) as ex:
        _wait(lambda: ex.stats.done == 1)
    assert calls == ["slow"]  # the second worker never took the row over


def test_outcome_needs_failure() -> None:
    with pytest.raises(ValueError):
        Outcome("dead")
