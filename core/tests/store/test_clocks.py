"""Leases on the database's clock: engines whose process clocks disagree share one store safely.

Two engines run in this process, each with its own ``StateStore`` and ``Executor``; the process
clock each one sees (``datetime.now`` in every module of ``eventsync.store``, ``time.time`` in the
executor) is skewed by minutes, per thread, the way two machines' clocks drift apart. The store
must not care.
"""

from __future__ import annotations

import datetime as dt
import sys
import threading
import time
import types
from collections import Counter
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from eventsync import executor as executor_module
from eventsync.executor import Executor, Outcome
from eventsync.models import RemoteFailure
from eventsync.store import DatabaseClock, OutboxItem, StateStore
from eventsync.waiting import wait_until

#: Process clock skew per engine, by the executor name its threads carry.
SKEWS = {"engine-a": 0.0, "engine-b": +180.0}


def _skew() -> float:
    name = threading.current_thread().name
    return next((s for prefix, s in SKEWS.items() if name.startswith(prefix)), 0.0)


class _SkewedDatetime(dt.datetime):
    """``datetime`` whose ``now`` is the calling thread's engine's process clock."""

    @classmethod
    def now(cls, tz: dt.tzinfo | None = None) -> dt.datetime:  # type: ignore[override]
        return dt.datetime.now(tz) + dt.timedelta(seconds=_skew())


