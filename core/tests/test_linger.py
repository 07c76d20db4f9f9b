"""Executor linger: a young partial batch waits for more changes, so remote calls are fuller.

Neither test depends on timing: with linger, the wait is far longer than the test needs and
ends when the batch fills; without it, the test waits for the first batch before marking more.
"""

import threading

from eventsync.executor import Executor, Outcome
from eventsync.store import FOLLOW_ON, StateStore
from eventsync.waiting import wait_until


def run_with(linger: float, tmp_path, *, wait_for_first: bool) -> list[int]:
    store = StateStore.open(path=tmp_path / f"linger-{linger}.sqlite")
    sizes: list[int] = []
    done = threading.Event()

    def job(items):
        sizes.append(len(items))
        if sum(sizes) >= 31:
            done.set()
        return [Outcome.done() for _ in items]

    # The quiet gap is as long as the linger: the 30 more changes have a minute to come.
    executor = Executor(
        store,
        job,
        workers=1,
        batch_size=31,
        poll_interval=0.05,
        linger=linger,
        linger_quiet=linger,
    ).start()
    try:
        store.mark("acme", "export", "first")
        if wait_for_first:
            wait_until("the first change's batch", lambda: sizes, timeout=30)
        store.mark_many("acme", "export", [f"e{i}" for i in range(30)])
        assert done.wait(30)
    finally:
        executor.stop()
        store.close()
    return sizes


def test_linger_gathers_changes_into_one_batch(tmp_path):
    # A partial, young batch waits (up to a minute); the 30 more changes fill it to batch_size.
    assert run_with(60.0, tmp_path, wait_for_first=False) == [31]


def test_without_linger_the_first_change_goes_alone(tmp_path):
    assert run_with(0.0, tmp_path, wait_for_first=True)[0] == 1


def test_a_lone_change_waits_only_for_the_quiet_gap(tmp_path):
    # Linger is ten minutes, but once no row joins for 50 ms the batch is quiet and goes: the
    # lone change is exported long before (the wait below fails at 30 s).
    store = StateStore.open(path=tmp_path / "quiet.sqlite")
    sizes: list[int] = []

    def job(items):
        sizes.append(len(items))
        return [Outcome.done() for _ in items]

    executor = Executor(
        store, job, workers=1, batch_size=31, poll_interval=5, linger=600, linger_quiet=0.05
    ).start()
    try:
        store.mark("acme", "export", "alone")
        wait_until("the lone change's batch", lambda: sizes, timeout=30)
        assert sizes == [1]
    finally:
        executor.stop()
        store.close()


def test_rows_another_worker_leased_do_not_make_the_rest_quiet(tmp_path):
    # Two workers linger on the same due rows; when one leases, the other sees the count fall.
    # That is a new, young batch to gather, not a quiet one to send at once (which made a
    # burst's batches a handful of rows each, and a remote call each).
    store = StateStore.open(path=tmp_path / "shared.sqlite")
    executor = Executor(
        store,
        lambda items: [Outcome.done() for _ in items],
        workers=1,
        batch_size=100,
        poll_interval=0.05,
        linger=600,
        linger_quiet=0.01,
    )
    try:
        store.mark_many("acme", "export", [f"e{i}" for i in range(9)])
        assert executor._linger()  # young and partial: it waits
        assert len(store.lease("other-worker", 8)) == 8
        assert executor._linger()  # one row left: gather again
        assert not executor._linger()  # nothing joined since: quiet, it goes
    finally:
        store.close()


class PeekRecorder(StateStore):
    """A store noting which threads look at a due batch (``peek_due``: lingering)."""

    def peek_due(self, **kw):
        due = super().peek_due(**kw)
        if due[0]:  # a look at a batch to gather (with none due, a worker just goes idle)
            with self.peek_lock:
                self.peekers.append(threading.current_thread().name)
        return due


def test_one_idle_worker_gathers_a_batch_the_others_wait(tmp_path):
    # Two idle workers lingering on the same rows would both lease once the batch is old
    # enough: one gets it, the other the rows that arrived in between, a remote call of their
    # own. One gathers; the other waits its turn (and gathers the next batch).
    store = PeekRecorder.open(path=tmp_path / "turns.sqlite")
    store.peek_lock, store.peekers = threading.Lock(), []
    executor = Executor(
        store,
        lambda items: [Outcome.done() for _ in items],
        workers=2,
        batch_size=20,  # 4 rows are a fifth of it: never "quiet", they linger the whole minute
        poll_interval=0.01,
        linger=60,
    ).start()
    try:
        store.mark_many("acme", "export", [f"e{i}" for i in range(4)])
        wait_until("50 looks at the young batch", lambda: len(store.peekers) >= 50, timeout=120)
        assert len(set(store.peekers)) == 1, sorted(set(store.peekers))
    finally:
        executor.stop()
        store.close()


def test_a_follow_on_batch_goes_at_once(tmp_path):
    # Linger and its quiet gap are ten minutes; rows another flow's job marked together
    # (FOLLOW_ON) are a batch already and go at once (the wait below fails at 30 s).
    store = StateStore.open(path=tmp_path / "follow-on.sqlite")
    sizes: list[int] = []

    def job(items):
        sizes.append(len(items))
        return [Outcome.done() for _ in items]

    # A mark wakes the idle worker; every wait it could make is ten minutes long.
    executor = Executor(
        store, job, workers=1, poll_interval=600.0, linger=600.0, linger_quiet=600.0
    ).start()
    try:
        store.mark_many("acme", "magic_links", [f"m{i}" for i in range(5)], hint=FOLLOW_ON)
        wait_until("the follow-on batch", lambda: sizes, timeout=30)
        assert sizes == [5]
    finally:
        executor.stop()
        store.close()