@pytest.fixture
def skewed_clocks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every process-clock source of the store and the executor, skewed per engine thread."""
    datetime_shim = types.SimpleNamespace(**{**vars(dt), "datetime": _SkewedDatetime})
    for name, module in list(sys.modules.items()):
        if name.startswith("eventsync.store") and getattr(module, "dt", None) is dt:
            monkeypatch.setattr(module, "dt", datetime_shim)
    real_time = time.time
    time_shim = types.SimpleNamespace(
        time=lambda: real_time() + _skew(), monotonic=time.monotonic, sleep=time.sleep
    )
    monkeypatch.setattr(executor_module, "time", time_shim)
    yield


def _db_now(store: StateStore) -> dt.datetime:
    """The database's own clock, read independently of the store."""
    with store.engine.connect() as conn:
        if store.dialect == "postgresql":
            return conn.execute(sa.text("SELECT clock_timestamp()")).scalar_one()
        text = conn.execute(sa.text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")).scalar_one()
        return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


class Tracker:
    """A job that records who processed what, and whether two jobs held an entity at once."""

    def __init__(self, store: StateStore, together: tuple[str, ...] = ()) -> None:
        self.store = store
        self.lock = threading.Lock()
        self.inflight: set[str] = set()
        self.overlaps: list[str] = []
        self.runs: Counter[str] = Counter()
        self.by: dict[str, list[str]] = {}
        # Engines in ``together`` wait until each of them has a batch: both then run at once.
        self.started = {engine: threading.Event() for engine in together}

    def job(self, items: list[OutboxItem]) -> list[Outcome]:
        engine = threading.current_thread().name.split("-")[1]
        if engine in self.started:
            self.started[engine].set()
            for event in self.started.values():
                event.wait(30)
        with self.lock:
            for item in items:
                if item.entity in self.inflight:
                    self.overlaps.append(item.entity)
                self.inflight.add(item.entity)
                self.runs[item.entity] += 1
                self.by.setdefault(item.entity, []).append(engine)
        # Some real work against the store, as a flow reading its links would do.
        self.store.get_links(items[0].org, items[0].flow, [i.entity for i in items])
        with self.lock:
            self.inflight.difference_update(i.entity for i in items)
        return [Outcome.done() for _ in items]


def _executor(store: StateStore, job, name: str, **kw) -> Executor:
    options = dict(workers=2, batch_size=10, lease_seconds=60, poll_interval=0.05)
    options.update(kw)
    return Executor(store, job, name=name, **options)


def test_skewed_engines_process_every_entity_exactly_once(target, skewed_clocks) -> None:
    a, b = target.open(), target.open()
    entities = [f"e{n:03}" for n in range(200)]
    a.mark_many("acme", "export", entities)
    tracker = Tracker(a, together=("a", "b"))
    engines = [_executor(a, tracker.job, "engine-a"), _executor(b, tracker.job, "engine-b")]
    for engine in engines:
        engine.start()
    try:
        wait_until("the outbox drained", lambda: not a.pending(limit=1), timeout=60)
    finally:
        for engine in engines:
            engine.stop()
    twice = sorted(e for e, n in tracker.runs.items() if n > 1)
    lost = [engine.stats.lost for engine in engines]
    assert (twice, tracker.overlaps, lost) == ([], [], [0, 0]), (
        f"{len(twice)} of {len(entities)} processed more than once, "
        f"{len(tracker.overlaps)} at the same time, lost leases {lost}"
    )
    assert set(tracker.runs) == set(entities)
    assert not a.sync_log(outcome="lost", limit=1)
    # both engines worked at once: the test shows sharing, not one engine doing everything
    assert all(event.is_set() for event in tracker.started.values())
    assert {who for names in tracker.by.values() for who in names} == {"a", "b"}


def test_a_live_lease_is_never_taken_over_and_an_expired_one_is(target, skewed_clocks) -> None:
    db_clock = DatabaseClock()
    a, b = target.open(clock=db_clock), target.open(clock=db_clock)
    a.mark("acme", "export", "stuck")
    # engine A's worker (process clock right) holds a lease and hangs
    held = _lease_as(a, "engine-a-0@hung", lease_seconds=120)
    a.mark("acme", "export", "other")
    tracker = Tracker(b)
    with _executor(b, tracker.job, "engine-b"):  # process clock three minutes ahead
        # B leased "other" past "stuck", the older row: it saw the lease and respected it
        wait_until("engine B finished the other row", lambda: len(b.pending()) == 1)
        assert tracker.runs["stuck"] == 0, "engine B took over a live lease"
        (row,) = b.pending()
        assert (row.entity, row.lease_token) == ("stuck", held.lease_token)
        db_clock.advance(121)  # the database's clock passes the lease's end
        wait_until("the expired lease taken over", lambda: tracker.runs["stuck"] == 1)
        wait_until("the outbox drained", lambda: not b.pending(limit=1))
    assert tracker.by["stuck"] == ["b"]
    # fencing: the hung worker wakes up and can no longer record anything
    assert a.complete([held]).lost == (held.id,)
    assert a.sync_log(entity="stuck", outcome="done", limit=5)


def _lease_as(store: StateStore, thread_name: str, **kw) -> OutboxItem:
    """Lease from a thread named like an engine's worker, so it sees that engine's clock."""
    got: list[OutboxItem] = []
    worker = threading.Thread(target=lambda: got.extend(store.lease(thread_name, **kw)))
    worker.name = thread_name
    worker.start()
    worker.join()
    (item,) = got
    return item


def test_lease_times_come_from_the_database_not_the_process(
    target, skewed_clocks, monkeypatch
) -> None:
    monkeypatch.setitem(SKEWS, "MainThread", 3600.0)  # this thread's clock: an hour ahead
    store = target.open()
    before = _db_now(store)
    store.mark("acme", "export", "reg-1")
    (item,) = store.lease("w", lease_seconds=60)
    after = _db_now(store)
    assert item.created_at is not None and item.lease_until is not None
    assert before - dt.timedelta(seconds=1) <= item.created_at <= after + dt.timedelta(seconds=1)
    assert item.lease_until - item.created_at == pytest.approx(
        dt.timedelta(seconds=60), abs=dt.timedelta(seconds=2)
    )
    assert store.fail(item, RemoteFailure("HTTP_503", "busy", retryable=True), retry_after=30)
    (row,) = store.pending()
    due = _due(store, row.id)
    assert after + dt.timedelta(seconds=29) <= due <= _db_now(store) + dt.timedelta(seconds=31)


def _due(store: StateStore, row_id: int) -> dt.datetime:
    o = store.tables.outbox
    with store.engine.connect() as conn:
        return conn.execute(sa.select(o.c.due_at).where(o.c.id == row_id)).scalar_one()


def test_linger_measures_the_batch_age_on_the_database_clock(
    target, skewed_clocks, monkeypatch
) -> None:
    monkeypatch.setitem(SKEWS, "engine-late", -600.0)  # an engine ten minutes behind
    store = target.open()
    tracker = Tracker(store)
    with _executor(store, tracker.job, "engine-late", linger=0.2, batch_size=50):
        store.mark("acme", "export", "lonely")
        wait_until("the partial batch leased", lambda: tracker.runs["lonely"] == 1, timeout=10)


def test_a_worker_whose_lease_was_taken_over_cannot_touch_the_new_holders_row(target) -> None:
    db_clock = DatabaseClock()
    a, b = target.open(clock=db_clock), target.open(clock=db_clock)
    a.mark("acme", "export", "reg-1", payload={"v": 1})
    (stale,) = a.lease("slow-worker", lease_seconds=30)
    db_clock.advance(31)
    (taken,) = b.lease("new-worker", lease_seconds=30)
    assert taken.lease_token != stale.lease_token
    before = b.pending()

    record_error = RemoteFailure("FIELD_CUSTOM_VALIDATION_EXCEPTION", "stale data")
    assert a.complete([stale]).lost == (stale.id,)
    assert a.fail(stale, record_error) == "lost"
    assert a.fail(stale, RemoteFailure("HTTP_503", "busy", retryable=True)) == "lost"
    assert a.extend([stale], 3600) == 0
    assert a.defer([stale], 3600, record_error) == 0
    assert a.release([stale]) == 0
    assert b.pending() == before  # lease, due time, attempts and error all still the holder's
    assert b.dead_letter_count() == 0

    assert b.extend([taken], 30) == 1
    assert b.complete([taken]).completed == (taken.id,)
    assert b.pending() == []
